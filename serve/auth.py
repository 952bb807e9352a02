"""Auth for routes: `Depends(require_role("service"))`. The key comes as `Authorization: Bearer <key>` or
`X-API-Key: <key>` and is checked against the KeyStore at `request.app.state.keystore`.

401: no key, or a key that is unknown or revoked (with `WWW-Authenticate: Bearer`); 403: a valid key whose role
may not do this. `admin` may do everything. The key is never logged or echoed; the record is left at
`request.state.api_key` (its `key_id` and `role` may be logged).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from serve.keys import ROLES, KeyRecord, KeyStore

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer sahay_...`")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key: `X-API-Key: sahay_...`")

MISSING = "missing API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
INVALID = "invalid API key: it is unknown or has been revoked"


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": challenge})


def _presented_key(request: Request, bearer: HTTPAuthorizationCredentials | None, header_key: str | None) -> str:
    keys = {k.strip() for k in (bearer.credentials if bearer else None, header_key) if k and k.strip()}
    if len(keys) > 1:
        raise _unauthorized("two different API keys sent (Authorization and X-API-Key): send one", "invalid_request")
    if keys:
        return keys.pop()
    if request.headers.get("authorization"):
        raise _unauthorized(
            "the Authorization header must read 'Bearer <key>' (or send 'X-API-Key: <key>')", "invalid_request"
        )
    raise _unauthorized(MISSING)


def require_role(*roles: str) -> Callable[..., Awaitable[KeyRecord]]:
    """A dependency that lets through a valid key with one of `roles` (or admin) and returns its record."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}: roles are {', '.join(ROLES)}")
    needed = tuple(dict.fromkeys((*roles, "admin")))
    wording = " or ".join(f"'{r}'" for r in needed)

    async def dependency(
        request: Request,
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
        header_key: str | None = Depends(_api_key_header),
    ) -> KeyRecord:
        key = _presented_key(request, bearer, header_key)
        keystore: KeyStore | None = getattr(request.app.state, "keystore", None)
        if keystore is None:
            raise HTTPException(status_code=503, detail="API keys are not available yet")
        record = keystore.cached(key) or await run_in_threadpool(keystore.verify, key)
        if record is None:
            raise _unauthorized(INVALID, "invalid_token")
        request.state.api_key = record
        if record.role not in needed:
            raise HTTPException(
                status_code=403, detail=f"this needs an API key with the role {wording}; this key has '{record.role}'"
            )
        return record

    return dependency
