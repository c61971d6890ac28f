"""Pytest fixtures that start the loopback fakes (filled in with the fakes)."""
