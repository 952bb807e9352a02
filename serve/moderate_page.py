"""The moderator page, GET /moderate (placeholder until filled in this session)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
