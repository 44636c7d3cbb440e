"""The exchange service: HTTP API, CLI, database models and migrations, and the flows."""

__version__ = "0.1.0"
