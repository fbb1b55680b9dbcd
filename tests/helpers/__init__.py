"""Helpers shared by several test folders (not part of the installed package)."""
