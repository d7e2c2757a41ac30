"""Unprompt engine package."""
