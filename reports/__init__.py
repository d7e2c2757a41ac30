"""Unprompt reports package."""
