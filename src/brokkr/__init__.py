"""Brokkr for Python: a broker, an agent, a client library and a CLI."""

__version__ = "0.1.0"
