"""`sahay bench --http URL`: requests per second and latency of a running service, over HTTP only.

After one probe request (a clear error now beats a table of failures) and one uncounted pass over the texts, at
each concurrency level N workers share one `httpx.AsyncClient` (a pool of at least N connections) and send
single-item POST /v1/classify requests back to back for the duration, after a short warm-up that is not counted.
Requests per second and the latency percentiles count the 200 responses whose item was classified; every other
outcome (503 when the service sheds load, 401, an item error, a dropped connection) is counted by kind beside
them. The client's own CPU time is reported per level: run on the service's machine it competes with the server
for the same cores, and readers should know how much.

Nothing here imports serve/: this measures whatever answers at the URL.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import numpy as np

DEFAULT_CONCURRENCY = (1, 8, 32)
WARMUP_SECONDS = 0.5
PRIME_TEXTS = 64
"""Before the first level, each of the first this many texts is sent once, uncounted: a model's first pass over a
new input shape can take many times its usual latency, which would otherwise land in the first level's p99."""
CLASSIFY_PATH = "/v1/classify"
GOAL = {"concurrency": 8, "min_req_per_s": 100.0, "max_p99_ms": 150.0}
"""Issue #5: on 2 cores, at least 100 single-item requests/s with p99 <= 150 ms at concurrency 8."""
ITEM_ERROR = "item_error"
"""Status key of a 200 response whose one item was refused (e.g. a text longer than the service allows)."""
TRANSPORT_ERROR = "transport_error"
"""Status key of a request that got no response (connection refused or reset, timeout)."""

NEUTRAL_TEXTS = [
    "the bus to the office was late again this morning, so I walked the last two stops and bought a coffee "
    "from the small stall near the station before the meeting started",
    "we planted tomatoes, chillies and a little basil in the garden last weekend, and the neighbour's kids "
    "helped water them every evening after school",
    "my cat has decided that the warm laptop keyboard is the best place to sleep, which makes working from "
    "home slower than I would like to admit",
    "kal shaam ko cricket match dekhne chalenge, tickets bhai ne already book kar liye hain, bas metro time "
    "pe pakadni padegi warna bheed bahut hogi",
    "the library near our flat opens at nine on weekdays and has a quiet reading room upstairs with good "
    "light and a few old maps of the city",
    "chai bahut achhi bani hai aaj, adrak thoda zyada daala tha aur mummy ne saath mein garam pakode bhi "
    "bana diye, baarish ka mausam perfect hai",
    "the recipe needs two cups of flour, one cup of milk, a pinch of salt and some patience while the dough "
    "rests for half an hour under a cloth",
    "our team won the office quiz night on friday, mostly thanks to one colleague who somehow knew every "
    "capital city and the name of every river",
    "आज सुबह हम पार्क में टहलने गए, वहाँ बच्चे क्रिकेट खेल रहे थे और एक दुकान पर ताज़ा नारियल पानी मिल रहा था",
    "please remember to bring an umbrella tomorrow, the forecast says light rain in the afternoon and the "
    "bus shelter near the college has a broken roof",
    "the train to pune was crowded as usual, but we found two seats near the window and watched the hills "
    "go by while sharing a packet of biscuits",
    "she painted the front door bright blue and the window frames white, and now the whole lane stops to "
    "ask which shop sold her the paint",
    "exam results come out on friday, so the whole hostel is pretending to be calm while refreshing the "
    "university website every ten minutes",
    "he fixed the bicycle chain himself using a video tutorial, an old toothbrush and far more grease than "
    "the job really needed",
    "naya phone ka camera kaafi achha hai, raat ko bhi photos saaf aati hain, bas battery thodi jaldi khatam "
    "ho jaati hai jab video banate hain",
    "मेरी दादी हर रविवार को आलू के पराठे बनाती हैं और पूरा परिवार साथ बैठकर नाश्ता करता है, यह हमारा पुराना रिवाज है",
]
"""Made-up, benign texts of about 40 tokens (en, hi-Latn, hi), each at most 200 characters: the default load."""


class BenchHTTPError(Exception):
    """The service cannot be benchmarked: unreachable, refusing the key, or failing the first request."""


def parse_concurrency(text: str) -> list[int]:
    """'1,8,32' -> [1, 8, 32] (sorted, unique); raises ValueError unless every item is a positive integer."""
    try:
        levels = [int(item) for item in text.split(",")]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise ValueError(f"--concurrency must be positive integers separated by commas, got {text!r}")
    return sorted(set(levels))


def check_url(url: str) -> str:
    """The base URL without a trailing slash; raises BenchHTTPError unless it is http(s)://host[:port][/prefix]."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BenchHTTPError(f"--http expects a base URL such as http://127.0.0.1:8000, got {url!r}")
    return url.rstrip("/")


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    try:
        import resource
    except ImportError:  # not on Unix
        return time.process_time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _body(text: str) -> bytes:
    return json.dumps({"items": [{"id": "bench", "text": text, "surface": "post"}]}, ensure_ascii=False).encode()


def _detail(response) -> str:
    """The service's own error message (they never quote the input), shortened."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail)[:200] if detail else response.reason_phrase


async def _probe(client, url: str, body: bytes, api_key: str | None) -> dict:
    """One request before any timing: a clear error now beats a table of failures later."""
    import httpx

    try:
        response = await client.post(CLASSIFY_PATH, content=body)
    except httpx.TransportError as exc:
        raise BenchHTTPError(f"cannot reach {url} ({type(exc).__name__}); is `sahay serve` running there?") from None
    if response.status_code in (401, 403):
        hint = "the API key was refused" if api_key else "set --api-key or SAHAY_API_KEY"
        raise BenchHTTPError(f"{url}{CLASSIFY_PATH} answered {response.status_code}: {hint}")
    if response.status_code == 404:
        raise BenchHTTPError(f"{url}{CLASSIFY_PATH} answered 404: is this a Sahay service?")
    if response.status_code != 200:
        raise BenchHTTPError(f"the first request answered {response.status_code}: {_detail(response)}")
    try:
        data = response.json()
        result = data["results"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        raise BenchHTTPError(f"{url}{CLASSIFY_PATH} did not answer like a Sahay service") from None
    if "error" in result:
        raise BenchHTTPError(f"the service refused the first benchmark text: {str(result['error'])[:200]}")
    return {"model_version": data.get("model_version")}


async def _drive(client, bodies: Sequence[bytes], workers: int, seconds: float) -> tuple[list[float], Counter]:
    """`workers` loops sending one request at a time until `seconds` have passed; the latencies (s) of the
    classified requests and the count of every outcome."""
    import httpx

    latencies: list[float] = []
    statuses: Counter = Counter()
    deadline = time.perf_counter() + seconds
    n = len(bodies)

    async def worker(start: int) -> None:
        k = start
        while time.perf_counter() < deadline:
            body = bodies[k % n]
            k += 1
            t0 = time.perf_counter()
            try:
                response = await client.post(CLASSIFY_PATH, content=body)
            except httpx.TransportError:
                statuses[TRANSPORT_ERROR] += 1
                await asyncio.sleep(0.01)  # a refused connection fails at once: do not spin
                continue
            elapsed = time.perf_counter() - t0
            if response.status_code != 200:
                statuses[str(response.status_code)] += 1
            elif b'"error":' in response.content:  # an ItemError; a quote inside a JSON string is escaped
                statuses[ITEM_ERROR] += 1
            else:
                statuses["200"] += 1
                latencies.append(elapsed)

    await asyncio.gather(*(worker(i * max(1, n // workers)) for i in range(workers)))
    return latencies, statuses


def _level_result(workers: int, latencies: list[float], statuses: Counter, wall: float, cpu: float) -> dict:
    ms = np.array(latencies) * 1000
    if len(ms):
        p50, p95, p99 = (float(v) for v in np.percentile(ms, [50, 95, 99]))
        latency = {"p50": p50, "p95": p95, "p99": p99, "mean": float(ms.mean()), "max": float(ms.max())}
    else:
        latency = {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    requests = sum(statuses.values())
    return {
        "concurrency": workers,
        "requests": requests,
        "ok": len(latencies),
        "errors": requests - len(latencies),
        "statuses": dict(sorted(statuses.items())),
        "req_per_s": len(latencies) / wall,
        "latency_ms": latency,
        "wall_s": wall,
        "client_cpu_s": cpu,
        "client_cpu_share": cpu / wall,
    }


async def _bench(
    url: str,
    texts: Sequence[str],
    levels: Sequence[int],
    seconds: float,
    api_key: str | None,
    warmup_seconds: float,
    timeout: float,
    on_step: Callable[[str], None] | None,
) -> dict:
    import httpx

    bodies = [_body(t) for t in texts]
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    pool = max(levels)
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=timeout) as client:
        service = await _probe(client, url, bodies[0], api_key)
        if on_step:
            on_step("priming: each text once")
        try:
            for body in bodies[1:PRIME_TEXTS]:  # a new input shape can be slow the first time (kernel selection)
                await client.post(CLASSIFY_PATH, content=body)
        except httpx.TransportError as exc:
            raise BenchHTTPError(f"lost {url} while priming ({type(exc).__name__})") from None
        results = []
        for workers in levels:
            if on_step:
                on_step(f"concurrency {workers}: warming up")
            if warmup_seconds > 0:
                await _drive(client, bodies, workers, warmup_seconds)
            if on_step:
                on_step(f"concurrency {workers}: measuring for {seconds:g} s")
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            latencies, statuses = await _drive(client, bodies, workers, seconds)
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
            results.append(_level_result(workers, latencies, statuses, wall, cpu))
    return {"service": service, "levels": results}


def goal_check(levels: Sequence[dict]) -> dict | None:
    """Issue #5's goal at its concurrency, if that level was measured."""
    level = next((lv for lv in levels if lv["concurrency"] == GOAL["concurrency"]), None)
    if level is None:
        return None
    p99 = level["latency_ms"]["p99"]
    met = level["req_per_s"] >= GOAL["min_req_per_s"] and p99 is not None and p99 <= GOAL["max_p99_ms"]
    return {**GOAL, "req_per_s": level["req_per_s"], "p99_ms": p99, "met": met}


def goal_line(goal: dict) -> str:
    """The goal and whether it was met, as Rich markup."""
    p99 = "-" if goal["p99_ms"] is None else f"{goal['p99_ms']:.1f}"
    verdict = "[green]met[/]" if goal["met"] else "[yellow]not met[/]"
    return (
        f"goal at concurrency {goal['concurrency']}: >= {goal['min_req_per_s']:.0f} req/s with p99 <= "
        f"{goal['max_p99_ms']:.0f} ms; measured {goal['req_per_s']:.1f} req/s, p99 {p99} ms: {verdict}"
    )


def bench_http_table(report: dict):
    """A Rich table, one row per concurrency level; req/s and latency count the classified (200) responses."""
    from rich.markup import escape
    from rich.table import Table

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    s, c = report["settings"], report["client"]
    title = (
        f"sahay bench --http — {report['url']}, model {report['model_version']}, {s['texts']} texts, "
        f"{s['seconds_per_level']:g} s per level"
    )
    where = "on the service's machine" if c["loopback_url"] else "on a machine"
    load = "-" if c["load_avg_1m"] is None else f"{c['load_avg_1m']:.2f}"
    caption = (
        f"req/s and latency count 200 responses only. The client ran {where} with {c['cpu_count']} CPUs (load "
        f"average {load}); sharing the service's machine, it takes cores from the server: see client CPU."
    )
    table = Table(title=escape(title), caption=escape(caption))
    for name in ("concurrency", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "client CPU"):
        table.add_column(name, justify="left" if name == "errors" else "right")
    for level in report["levels"]:
        lat = level["latency_ms"]
        errors = ", ".join(f"{k}: {v}" for k, v in level["statuses"].items() if k != "200") or "-"
        table.add_row(
            str(level["concurrency"]),
            str(level["requests"]),
            f"{level['req_per_s']:.1f}",
            fmt(lat["p50"]),
            fmt(lat["p95"]),
            fmt(lat["p99"]),
            escape(errors),
            f"{level['client_cpu_s']:.1f} s ({100 * level['client_cpu_share']:.0f}% of a core)",
        )
    return table


def run_http_bench(
    url: str,
    texts: Sequence[str] = NEUTRAL_TEXTS,
    concurrency: Sequence[int] = DEFAULT_CONCURRENCY,
    seconds: float = 5.0,
    api_key: str | None = None,
    warmup_seconds: float = WARMUP_SECONDS,
    timeout: float = 30.0,
    on_step: Callable[[str], None] | None = None,
) -> dict:
    """Benchmark the service at `url` (base URL) at each concurrency level; the report `sahay bench --http` writes.

    Raises BenchHTTPError when the URL is malformed or unreachable, or the first request is not classified.
    """
    try:
        import httpx
    except ImportError:
        raise BenchHTTPError("`sahay bench --http` needs httpx: pip install httpx") from None
    url = check_url(url)
    texts = list(texts)
    if not texts:
        raise BenchHTTPError("no texts to send")
    levels = sorted(set(concurrency))
    if not levels or levels[0] < 1 or seconds <= 0 or warmup_seconds < 0:
        raise BenchHTTPError("concurrency levels and --seconds must be positive")
    measured = asyncio.run(_bench(url, texts, levels, seconds, api_key, warmup_seconds, timeout, on_step))
    host = urlsplit(url).hostname or ""
    return {
        "url": url,
        "model_version": measured["service"]["model_version"],
        "settings": {
            "concurrency": levels,
            "seconds_per_level": seconds,
            "warmup_s": warmup_seconds,
            "primed_texts": min(len(texts), PRIME_TEXTS),
            "texts": len(texts),
            "items_per_request": 1,
            "authenticated": bool(api_key),
        },
        "client": {
            "cpu_count": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "loopback_url": host in ("localhost", "::1") or host.startswith("127."),
            "python": platform.python_version(),
            "httpx": httpx.__version__,
        },
        "levels": measured["levels"],
        "goal": goal_check(measured["levels"]),
    }
