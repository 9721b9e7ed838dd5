"""Solana side of the treasury: RPC and websocket sources, transaction parsing, cursors, the daemon, the CLI."""
