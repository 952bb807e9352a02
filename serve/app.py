"""The classification service: `create_app(settings)` builds the FastAPI app; `main()` runs it under uvicorn.

Inference only: the model artifact is loaded once at startup (lifespan); nothing here trains.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from serve import logging as slog
from serve import metrics, retention, webhooks
from serve.admin_api import router as admin_router
from serve.auth import require_role
from serve.batcher import MicroBatcher, Overloaded, ShuttingDown
from serve.db import make_engine, migrate
from serve.helplines import HelplineDirectoryError, cached_directory
from serve.keys import KeyStore
from serve.moderate_page import router as moderate_router
from serve.policy import PolicyError, load_policy
from serve.privacy import find_identifier, refusal_message
from serve.queue import PSEUDONYM_SECRET_MISSING, Entry, Queue, entry_for
from serve.queue_api import router as queue_router
from serve.resources_api import router as resources_router
from serve.schemas import ClassifyItem, ClassifyRequest, ClassifyResponse, ErrorResponse, ItemError, ItemResult
from serve.settings import ServeSettings, describe_settings_error

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestRefused(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _item_error(exc: ValidationError) -> str:
    """The item's validation problems, by field; pydantic's messages here never quote the input."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "item"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def _parse_body(raw: bytes, settings: ServeSettings) -> ClassifyRequest:
    """Privacy guard first, then the envelope, then the item count."""
    if len(raw) > settings.max_body_bytes:
        raise RequestRefused(413, f"request body is larger than {settings.max_body_bytes} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise RequestRefused(422, "request body is not valid JSON") from None
    field_path = find_identifier(body)
    if field_path is not None:
        raise RequestRefused(422, refusal_message(field_path))
    if not isinstance(body, dict):
        raise RequestRefused(422, "request body must be a JSON object with an 'items' list")
    if isinstance(body.get("items"), list) and len(body["items"]) > settings.max_items:
        raise RequestRefused(413, f"too many items: {len(body['items'])} (at most {settings.max_items} per request)")
    try:
        return ClassifyRequest.model_validate(body)
    except ValidationError as exc:
        raise RequestRefused(422, _item_error(exc)) from None


def create_app(settings: ServeSettings | None = None, on_ready: Callable[[FastAPI], None] | None = None) -> FastAPI:
    """The app; with no settings they are read from the environment (`SAHAY_MODEL_PATH`, ...).

    `on_ready(app)` runs once the model is loaded (the main command prints its example request there).
    """
    settings = settings or ServeSettings()
    log = slog.configure(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from model.classifier import RiskClassifier

        try:
            policy = load_policy(settings.policy_path)  # a bad policy stops the start, naming the line
        except PolicyError as exc:
            slog.log_event(log, "policy_invalid", logging.ERROR, problems=exc.problems)
            raise
        app.state.policy = policy
        try:
            cached_directory(settings.helplines_path)  # a broken directory stops the start too
        except HelplineDirectoryError as exc:
            slog.log_event(log, "helplines_invalid", logging.ERROR, problem=str(exc))
            raise
        await run_in_threadpool(migrate, settings.database_url)
        engine = make_engine(settings.database_url)
        app.state.keystore = KeyStore(engine)
        app.state.queue = Queue(
            engine, lease_seconds=settings.lease_seconds, pseudonym_secret=settings.pseudonym_secret
        )
        started = time.perf_counter()
        threads = settings.inference_threads()
        try:
            classifier = await run_in_threadpool(RiskClassifier.load, settings.model_path, threads)
        except Exception:
            slog.log_event(log, "model_load_failed", logging.ERROR, model_path=str(settings.model_path))
            raise
        try:
            policy.check_operating_points(set(classifier.operating_points))
        except PolicyError as exc:
            slog.log_event(log, "policy_invalid", logging.ERROR, problems=exc.problems)
            raise
        batcher = MicroBatcher(
            lambda texts: classifier.predict(texts, explain="flagged"),
            max_batch=settings.max_batch,
            wait_ms=settings.batch_wait_ms,
            queue_max=settings.queue_max,
            on_batch=lambda n: metrics.observe_batch(app, n),
            on_depth=lambda n: metrics.set_queue_depth(app, n),
        )
        await batcher.start()
        app.state.batcher = batcher
        app.state.thresholds = {name: point.threshold for name, point in classifier.operating_points.items()}
        app.state.classifier = classifier
        metrics.set_model(app, classifier.version)
        slog.log_event(
            log,
            "model_loaded",
            model_version=classifier.version,
            policy_version=policy.version,
            inference_threads=threads,
            load_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        background = [
            retention.start_periodic_purge(engine, settings, log),
            webhooks.start_dispatcher(engine, settings, log),
        ]
        if on_ready is not None:
            on_ready(app)
        yield
        app.state.classifier = None  # /readyz turns 503 while the accepted work finishes
        await batcher.stop()
        for task in background:
            await task.stop()
        engine.dispose()
        slog.log_event(log, "stopped")

    app = FastAPI(title="Sahay", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.classifier = None
    metrics.install(app)
    app.include_router(resources_router)
    app.include_router(admin_router)
    app.include_router(queue_router)
    app.include_router(moderate_router)

    @app.middleware("http")
    async def request_log(request: Request, call_next):
        given = request.headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        request.state.request_id = request_id
        request.state.counts = {}
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-ID"] = request_id
            return response
        finally:
            slog.log_event(
                log,
                "request",
                request_id=request_id,
                method=request.method,
                path=request.url.path,
                status=status,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
                **request.state.counts,
            )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        classifier = request.app.state.classifier
        if classifier is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready", "model_version": classifier.version})

    item_schema = ClassifyItem.model_json_schema()
    item_schema["properties"]["text"]["maxLength"] = settings.max_text_chars
    body_schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item_schema, "minItems": 1, "maxItems": settings.max_items}},
        "required": ["items"],
        "additionalProperties": False,
    }

    @app.post(
        "/v1/classify",
        dependencies=[Depends(require_role("service"))],
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": body_schema}}}},
        response_model=ClassifyResponse,
        responses={
            401: {"description": "Missing, unknown or revoked API key", "model": ErrorResponse},
            403: {"description": "The key's role may not classify", "model": ErrorResponse},
            413: {"description": "Too many items or too large a body", "model": ErrorResponse},
            422: {"description": "Refused request (identifiers, malformed JSON, bad envelope)", "model": ErrorResponse},
            503: {
                "description": "Model queue full (see Retry-After), model not loaded, or the moderation queue could "
                "not be written (nothing was acknowledged)",
                "model": ErrorResponse,
            },
        },
    )
    async def classify(request: Request) -> Any:
        classifier = request.app.state.classifier
        if classifier is None:
            return JSONResponse({"detail": "model not loaded"}, status_code=503)
        try:
            envelope = _parse_body(await request.body(), settings)
        except RequestRefused as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status)

        results: list[ItemResult | ItemError | None] = []
        good: list[tuple[int, ClassifyItem]] = []
        context = {"max_text_chars": settings.max_text_chars}
        for raw in envelope.items:
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            item_id = raw_id if isinstance(raw_id, str) else None
            if not isinstance(raw, dict):
                results.append(ItemError(id=None, error="item is not a JSON object"))
                continue
            try:
                item = ClassifyItem.model_validate(raw, context=context)
            except ValidationError as exc:
                results.append(ItemError(id=item_id, error=_item_error(exc)))
                continue
            if item.author_id is not None and not request.app.state.queue.pseudonymises:
                results.append(ItemError(id=item.id, error=PSEUDONYM_SECRET_MISSING))
                continue
            good.append((len(results), item))
            results.append(None)

        if good:
            try:
                predictions = await request.app.state.batcher.classify([item.text for _, item in good])
            except Overloaded as exc:
                request.state.counts = {"items": len(results), "shed": True}
                return JSONResponse(
                    {"detail": f"{exc}; nothing was classified"},
                    status_code=503,
                    headers={"Retry-After": str(exc.retry_after)},
                )
            except ShuttingDown:
                return JSONResponse({"detail": "the service is shutting down; retry on another instance"}, 503)
            policy = request.app.state.policy
            thresholds = request.app.state.thresholds
            to_queue: list[tuple[int, Entry]] = []
            for (index, item), pred in zip(good, predictions, strict=True):
                d = pred.to_dict()
                signals = {"at_risk": d["at_risk"], "urgent": d["urgent"], "violating": d["violating"]}
                decision = policy.decide(signals, thresholds, item.surface, item.country)
                results[index] = ItemResult(
                    id=item.id,
                    label=d["label"],
                    probabilities=d["probabilities"],
                    **signals,
                    spans=d["spans"],
                    lang=d["lang"],
                    decision=decision.to_dict(),
                    model_version=d["model_version"],
                )
                metrics.observe_item(request.app, d["label"], decision.action_names)
                if (entry := entry_for(item, d, decision)) is not None:
                    to_queue.append((index, entry))
            if to_queue:  # committed before the response: an acknowledged item is in the queue
                try:
                    queue_ids = await run_in_threadpool(
                        request.app.state.queue.enqueue, [e for _, e in to_queue], request.state.api_key
                    )
                except SQLAlchemyError as exc:
                    slog.log_event(log, "queue_write_failed", logging.ERROR, error=type(exc).__name__)
                    return JSONResponse(
                        {"detail": "the moderation queue could not be written; nothing was acknowledged, retry"},
                        status_code=503,
                        headers={"Retry-After": "1"},
                    )
                for (index, _), queue_id in zip(to_queue, queue_ids, strict=True):
                    results[index].queue_item_id = queue_id
        for result in results:
            if isinstance(result, ItemError):
                metrics.observe_item_error(request.app)
        request.state.counts = {"items": len(results), "item_errors": len(results) - len(good)}
        return ClassifyResponse(model_version=classifier.version, results=results)

    return app


def main(on_ready: Callable[[FastAPI], None] | None = None, **overrides) -> None:
    """Run the service with settings from the environment (non-None `overrides` win), JSON logs, no access log."""
    import uvicorn

    try:
        settings = ServeSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        sys.stderr.write(f"error: bad setting: {describe_settings_error(exc)}\n")
        raise SystemExit(2) from None
    uvicorn.run(
        create_app(settings, on_ready=on_ready),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=slog.uvicorn_log_config(settings.log_level),
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )
