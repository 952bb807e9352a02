"""Sahay eval package."""
