"""Micro-batching under load through the real server: a full queue answers 503 with Retry-After; SIGTERM
lets accepted work finish."""

from __future__ import annotations

import signal
import threading
import time

import httpx

from tests.neutral_texts import SENTENCES
from tests.serve.conftest import MAX_ITEMS, start_server, stop_server


def _items(n: int, prefix: str) -> dict:
    return {
        "items": [{"id": f"{prefix}{i}", "text": SENTENCES[i % len(SENTENCES)], "surface": "post"} for i in range(n)]
    }


def _post_in_thread(client_kwargs: dict, url: str, body: dict, out: dict) -> threading.Thread:
    def send():
        with httpx.Client(**client_kwargs) as c:
            out["response"] = c.post(url, json=body)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def test_full_queue_answers_503_with_retry_after_and_the_accepted_request_completes(tiny_artifact, tmp_path):
    # The queue holds exactly one full request; the batch waits 1.5 s for company, so a second request arrives
    # while the first is still queued.
    srv = start_server(
        tiny_artifact,
        tmp_path,
        SAHAY_QUEUE_MAX=str(MAX_ITEMS),
        SAHAY_BATCH_WAIT_MS="1500",
        SAHAY_MAX_BATCH="64",
    )
    try:
        headers = srv.auth_headers("service")
        first: dict = {}
        thread = _post_in_thread(
            {"headers": headers, "timeout": 30}, f"{srv.base_url}/v1/classify", _items(MAX_ITEMS, "a"), first
        )
        time.sleep(0.5)
        second = httpx.post(f"{srv.base_url}/v1/classify", json=_items(1, "b"), headers=headers, timeout=30)
        thread.join(30)
        assert second.status_code == 503, second.text
        assert int(second.headers["Retry-After"]) >= 1
        assert "queue is full" in second.json()["detail"]
        assert first["response"].status_code == 200
        assert [r["id"] for r in first["response"].json()["results"]] == [f"a{i}" for i in range(MAX_ITEMS)]
        metrics = httpx.get(f"{srv.base_url}/metrics", timeout=10).text
        assert 'status="503"' in metrics
    finally:
        stop_server(srv)


def test_sigterm_finishes_accepted_work_then_exits_cleanly(tiny_artifact, tmp_path):
    srv = start_server(tiny_artifact, tmp_path, SAHAY_BATCH_WAIT_MS="1500")
    try:
        out: dict = {}
        thread = _post_in_thread(
            {"headers": srv.auth_headers("service"), "timeout": 30}, f"{srv.base_url}/v1/classify", _items(3, "s"), out
        )
        time.sleep(0.5)  # the request is accepted and waiting for its batch
        srv.process.send_signal(signal.SIGTERM)
        thread.join(30)
        assert out["response"].status_code == 200
        assert len(out["response"].json()["results"]) == 3
        # uvicorn re-raises the signal after its graceful shutdown, so "terminated by SIGTERM" is the clean exit
        assert srv.process.wait(timeout=20) in (0, -signal.SIGTERM)
        assert '"event": "stopped"' in srv.logs()
    finally:
        if srv.process.poll() is None:
            stop_server(srv)
