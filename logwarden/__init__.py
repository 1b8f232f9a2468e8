"""logwarden: the CLI, settings and the wiring of the stages (the composition root)."""

__version__ = "0.1.0"
