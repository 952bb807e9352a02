"""The identifier guard: Sahay takes no network, device or location identifiers, at any depth of a request."""

from __future__ import annotations

from typing import Any

FORBIDDEN_KEYS: frozenset[str] = frozenset(
    {
        "ip",
        "ip_address",
        "x_forwarded_for",
        "imei",
        "imsi",
        "device_id",
        "advertising_id",
        "mac",
        "phone",
        "msisdn",
        "lat",
        "lon",
        "latitude",
        "longitude",
        "location",
        "gps",
    }
)
"""Key names refused anywhere in a request body, compared case-insensitively and with '-' read as '_'."""

REFUSAL = "Sahay does not accept network, device or location identifiers"


def normalise_key(key: str) -> str:
    return key.strip().lower().replace("-", "_")


def is_forbidden_key(key: Any) -> bool:
    return isinstance(key, str) and normalise_key(key) in FORBIDDEN_KEYS


def find_identifier(obj: Any) -> str | None:
    """The path (e.g. `items[0].meta.gps`) of the first forbidden key in a parsed JSON value, else None.

    Walks iteratively, and builds a path only for a hit, so a deeply nested body costs neither stack nor time.
    """
    # Each stack entry: (value, link) where link is (parent_link, step) or None for the root.
    stack: list[tuple[Any, tuple | None]] = [(obj, None)]
    while stack:
        value, link = stack.pop()
        if isinstance(value, dict):
            for key in value:
                if is_forbidden_key(key):
                    return _path((link, f".{key}"))
            stack.extend((child, (link, f".{key}")) for key, child in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((value[i], (link, f"[{i}]")) for i in reversed(range(len(value))))
    return None


def _path(link: tuple | None) -> str:
    steps = []
    while link is not None:
        link, step = link
        steps.append(step)
    return "".join(reversed(steps)).removeprefix(".")


def refusal_message(field_path: str) -> str:
    return f"{REFUSAL}; refused field: {field_path}"
