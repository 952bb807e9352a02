"""Sahay serve package."""
