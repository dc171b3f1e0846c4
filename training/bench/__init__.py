"""Benchmarks of the proxy and of policies through it: `sleeptime bench ...` (see `cli`)."""
