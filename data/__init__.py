"""Sahay data package."""
