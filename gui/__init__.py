"""Unprompt gui package."""
