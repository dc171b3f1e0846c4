"""Online commands: the proxy and the embedded model, each `main(argv) -> int`."""
