"""Checks of terraform/ and the packaging scripts against the code they deploy."""
