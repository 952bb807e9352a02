"""The identifier guard: forbidden key names are refused with 422 at any depth, before other validation."""

from __future__ import annotations

import pytest

from serve.privacy import FORBIDDEN_KEYS, find_identifier, is_forbidden_key

NAMES = sorted(FORBIDDEN_KEYS)
REFUSAL = "Sahay does not accept network, device or location identifiers"


def item(**extra) -> dict:
    return {"id": "a", "text": "the library opens at nine", "surface": "post", **extra}


def variants(name: str) -> list[str]:
    return sorted({name, name.upper(), name.replace("_", "-"), name.title().replace("_", "-")})


@pytest.mark.parametrize("name", NAMES)
def test_top_level_identifier_is_refused(client, name):
    r = client.post("/v1/classify", json={"items": [item()], name: "x"})
    assert r.status_code == 422
    assert REFUSAL in r.json()["detail"] and name in r.json()["detail"]


@pytest.mark.parametrize("name", NAMES)
def test_identifier_inside_an_item_is_refused(client, name):
    r = client.post("/v1/classify", json={"items": [item(), item(**{name: "x"})]})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert REFUSAL in detail and f"items[1].{name}" in detail


@pytest.mark.parametrize("name", NAMES)
def test_identifier_nested_deeper_is_refused(client, name):
    nested = {"meta": {"client": [{"ok": 1}, {"info": {name: {"value": 1}}}]}}
    r = client.post("/v1/classify", json={"items": [item(**nested)]})
    assert r.status_code == 422
    assert f"items[0].meta.client[1].info.{name}" in r.json()["detail"]


@pytest.mark.parametrize("name", ["IP", "Device-Id", "X-Forwarded-For", "GPS", "Advertising-ID", "ip-address"])
def test_case_and_dash_variants_are_refused(client, name):
    r = client.post("/v1/classify", json={"items": [item(**{name: "x"})]})
    assert r.status_code == 422 and REFUSAL in r.json()["detail"]


def test_guard_runs_before_the_item_limit_and_envelope_checks(client):
    too_many = [item() for _ in range(500)]
    r = client.post("/v1/classify", json={"items": too_many, "unknown": 1, "latitude": 1.0})
    assert r.status_code == 422 and REFUSAL in r.json()["detail"]


def test_forbidden_names_as_values_are_fine(client):
    r = client.post("/v1/classify", json={"items": [item(text="the ip of the phone location gps")]})
    assert r.status_code == 200


@pytest.mark.parametrize("name", NAMES)
def test_find_identifier_unit(name):
    for key in variants(name):
        assert is_forbidden_key(key)
        assert find_identifier({"a": [{"b": {key: 1}}]}) == f"a[0].b.{key}"
    assert find_identifier({"items": [{"id": "x", "text": name}]}) is None


def test_similar_names_are_not_refused():
    for key in ("ipsum", "ship", "latency", "location_hint_free", "macro", "phones_count", "surface", "lang"):
        assert not is_forbidden_key(key)


def test_deep_nesting_does_not_recurse():
    body: dict = {}
    node = body
    for _ in range(5000):
        node["n"] = {}
        node = node["n"]
    node["gps"] = 1
    path = find_identifier(body)
    assert path is not None and path.endswith(".gps")
