"""Admin routes (role admin): API keys and the policy in force."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
