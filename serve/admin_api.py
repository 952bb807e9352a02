"""Admin routes (role admin): API keys and the policy in force."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from serve.auth import require_role
from serve.keys import KeyStore, UnknownKeyError
from serve.tables import Role

router = APIRouter(tags=["admin"], dependencies=[Depends(require_role("admin"))])


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    """service: classify; moderator: the moderation queue; admin: everything, keys and policy included."""
    name: str = Field(min_length=1, max_length=100)
    """Who or what uses the key, e.g. 'web-app'."""


class KeyOut(BaseModel):
    """A key as listed: never the key or its hash."""

    model_config = ConfigDict(from_attributes=True)

    key_id: str
    role: Role
    name: str
    active: bool
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyCreated(KeyOut):
    key: str
    """The API key. It is not stored and cannot be shown again."""


class KeyList(BaseModel):
    keys: list[KeyOut]


def _keystore(request: Request) -> KeyStore:
    return request.app.state.keystore


@router.get("/v1/keys", response_model=KeyList)
def list_keys(request: Request) -> KeyList:
    """Every API key, revoked ones included (no secrets)."""
    return KeyList(keys=[KeyOut.model_validate(r) for r in _keystore(request).list()])


@router.post("/v1/keys", response_model=KeyCreated, status_code=201)
def create_key(body: KeyCreate, request: Request, response: Response) -> KeyCreated:
    """A new API key, shown in this response only: store it now."""
    try:
        record, plaintext = _keystore(request).create(body.role, body.name)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    response.headers["Cache-Control"] = "no-store"
    return KeyCreated(**KeyOut.model_validate(record).model_dump(), key=plaintext)


@router.delete(
    "/v1/keys/{key_id}",
    response_model=KeyOut,
    responses={404: {"description": "No such key"}, 409: {"description": "The key making this request"}},
)
def revoke_key(request: Request, key_id: str = Path(pattern=r"^[0-9a-f]{12}$")) -> KeyOut:
    """Revoke a key: refused from now on by this server (other server processes: within a few seconds).

    An admin cannot revoke the key the request is made with (no locking oneself out by accident); another
    admin key or `sahay keys revoke` can.
    """
    caller = getattr(request.state, "api_key", None)
    if caller is not None and caller.key_id == key_id:
        raise HTTPException(
            status_code=409,
            detail="this is the key making the request; revoke it with another admin key or `sahay keys revoke`",
        )
    try:
        return KeyOut.model_validate(_keystore(request).revoke(key_id))
    except UnknownKeyError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None


@router.get("/v1/policy")
def get_policy(request: Request) -> dict:
    """The policy in force: version, content hash, interstitial settings and the ordered rules."""
    policy = getattr(request.app.state, "policy", None)
    if policy is None:
        raise HTTPException(status_code=503, detail="the policy is not loaded yet")
    return policy.to_dict()
