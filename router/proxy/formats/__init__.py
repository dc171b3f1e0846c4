"""Request formats: one adapter module per endpoint shape the pipeline serves.

The pipeline (`router.proxy.pipeline`) knows nothing of a body's JSON; an adapter
(`FormatAdapter` in `adapter.py`) says where a format keeps its query and context,
how a routing decision rewrites it, and how the proxy's own answers look in it.
"""
