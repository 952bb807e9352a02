"""`/v1/classify`, `/healthz`, `/readyz` and the logs, against a real uvicorn server (see conftest)."""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient

from data.taxonomy import LABELS
from model.classifier import RiskClassifier
from serve.app import create_app
from serve.settings import ServeSettings
from tests.serve.conftest import MAX_ITEMS, MAX_TEXT_CHARS

# Neutral texts; the log check looks for these exact strings.
MARKER_A = "the purple giraffe reads the timetable quietly"
MARKER_B = "kal subah library mein milte hain"

RESULT_FIELDS = {
    "id",
    "label",
    "probabilities",
    "at_risk",
    "urgent",
    "violating",
    "spans",
    "lang",
    "decision",
    "model_version",
    "queue_item_id",
}


def item(id_: str, text: str = MARKER_A, surface: str = "post", **extra) -> dict:
    return {"id": id_, "text": text, "surface": surface, **extra}


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_readyz_when_loaded(client, artifact_version):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "model_version": artifact_version}


def test_readyz_is_503_before_the_model_loads(tiny_artifact):
    # Without entering the client, the lifespan (and so the model load) never runs.
    client = TestClient(create_app(ServeSettings(model_path=tiny_artifact)))
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_classify_happy_path(client, artifact_version):
    body = {
        "items": [
            item("a", MARKER_A, "post", lang="en", country="IN"),
            item("b", MARKER_B, "comment"),
            item("c", "we planted tomatoes in the garden", "search"),
        ]
    }
    r = client.post("/v1/classify", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["model_version"] == artifact_version
    assert [res["id"] for res in data["results"]] == ["a", "b", "c"]
    for res in data["results"]:
        assert set(res) == RESULT_FIELDS
        assert res["label"] in LABELS
        assert set(res["probabilities"]) == set(LABELS)
        assert math.isclose(sum(res["probabilities"].values()), 1.0, abs_tol=1e-6)
        for signal in ("at_risk", "urgent", "violating"):
            assert 0.0 <= res[signal] <= 1.0
        assert math.isclose(res["at_risk"], res["probabilities"]["ideation"] + res["probabilities"]["intent"])
        assert res["lang"] in {"en", "hi", "hi-Latn", "other"}
        assert res["model_version"] == artifact_version
        assert isinstance(res["spans"], list)
    assert "policy" not in data["results"][0]
    assert r.headers["x-request-id"]


def test_bad_items_get_their_own_errors_and_do_not_fail_the_batch(client):
    body = {
        "items": [
            item("ok-1"),
            item("empty", text="   "),
            item("long", text="a" * (MAX_TEXT_CHARS + 1)),
            item("surface", surface="billboard"),
            item("extra", colour="blue"),
            {"id": "no-text", "surface": "post"},
            item("country", country="IND"),
            "not an object",
            item("ok-2", MARKER_B, "chat"),
        ]
    }
    r = client.post("/v1/classify", json=body)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == len(body["items"])
    assert set(results[0]) == RESULT_FIELDS and results[0]["id"] == "ok-1"
    assert set(results[-1]) == RESULT_FIELDS and results[-1]["id"] == "ok-2"
    errors = {res["id"]: res["error"] for res in results[1:-1]}
    assert set(results[1]) == {"id", "error"}
    assert "empty" in errors["empty"]
    assert str(MAX_TEXT_CHARS) in errors["long"] and "a" * 20 not in errors["long"]
    assert errors["surface"].startswith("surface:")
    assert errors["extra"].startswith("colour:")
    assert errors["no-text"].startswith("text:")
    assert errors["country"].startswith("country:")
    assert errors[None] == "item is not a JSON object"


def test_too_many_items_is_413(client):
    body = {"items": [item(str(i)) for i in range(MAX_ITEMS + 1)]}
    r = client.post("/v1/classify", json=body)
    assert r.status_code == 413
    assert f"at most {MAX_ITEMS}" in r.json()["detail"]


def test_exactly_max_items_is_fine(client):
    r = client.post("/v1/classify", json={"items": [item(str(i)) for i in range(MAX_ITEMS)]})
    assert r.status_code == 200 and len(r.json()["results"]) == MAX_ITEMS


@pytest.mark.parametrize(
    "body",
    [{"items": [item("a")], "tenant": "x"}, {"records": [item("a")]}, {"items": []}, {"items": "a"}, [item("a")]],
    ids=["unknown-top-level-field", "no-items", "empty-items", "items-not-a-list", "not-an-object"],
)
def test_bad_envelope_is_422(client, body):
    r = client.post("/v1/classify", json=body)
    assert r.status_code == 422
    assert r.json()["detail"]


def test_invalid_json_is_422(client):
    r = client.post("/v1/classify", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_logs_are_json_without_text_or_client_ip(client, server):
    client.post("/v1/classify", json={"items": [item("log-a", MARKER_A), item("log-b", MARKER_B), item("x", "")]})
    client.post("/v1/classify", json={"items": [item("log-c", MARKER_A, device_id="zzz")]})
    client.get("/healthz", headers={"x-request-id": "req-12345"})
    # The server writes its log line after the response; give it a moment.
    import time

    for _ in range(50):
        if '"req-12345"' in server.logs():
            break
        time.sleep(0.1)
    logs = server.logs()
    assert MARKER_A not in logs and MARKER_B not in logs
    assert "giraffe" not in logs and "timetable" not in logs
    assert "127.0.0.1" not in logs
    lines = [json.loads(line) for line in logs.splitlines() if line.strip()]
    requests = [e for e in lines if e["event"] == "request"]
    classify = [e for e in requests if e["path"] == "/v1/classify" and e["status"] == 200]
    assert classify and all(
        {"request_id", "path", "status", "latency_ms", "items", "item_errors"} <= set(e) for e in classify
    )
    assert any(e["items"] == 3 and e["item_errors"] == 1 for e in classify)
    assert any(e["request_id"] == "req-12345" and e["path"] == "/healthz" for e in requests)
    assert any(e["event"] == "model_loaded" for e in lines)


def test_sahay_serve_refuses_a_missing_model(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path)])
    assert result.exit_code == 2 and "not a model artifact" in result.output


def test_each_result_carries_the_policy_decision_for_its_surface_and_country(client, tiny_artifact):
    from serve.policy import load_policy
    from serve.settings import SERVE_DIR

    policy = load_policy(SERVE_DIR / "policy.yaml")
    thresholds = {k: p.threshold for k, p in RiskClassifier.load(tiny_artifact).operating_points.items()}
    items = [
        item(f"{surface}-{country}", text, surface, country=country)
        for surface in ("post", "search", "chat")
        for country in ("IN", None)
        for text in (MARKER_A, MARKER_B)
    ]
    r = client.post("/v1/classify", json={"items": items})
    assert r.status_code == 200, r.text
    for sent, res in zip(items, r.json()["results"], strict=True):
        signals = {k: res[k] for k in ("at_risk", "urgent", "violating")}
        expected = policy.decide(signals, thresholds, sent["surface"], sent.get("country"))
        got = {
            **res["decision"],
            "actions": [{k: v for k, v in a.items() if v is not None} for a in res["decision"]["actions"]],
        }
        assert got == expected.to_dict()
        assert res["decision"]["policy_version"] == policy.version_tag
