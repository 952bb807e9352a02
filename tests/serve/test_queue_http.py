"""The moderation queue against the real server: classify enqueues (committed before the response), the queue,
claim, decision and audit routes, roles, validation, and pseudonymised authors.

The tiny test model's labels are arbitrary, so this server runs a policy that sends every item to the queue
(searches at priority 1, everything else at priority 3).
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from sqlalchemy import create_engine, text

from serve.keys import create_key
from serve.queue import pseudonymise
from tests.serve.conftest import start_server, stop_server
from tests.serve.queue_helpers import write_enqueue_all_policy

SECRET = "http-test-pseudonym-secret-42"
RAW_AUTHOR = "author-id-that-must-never-be-stored-7781"
LEASE_SECONDS = 3
TEXTS = ["the bus was late again this morning", "we planted tomatoes in the garden", "the library opens at nine"]


@pytest.fixture(scope="module")
def qserver(tiny_artifact, tmp_path_factory):
    directory = tmp_path_factory.mktemp("queue-server")
    policy = write_enqueue_all_policy(directory)
    srv = start_server(
        tiny_artifact,
        directory,
        SAHAY_POLICY_PATH=str(policy),
        SAHAY_PSEUDONYM_SECRET=SECRET,
        SAHAY_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def second_moderator(qserver) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(qserver.database_url, 'moderator', 'second-moderator')}"}


def _uid(prefix: str = "it") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def classify(srv, items: list[dict], role: str = "service") -> httpx.Response:
    return httpx.post(f"{srv.base_url}/v1/classify", json={"items": items}, headers=srv.auth_headers(role), timeout=30)


def enqueue_one(srv, surface: str = "post", **extra) -> int:
    r = classify(srv, [{"id": _uid(), "text": TEXTS[0], "surface": surface, **extra}])
    assert r.status_code == 200, r.text
    queue_id = r.json()["results"][0]["queue_item_id"]
    assert isinstance(queue_id, int)
    return queue_id


def get(srv, path: str, role: str = "moderator", **params) -> httpx.Response:
    return httpx.get(f"{srv.base_url}{path}", params=params, headers=srv.auth_headers(role), timeout=30)


def post(srv, path: str, headers: dict[str, str], json: dict | None = None) -> httpx.Response:
    return httpx.post(f"{srv.base_url}{path}", json=json, headers=headers, timeout=30)


def all_queued(srv, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        page = get(srv, "/v1/queue", limit=100, **params, **({"cursor": cursor} if cursor else {})).json()
        items += page["items"]
        if (cursor := page["next_cursor"]) is None:
            return items


# --- classify -> queue ------------------------------------------------------------------------------------------


def test_classify_enqueues_before_answering_and_is_idempotent(qserver):
    item = {"id": _uid(), "text": TEXTS[1], "surface": "comment"}
    first = classify(qserver, [item]).json()["results"][0]
    assert first["decision"]["rule"] == "queue_all" and isinstance(first["queue_item_id"], int)
    again = classify(qserver, [item]).json()["results"][0]
    assert again["queue_item_id"] == first["queue_item_id"]
    listed = [i for i in all_queued(qserver) if i["item_id"] == item["id"]]
    assert len(listed) == 1 and listed[0]["id"] == first["queue_item_id"]
    assert listed[0]["rule"] == "queue_all" and listed[0]["priority"] == 3 and listed[0]["surface"] == "comment"


def test_items_not_enqueued_have_no_queue_id(server):
    r = httpx.post(
        f"{server.base_url}/v1/classify",
        json={"items": [{"id": "plain", "text": TEXTS[0], "surface": "post"}]},
        headers=server.auth_headers("service"),
        timeout=30,
    )
    result = r.json()["results"][0]
    enqueued = any(a["type"] == "enqueue" for a in result["decision"]["actions"])
    assert (result["queue_item_id"] is not None) == enqueued


def test_the_author_id_is_stored_only_as_an_hmac(qserver):
    queue_id = enqueue_one(qserver, author_id=RAW_AUTHOR)
    engine = create_engine(qserver.database_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT author_hash FROM queue_items WHERE id = :i"), {"i": queue_id}).scalar()
            dump = repr(
                [tuple(r) for t in ("queue_items", "audit_events") for r in conn.execute(text(f"SELECT * FROM {t}"))]
            )
    finally:
        engine.dispose()
    assert stored == pseudonymise(RAW_AUTHOR, SECRET.encode())
    assert RAW_AUTHOR not in dump
    assert RAW_AUTHOR not in qserver.logs()
    claimed = post(qserver, f"/v1/queue/{queue_id}/claim", qserver.auth_headers("moderator")).json()
    assert claimed["content"]["author_pseudonym"] == stored


def test_an_author_id_without_a_pseudonym_secret_is_a_per_item_error(server):
    items = [
        {"id": "with-author", "text": TEXTS[0], "surface": "post", "author_id": RAW_AUTHOR},
        {"id": "without", "text": TEXTS[1], "surface": "post"},
    ]
    r = httpx.post(
        f"{server.base_url}/v1/classify", json={"items": items}, headers=server.auth_headers("service"), timeout=30
    )
    assert r.status_code == 200
    refused, fine = r.json()["results"]
    assert refused["id"] == "with-author" and "SAHAY_PSEUDONYM_SECRET" in refused["error"]
    assert RAW_AUTHOR not in refused["error"]
    assert "label" in fine
    assert RAW_AUTHOR not in server.logs()


# --- the queue --------------------------------------------------------------------------------------------------


def test_the_queue_needs_a_moderator_or_admin_key(qserver):
    assert httpx.get(f"{qserver.base_url}/v1/queue", timeout=30).status_code == 401
    assert get(qserver, "/v1/queue", role="service").status_code == 403
    assert get(qserver, "/v1/queue", role="moderator").status_code == 200
    assert get(qserver, "/v1/queue", role="admin").status_code == 200
    queue_id = enqueue_one(qserver)
    service = qserver.auth_headers("service")
    assert post(qserver, f"/v1/queue/{queue_id}/claim", service).status_code == 403
    decision = {"label": "none", "action": "no_action"}
    assert post(qserver, f"/v1/queue/{queue_id}/decision", service, decision).status_code == 403
    assert httpx.post(f"{qserver.base_url}/v1/queue/{queue_id}/claim", timeout=30).status_code == 401


def test_the_list_is_ordered_by_priority_then_deadline_and_carries_no_text(qserver):
    post_id = enqueue_one(qserver, surface="post")
    search_id = enqueue_one(qserver, surface="search")
    r = get(qserver, "/v1/queue", limit=100)
    assert r.status_code == 200
    items = all_queued(qserver)
    keys = [(i["priority"], i["sla_deadline"]) for i in items]
    assert keys == sorted(keys)
    ids = [i["id"] for i in items]
    assert ids.index(search_id) < ids.index(post_id)
    assert not any(t in r.text for t in TEXTS) and "text" not in items[0] and "spans" not in items[0]
    assert set(items[0]) >= {"id", "surface", "lang", "label", "signals", "priority", "sla_deadline", "state"}


def test_list_filters_and_pagination(qserver):
    search_id = enqueue_one(qserver, surface="search")
    searches = all_queued(qserver, surface="search")
    assert search_id in [i["id"] for i in searches] and {i["surface"] for i in searches} == {"search"}
    for _ in range(3):
        enqueue_one(qserver)
    first = get(qserver, "/v1/queue", limit=2).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = get(qserver, "/v1/queue", limit=2, cursor=first["next_cursor"]).json()
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    label = first["items"][0]["label"]
    assert {i["label"] for i in all_queued(qserver, label=label)} == {label}
    assert get(qserver, "/v1/queue", cursor="garbage!").status_code == 422
    assert get(qserver, "/v1/queue", limit=101).status_code == 422
    assert get(qserver, "/v1/queue", state="lost").status_code == 422
    assert get(qserver, "/v1/queue", surface="reel").status_code == 422


# --- claim and decide -------------------------------------------------------------------------------------------


def test_claim_decide_flow_with_lease_exclusivity(qserver, second_moderator):
    queue_id = enqueue_one(qserver)
    asha = qserver.auth_headers("moderator")
    claimed = post(qserver, f"/v1/queue/{queue_id}/claim", asha)
    assert claimed.status_code == 200, claimed.text
    body = claimed.json()
    assert body["content"]["text"] == TEXTS[0] and body["state"] == "claimed" and body["lease_expires_at"]
    assert isinstance(body["content"]["spans"], list)

    taken = post(qserver, f"/v1/queue/{queue_id}/claim", second_moderator)
    assert taken.status_code == 409 and "until" in taken.json()["detail"]
    assert body["lease_expires_at"].replace("+00:00", "Z")[:19] in taken.json()["detail"]
    assert int(taken.headers["Retry-After"]) >= 1
    decision = {"label": "informational", "action": "resources_shown", "note": "checked"}
    assert post(qserver, f"/v1/queue/{queue_id}/decision", second_moderator, decision).status_code == 409

    done = post(qserver, f"/v1/queue/{queue_id}/decision", asha, decision)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "decided" and done.json()["decision"]["label"] == "informational"
    assert done.json()["decision"]["decided_by"] == qserver.key("moderator").split("_")[1]
    assert queue_id not in [i["id"] for i in all_queued(qserver)]
    assert queue_id in [i["id"] for i in all_queued(qserver, state="decided")]

    again = post(qserver, f"/v1/queue/{queue_id}/decision", asha, decision)
    assert again.status_code == 409 and "already decided" in again.json()["detail"]
    assert post(qserver, f"/v1/queue/{queue_id}/claim", asha).status_code == 409


def test_an_expired_lease_is_claimable_by_another_moderator(qserver, second_moderator):
    queue_id = enqueue_one(qserver)
    assert post(qserver, f"/v1/queue/{queue_id}/claim", qserver.auth_headers("moderator")).status_code == 200
    time.sleep(LEASE_SECONDS + 0.2)
    assert queue_id in [i["id"] for i in all_queued(qserver)]  # back in the queue
    r = post(qserver, f"/v1/queue/{queue_id}/claim", second_moderator)
    assert r.status_code == 200, r.text


def test_decide_without_a_claim_and_unknown_items(qserver):
    asha = qserver.auth_headers("moderator")
    queue_id = enqueue_one(qserver)
    r = post(qserver, f"/v1/queue/{queue_id}/decision", asha, {"label": "none", "action": "no_action"})
    assert r.status_code == 409 and "claim it first" in r.json()["detail"]
    assert post(qserver, "/v1/queue/999999/claim", asha).status_code == 404
    assert post(qserver, "/v1/queue/999999/decision", asha, {"label": "none", "action": "no_action"}).status_code == 404
    assert post(qserver, "/v1/queue/0/claim", asha).status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"label": "sad", "action": "no_action"},
        {"label": "none", "action": "banned"},
        {"label": "none", "action": "no_action", "extra": 1},
        {"label": "none", "action": "no_action", "note": "x" * 2001},
        {"action": "no_action"},
    ],
)
def test_bad_decisions_are_422(qserver, body):
    queue_id = enqueue_one(qserver)
    asha = qserver.auth_headers("moderator")
    assert post(qserver, f"/v1/queue/{queue_id}/claim", asha).status_code == 200
    assert post(qserver, f"/v1/queue/{queue_id}/decision", asha, body).status_code == 422


# --- audit ------------------------------------------------------------------------------------------------------


def test_the_audit_log_records_claims_and_decisions_and_is_admin_only(qserver):
    queue_id = enqueue_one(qserver)
    asha = qserver.auth_headers("moderator")
    post(qserver, f"/v1/queue/{queue_id}/claim", asha)
    post(qserver, f"/v1/queue/{queue_id}/decision", asha, {"label": "none", "action": "no_action"})
    assert get(qserver, "/v1/audit", role="moderator").status_code == 403
    assert get(qserver, "/v1/audit", role="service").status_code == 403
    r = get(qserver, "/v1/audit", role="admin", queue_item_id=queue_id)
    assert r.status_code == 200
    events = r.json()["events"]
    key_ids = {role: qserver.key(role).split("_")[1] for role in ("service", "moderator")}
    assert [(e["event"], e["key_id"], e["role"]) for e in events] == [
        ("decision", key_ids["moderator"], "moderator"),
        ("claim", key_ids["moderator"], "moderator"),
        ("enqueue", key_ids["service"], "service"),
    ]
    assert all(e["queue_item_id"] == queue_id and e["at"] for e in events)
    assert events[0]["detail"]["action"] == "no_action"
    assert not any(t in r.text for t in TEXTS)
    newest = get(qserver, "/v1/audit", role="admin", limit=1).json()
    assert len(newest["events"]) == 1 and newest["next_cursor"]
    older = get(qserver, "/v1/audit", role="admin", limit=1, cursor=newest["next_cursor"]).json()
    assert older["events"][0]["id"] < newest["events"][0]["id"]
    assert get(qserver, "/v1/audit", role="admin", cursor="%%%").status_code == 422


def test_listing_is_audited(qserver):
    get(qserver, "/v1/queue", role="moderator", surface="chat")
    newest = get(qserver, "/v1/audit", role="admin", limit=1).json()["events"][0]
    assert newest["event"] == "list" and newest["detail"]["surface"] == "chat" and newest["queue_item_id"] is None


def test_the_openapi_spec_has_the_queue_routes(qserver):
    spec = httpx.get(f"{qserver.base_url}/openapi.json", timeout=30).json()
    assert {"/v1/queue", "/v1/queue/{queue_id}/claim", "/v1/queue/{queue_id}/decision", "/v1/audit"} <= set(
        spec["paths"]
    )
    body = spec["paths"]["/v1/classify"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "author_id" in body["properties"]["items"]["items"]["properties"]
