"""Rivya Console: a self-hosted web console for the Rivya API v1."""

__version__ = "0.1.0"
