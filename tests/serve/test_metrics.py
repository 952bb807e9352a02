"""GET /metrics: against the real server of the conftest (other test files share it, so counters are compared
before and after, never as absolutes), and on bare apps for the calls the app makes into serve.metrics."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from data.taxonomy import LABELS
from serve import metrics
from tests.neutral_texts import SENTENCES

# Made-up markers that must never reach /metrics: a text, an item id, a request id and a path segment.
SENTINEL_TEXT = "the violet heron counts teaspoons at dawn"
SENTINEL_ID = "item-sentinel-5b7e"
SENTINEL_REQUEST_ID = "req-sentinel-0c41"
SENTINEL_PATH = "path-sentinel-9d2a"


def scrape(client) -> tuple[str, dict]:
    """The exposition text and its samples as {(name, ((label, value), ...)): value}."""
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return r.text, samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def by_label(samples: dict, name: str, label: str) -> dict[str, float]:
    return {dict(key)[label]: v for (n, key), v in samples.items() if n == name}


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def items(texts: list[str], prefix: str = "m") -> dict:
    return {"items": [{"id": f"{prefix}{i}", "text": t, "surface": "post"} for i, t in enumerate(texts)]}


def test_classify_moves_the_counters_by_exactly_what_was_sent(client, artifact_version):
    _, before = scrape(client)
    sizes = [1, 2, 3]
    for size in sizes:
        r = client.post("/v1/classify", json=items(SENTENCES[:size]))
        assert r.status_code == 200, r.text
    bad_item = {"items": [{"id": "ok", "text": SENTENCES[5], "surface": "post"}, {"id": "bad", "text": "  "}]}
    assert client.post("/v1/classify", json=bad_item).status_code == 200
    assert client.post("/v1/classify", json={"items": []}).status_code == 422
    assert client.get(f"/no/such/{SENTINEL_PATH}").status_code == 404
    text, after = scrape(client)

    classify = {"method": "POST", "route": "/v1/classify"}
    assert delta(before, after, "sahay_requests_total", **classify, status="200") == len(sizes) + 1
    assert delta(before, after, "sahay_requests_total", **classify, status="422") == 1
    assert delta(before, after, "sahay_requests_total", method="GET", route="other", status="404") == 1
    # The first scrape is counted once it has been answered, so the second one shows it and not itself.
    assert delta(before, after, "sahay_requests_total", method="GET", route="/metrics", status="200") == 1

    route = {"route": "/v1/classify"}
    n_classify = len(sizes) + 2
    assert delta(before, after, "sahay_request_duration_seconds_count", **route) == n_classify
    assert delta(before, after, "sahay_request_duration_seconds_bucket", **route, le="+Inf") == n_classify
    assert delta(before, after, "sahay_request_duration_seconds_sum", **route) > 0
    assert delta(before, after, "sahay_request_duration_seconds_bucket", **route, le="5.0") == n_classify

    labels_before = by_label(before, "sahay_items_total", "label")
    labels_after = by_label(after, "sahay_items_total", "label")
    assert set(labels_after) <= set(LABELS)
    moved = {k: v - labels_before.get(k, 0.0) for k, v in labels_after.items()}
    classified = sum(sizes) + 1  # the refused item is not a classified one
    assert sum(moved.values()) == classified
    assert delta(before, after, "sahay_item_errors_total") == 1
    # Each classified text goes through exactly one forward pass of the micro-batcher.
    assert delta(before, after, "sahay_batch_size_sum") == classified
    assert 1 <= delta(before, after, "sahay_batch_size_count") <= classified
    assert value(after, "sahay_queue_depth") == 0
    for action in by_label(after, "sahay_actions_total", "action"):
        assert re.fullmatch(r"[a-z_]+(:[a-z_]+)?", action), action

    assert value(after, "sahay_model_info", model_version=artifact_version) == 1
    assert SENTINEL_PATH not in text and "/no/such" not in text


def test_no_text_or_id_ever_reaches_metrics(client):
    body = {"items": [{"id": SENTINEL_ID, "text": SENTINEL_TEXT, "surface": "comment"}]}
    headers = {"x-request-id": SENTINEL_REQUEST_ID}
    assert client.post("/v1/classify", json=body, headers=headers).status_code == 200
    too_long = {"items": [{"id": SENTINEL_ID, "text": SENTINEL_TEXT * 20, "surface": "post"}]}
    assert client.post("/v1/classify", json=too_long, headers=headers).status_code == 200
    text, _ = scrape(client)
    for marker in (SENTINEL_TEXT, "violet heron", SENTINEL_ID, SENTINEL_REQUEST_ID):
        assert marker not in text


def test_metrics_is_not_in_the_openapi_schema_and_has_process_figures(client):
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]
    text, samples = scrape(client)
    assert any(name == "process_cpu_seconds_total" for name, _ in samples)
    assert "# TYPE sahay_request_duration_seconds histogram" in text


# -- bare apps: the calls create_app and the micro-batcher make ------------------------------------------------------
def bare_app() -> FastAPI:
    app = FastAPI()
    metrics.install(app, process=False)

    @app.get("/things/{name}")
    async def thing(name: str) -> dict:
        return {}

    return app


def test_each_app_has_its_own_registry():
    a, b = bare_app(), bare_app()
    metrics.observe_item(a, "ideation", ["enqueue", "interstitial:author_support"])
    metrics.observe_item(a, "ideation", ["enqueue"])
    _, sa = scrape(TestClient(a))
    _, sb = scrape(TestClient(b))
    assert value(sa, "sahay_items_total", label="ideation") == 2
    assert value(sa, "sahay_actions_total", action="enqueue") == 2
    assert value(sa, "sahay_actions_total", action="interstitial:author_support") == 1
    assert value(sb, "sahay_items_total", label="ideation") == 0
    assert not any(name.startswith("process_") for name, _ in sa)


def test_model_batch_queue_and_item_errors():
    app = bare_app()
    metrics.set_model(app, "old-1")
    metrics.set_model(app, "new-2")
    for size in (1, 3, 40):
        metrics.observe_batch(app, size)
    metrics.set_queue_depth(app, 7)
    metrics.observe_item_error(app)
    metrics.observe_item_error(app)
    _, s = scrape(TestClient(app))
    assert by_label(s, "sahay_model_info", "model_version") == {"new-2": 1}
    assert value(s, "sahay_batch_size_count") == 3 and value(s, "sahay_batch_size_sum") == 44
    assert value(s, "sahay_batch_size_bucket", le="4.0") == 2
    assert value(s, "sahay_queue_depth") == 7
    assert value(s, "sahay_item_errors_total") == 2


def test_routes_are_templates_and_methods_are_bounded():
    app = bare_app()
    client = TestClient(app)
    client.get(f"/things/{SENTINEL_PATH}")
    client.post("/things/x")  # 405: the route is known, the method is not allowed
    client.request("BREW", "/things/x")
    text, s = scrape(client)
    assert value(s, "sahay_requests_total", method="GET", route="/things/{name}", status="200") == 1
    assert value(s, "sahay_requests_total", method="POST", route="/things/{name}", status="405") == 1
    assert value(s, "sahay_requests_total", method="other", route="/things/{name}", status="405") == 1
    assert SENTINEL_PATH not in text and "BREW" not in text


def test_observing_without_install_is_a_no_op():
    app = FastAPI()
    metrics.observe_item(app, "none", ["none"])
    metrics.observe_item_error(app)
    metrics.set_model(app, "v")
    metrics.observe_batch(app, 1)
    metrics.set_queue_depth(app, 0)


def test_an_endpoint_that_raises_counts_as_500():
    app = bare_app()

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("boom")

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/boom").status_code == 500
    _, s = scrape(client)
    assert value(s, "sahay_requests_total", method="GET", route="/boom", status="500") == 1
    assert value(s, "sahay_request_duration_seconds_count", route="/boom") == 1
