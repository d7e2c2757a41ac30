"""Unprompt storage package."""
