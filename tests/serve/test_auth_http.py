"""API keys against the real server: 401 without a valid key, 403 for the wrong role, admin key management."""

from __future__ import annotations

import httpx

BODY = {"items": [{"id": "k1", "text": "the bus was late again this morning", "surface": "post"}]}


def test_classify_without_a_key_is_401_with_a_bearer_challenge(server):
    r = httpx.post(f"{server.base_url}/v1/classify", json=BODY, timeout=30)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "API key" in r.json()["detail"]


def test_an_unknown_key_is_401(server):
    headers = {"Authorization": "Bearer sahay_000000000000_not-a-real-secret"}
    r = httpx.post(f"{server.base_url}/v1/classify", json=BODY, headers=headers, timeout=30)
    assert r.status_code == 401


def test_a_moderator_key_may_not_classify_403_names_the_role(server):
    r = httpx.post(f"{server.base_url}/v1/classify", json=BODY, headers=server.auth_headers("moderator"), timeout=30)
    assert r.status_code == 403
    assert "service" in r.json()["detail"]


def test_service_and_admin_keys_classify(server):
    for role in ("service", "admin"):
        r = httpx.post(f"{server.base_url}/v1/classify", json=BODY, headers=server.auth_headers(role), timeout=30)
        assert r.status_code == 200, (role, r.text)


def test_a_service_key_may_not_manage_keys(server):
    r = httpx.get(f"{server.base_url}/v1/keys", headers=server.auth_headers("service"), timeout=30)
    assert r.status_code == 403


def test_admin_creates_a_key_that_works_and_revokes_it_at_once(server):
    admin = server.auth_headers("admin")
    created = httpx.post(
        f"{server.base_url}/v1/keys", json={"role": "service", "name": "http-test"}, headers=admin, timeout=30
    )
    assert created.status_code == 201, created.text
    new_key, key_id = created.json()["key"], created.json()["key_id"]
    headers = {"Authorization": f"Bearer {new_key}"}
    assert httpx.post(f"{server.base_url}/v1/classify", json=BODY, headers=headers, timeout=30).status_code == 200
    listed = httpx.get(f"{server.base_url}/v1/keys", headers=admin, timeout=30).json()
    assert new_key not in str(listed) and key_id in str(listed)
    assert httpx.delete(f"{server.base_url}/v1/keys/{key_id}", headers=admin, timeout=30).status_code in (200, 204)
    assert httpx.post(f"{server.base_url}/v1/classify", json=BODY, headers=headers, timeout=30).status_code == 401
    assert new_key not in server.logs()


def test_admin_reads_the_policy_in_force_other_roles_may_not(server):
    from serve.policy import load_policy
    from serve.settings import SERVE_DIR

    r = httpx.get(f"{server.base_url}/v1/policy", headers=server.auth_headers("admin"), timeout=30)
    assert r.status_code == 200
    assert r.json() == load_policy(SERVE_DIR / "policy.yaml").to_dict()
    for role in ("service", "moderator"):
        assert (
            httpx.get(f"{server.base_url}/v1/policy", headers=server.auth_headers(role), timeout=30).status_code == 403
        )


def test_an_admin_cannot_revoke_the_key_it_is_using(server):
    admin_key = server.key("admin")
    key_id = admin_key.split("_")[1]
    r = httpx.delete(f"{server.base_url}/v1/keys/{key_id}", headers=server.auth_headers("admin"), timeout=30)
    assert r.status_code == 409
    assert httpx.get(f"{server.base_url}/v1/keys", headers=server.auth_headers("admin"), timeout=30).status_code == 200
