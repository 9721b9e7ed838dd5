"""`python -m indexer` runs the same CLI as `treasury`."""

from indexer.cli import main

main()
