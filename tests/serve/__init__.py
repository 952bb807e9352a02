"""Tests of the serving slice."""
