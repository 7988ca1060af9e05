"""Command-line entry points; each is a thin wrapper around the library."""
