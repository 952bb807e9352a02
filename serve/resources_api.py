"""Public routes: GET /v1/resources (helplines as JSON) and GET /interstitial (the embeddable support page)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
