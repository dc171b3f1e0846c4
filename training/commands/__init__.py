"""Offline commands: each module is one `sleeptime` subcommand with `main(argv) -> int`."""
