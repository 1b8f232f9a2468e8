"""``python -m logwarden`` is the ``logwarden`` command."""

from logwarden.cli import main

main()
