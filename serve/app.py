"""The classification service: `create_app(settings)` builds the FastAPI app; `main()` runs it under uvicorn.

Inference only: the model artifact is loaded once at startup (lifespan); nothing here trains.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from serve import logging as slog
from serve import metrics
from serve.admin_api import router as admin_router
from serve.privacy import find_identifier, refusal_message
from serve.resources_api import router as resources_router
from serve.schemas import ClassifyItem, ClassifyRequest, ClassifyResponse, ItemError, ItemResult
from serve.settings import ServeSettings

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


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The app; with no settings they are read from the environment (`SAHAY_MODEL_PATH`, ...)."""
    settings = settings or ServeSettings()
    log = slog.configure(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from model.classifier import RiskClassifier

        started = time.perf_counter()
        try:
            classifier = await run_in_threadpool(RiskClassifier.load, settings.model_path)
        except Exception:
            slog.log_event(log, "model_load_failed", logging.ERROR, model_path=str(settings.model_path))
            raise
        app.state.classifier = classifier
        slog.log_event(
            log,
            "model_loaded",
            model_version=classifier.version,
            load_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        yield
        app.state.classifier = None

    app = FastAPI(title="Sahay", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.classifier = None
    predict_lock = threading.Lock()
    metrics.install(app)
    app.include_router(resources_router)
    app.include_router(admin_router)

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

    @app.post(
        "/v1/classify",
        response_model=ClassifyResponse,
        responses={413: {"description": "Too many items"}, 422: {"description": "Refused request"}},
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
            good.append((len(results), item))
            results.append(None)

        if good:

            def predict():
                with predict_lock:
                    return classifier.predict([item.text for _, item in good], explain="flagged")

            predictions = await run_in_threadpool(predict)
            for (index, item), pred in zip(good, predictions, strict=True):
                d = pred.to_dict()
                results[index] = ItemResult(
                    id=item.id,
                    label=d["label"],
                    probabilities=d["probabilities"],
                    at_risk=d["at_risk"],
                    urgent=d["urgent"],
                    violating=d["violating"],
                    spans=d["spans"],
                    lang=d["lang"],
                    model_version=d["model_version"],
                )
        for result in results:
            if isinstance(result, ItemResult):
                metrics.observe_item(request.app, result.label, [])
        request.state.counts = {"items": len(results), "item_errors": len(results) - len(good)}
        return ClassifyResponse(model_version=classifier.version, results=results)

    return app


def main(**overrides) -> None:
    """Run the service with settings from the environment (non-None `overrides` win), JSON logs, no access log."""
    import uvicorn

    settings = ServeSettings(**{k: v for k, v in overrides.items() if v is not None})
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=slog.uvicorn_log_config(settings.log_level),
        server_header=False,
    )
