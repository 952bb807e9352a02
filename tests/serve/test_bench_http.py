"""`sahay bench --http`: eval/bench_http.py against the real server of the conftest (timings not asserted),
its errors, and the command through the root CLI."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from cli import app
from eval.bench_http import NEUTRAL_TEXTS, BenchHTTPError, parse_concurrency, run_http_bench
from tests.neutral_texts import SENTENCES
from tests.serve.conftest import MAX_TEXT_CHARS

runner = CliRunner()
LEVEL_FIELDS = {
    "concurrency",
    "requests",
    "ok",
    "errors",
    "statuses",
    "req_per_s",
    "latency_ms",
    "wall_s",
    "client_cpu_s",
    "client_cpu_share",
}


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_bench_against_the_server(server, artifact_version):
    steps = []
    report = run_http_bench(
        server.base_url,
        SENTENCES,
        concurrency=(2, 1),
        seconds=1.0,
        api_key=server.key("service"),
        warmup_seconds=0.2,
        on_step=steps.append,
    )
    assert report["url"] == server.base_url and report["model_version"] == artifact_version
    assert report["settings"]["concurrency"] == [1, 2] and report["settings"]["texts"] == len(SENTENCES)
    assert report["settings"]["authenticated"] is True
    assert report["client"]["loopback_url"] is True and report["client"]["cpu_count"] >= 1
    assert report["goal"] is None  # concurrency 8 was not measured
    assert [level["concurrency"] for level in report["levels"]] == [1, 2]
    for level in report["levels"]:
        assert set(level) == LEVEL_FIELDS
        assert level["requests"] > 0 and level["ok"] == level["requests"] and level["errors"] == 0
        assert level["statuses"] == {"200": level["requests"]}
        lat = level["latency_ms"]
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert level["req_per_s"] > 0 and level["wall_s"] >= 1.0
        assert level["client_cpu_s"] >= 0
    assert any("concurrency 2" in step for step in steps)
    json.dumps(report)  # the report is written as JSON


def test_the_built_in_texts_fit_the_test_server():
    assert len(NEUTRAL_TEXTS) >= 10 and max(len(t) for t in NEUTRAL_TEXTS) <= MAX_TEXT_CHARS


def test_parse_concurrency():
    assert parse_concurrency("32,1,8,8") == [1, 8, 32]
    for bad in ("", "0", "1,x", "-1"):
        with pytest.raises(ValueError, match="--concurrency"):
            parse_concurrency(bad)


def test_unreachable_and_malformed_urls_are_clear_errors():
    with pytest.raises(BenchHTTPError, match=r"cannot reach .*is `sahay serve` running"):
        run_http_bench(closed_port_url(), SENTENCES, concurrency=(1,), seconds=0.1)
    with pytest.raises(BenchHTTPError, match="base URL"):
        run_http_bench("127.0.0.1:8000", SENTENCES, concurrency=(1,), seconds=0.1)


def test_a_first_request_that_fails_stops_the_bench(server):
    key = server.key("service")
    with pytest.raises(BenchHTTPError, match="401: set --api-key or SAHAY_API_KEY"):
        run_http_bench(server.base_url, SENTENCES, concurrency=(1,), seconds=0.1)
    with pytest.raises(BenchHTTPError, match="401: the API key was refused"):
        run_http_bench(server.base_url, SENTENCES, concurrency=(1,), seconds=0.1, api_key="not-a-key")
    with pytest.raises(BenchHTTPError, match="404: is this a Sahay service"):
        run_http_bench(f"{server.base_url}/elsewhere", SENTENCES, concurrency=(1,), seconds=0.1, api_key=key)
    too_long = ["x" * (MAX_TEXT_CHARS + 1)]
    with pytest.raises(BenchHTTPError, match=r"refused the first benchmark text: .*longer than") as info:
        run_http_bench(server.base_url, too_long, concurrency=(1,), seconds=0.1, api_key=key)
    assert "xxxx" not in str(info.value)


class _Refuses(BaseHTTPRequestHandler):
    seen_auth: ClassVar[list[str | None]] = []

    def do_POST(self):
        _Refuses.seen_auth.append(self.headers.get("authorization"))
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = b'{"detail": "missing or unknown API key"}'
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Refuses)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_401_says_how_to_pass_a_key_and_the_key_goes_as_a_bearer_token(refusing_server):
    _Refuses.seen_auth.clear()
    with pytest.raises(BenchHTTPError, match="401: set --api-key or SAHAY_API_KEY"):
        run_http_bench(refusing_server, SENTENCES, concurrency=(1,), seconds=0.1)
    with pytest.raises(BenchHTTPError, match="401: the API key was refused"):
        run_http_bench(refusing_server, SENTENCES, concurrency=(1,), seconds=0.1, api_key="k-123")
    assert _Refuses.seen_auth == [None, "Bearer k-123"]


def test_cli_bench_http(server, tmp_path):
    out = tmp_path / "bench_http.json"
    args = ["bench", "--http", server.base_url, "--seconds", "1", "--concurrency", "1", "--out", str(out)]
    result = runner.invoke(app, args, env={"SAHAY_API_KEY": server.key("service")})
    assert result.exit_code == 0, result.output
    assert "sahay bench --http" in result.output and "client CPU" in result.output
    report = json.loads(out.read_text())
    assert [level["concurrency"] for level in report["levels"]] == [1]
    assert report["levels"][0]["statuses"] == {"200": report["levels"][0]["requests"]}
    assert report["settings"]["source"].startswith("built-in")


def test_cli_bench_http_errors(server, tmp_path):
    out = tmp_path / "bench_http.json"
    result = runner.invoke(app, ["bench", "--http", server.base_url, "--out", str(out)], env={"SAHAY_API_KEY": ""})
    assert result.exit_code == 2 and "set --api-key or SAHAY_API_KEY" in result.output
    result = runner.invoke(app, ["bench", "--http", closed_port_url(), "--seconds", "1", "--out", str(out)])
    assert result.exit_code == 2 and "cannot reach" in result.output
    result = runner.invoke(app, ["bench", "--http", closed_port_url(), "--concurrency", "0"])
    assert result.exit_code == 2 and "--concurrency" in result.output
    result = runner.invoke(app, ["bench", "--http", closed_port_url(), "--model", "artifacts/model"])
    assert result.exit_code == 2 and "leave out --model" in result.output
    assert not out.exists()
