"""Prometheus metrics for the service (placeholder until filled in this session)."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Add the metrics middleware and GET /metrics to `app`."""


def observe_item(app: FastAPI, label: str, actions: list[str]) -> None:
    """Count one classified item by label and by each policy action."""
