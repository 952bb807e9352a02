"""Sahay model package."""
