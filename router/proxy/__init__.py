"""The OpenAI-compatible proxy: the only package that imports FastAPI.

`create_app` lives in `router.proxy.app`; importing this package imports nothing heavy.
"""
