"""Prometheus metrics of the service: GET /metrics, in the text exposition format.

Each app has its own `CollectorRegistry` (on `app.state.metrics`), so two apps in one process do not clash. The
series carry no text, no item or request ids and no raw paths: requests are labelled by route template
(`/v1/classify`; "other" for paths no route knows), items by label and policy action, which keeps both the
privacy and the cardinality bounded. With several uvicorn workers each process has its own figures.

    sahay_requests_total{method, route, status}      requests answered
    sahay_request_duration_seconds{route}            latency histogram, 1 ms .. 5 s
    sahay_items_total{label}                         items classified, by predicted label
    sahay_actions_total{action}                      policy actions taken ("enqueue", "interstitial:author_support")
    sahay_item_errors_total                          items refused one by one (empty, too long, bad field)
    sahay_model_info{model_version}                  1 for the loaded model
    sahay_batch_size                                 texts per forward pass (the micro-batcher)
    sahay_queue_depth                                texts waiting for the model
    process_*, python_*                              CPU, memory, open files, GC of this process

The middleware is a plain ASGI one and sits where `install` is called among the app's middleware: middleware
added after it wraps it, so what such middleware answers by itself is not counted. Call `install` after
the others to count everything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds; 0.15 is there because the latency goal is p99 <= 150 ms."""
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"


@dataclass
class Metrics:
    """The registry of one app and its series."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    items: Counter
    actions: Counter
    item_errors: Counter
    model_info: Gauge
    batch_size: Histogram
    queue_depth: Gauge
    model_version: str | None = None

    @classmethod
    def create(cls, process: bool = True) -> Metrics:
        registry = CollectorRegistry(auto_describe=True)
        if process:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        return cls(
            registry=registry,
            requests=Counter(
                "sahay_requests", "HTTP requests answered", ["method", "route", "status"], registry=registry
            ),
            latency=Histogram(
                "sahay_request_duration_seconds",
                "Time from request to the end of the response, by route template",
                ["route"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            items=Counter("sahay_items", "Items classified, by predicted label", ["label"], registry=registry),
            actions=Counter("sahay_actions", "Policy actions decided, by action", ["action"], registry=registry),
            item_errors=Counter(
                "sahay_item_errors", "Items refused one by one (the rest of their request went on)", registry=registry
            ),
            model_info=Gauge("sahay_model_info", "The loaded model (value 1)", ["model_version"], registry=registry),
            batch_size=Histogram(
                "sahay_batch_size", "Texts per forward pass of the model", buckets=BATCH_BUCKETS, registry=registry
            ),
            queue_depth=Gauge("sahay_queue_depth", "Texts waiting for the model", registry=registry),
        )


def route_template(scope: Scope) -> str:
    """The template of the route that answered (`/v1/classify`), else of the first route the path matches (for a
    response given before routing), else "other"; never the raw path."""
    route = scope.get("route")
    if route is None:
        app = scope.get("app")
        partial = None
        for candidate in getattr(getattr(app, "router", None), "routes", ()):
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                route = candidate
                break
            if match is Match.PARTIAL and partial is None:
                partial = candidate
        route = route or partial
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else OTHER


class MetricsMiddleware:
    """Counts every HTTP request by method, route template and status, and times it to the last body byte."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(method if method in METHODS else OTHER, route, str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)


def _metrics(app: FastAPI) -> Metrics | None:
    return getattr(app.state, "metrics", None)


def install(app: FastAPI, process: bool = True) -> None:
    """Give `app` its own registry, the request middleware and GET /metrics (not in the OpenAPI schema).

    `process=False` leaves out the process_* / python_* series (they read /proc on every scrape).
    """
    metrics = Metrics.create(process=process)
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        classifier = getattr(request.app.state, "classifier", None)
        version = getattr(classifier, "version", None)
        if isinstance(version, str) and version != metrics.model_version:
            set_model(request.app, version)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def observe_item(app: FastAPI, label: str, actions: list[str]) -> None:
    """Count one classified item by label and by each policy action (names such as "enqueue",
    "interstitial:author_support", "none"). Labels and action names only: never text."""
    metrics = _metrics(app)
    if metrics is None:
        return
    metrics.items.labels(label).inc()
    for action in actions:
        metrics.actions.labels(action).inc()


def observe_item_error(app: FastAPI) -> None:
    """Count one item refused on its own (its error entry in the response)."""
    metrics = _metrics(app)
    if metrics is not None:
        metrics.item_errors.inc()


def set_model(app: FastAPI, version: str) -> None:
    """Mark `version` as the loaded model: sahay_model_info{model_version=version} 1, and no other version."""
    metrics = _metrics(app)
    if metrics is None:
        return
    metrics.model_info.clear()
    metrics.model_info.labels(version).set(1)
    metrics.model_version = version


def observe_batch(app: FastAPI, size: int) -> None:
    """Record one forward pass of `size` texts (the micro-batcher calls this; safe from any thread)."""
    metrics = _metrics(app)
    if metrics is not None:
        metrics.batch_size.observe(size)


def set_queue_depth(app: FastAPI, n: int) -> None:
    """Texts now waiting for the model."""
    metrics = _metrics(app)
    if metrics is not None:
        metrics.queue_depth.set(n)
