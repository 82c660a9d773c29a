"""The HTTP app: TF Serving's REST API (status, metadata, predict) plus the web page at ``/``.

Routes, as in TF Serving:

* ``GET /v1/models/{name}[/versions/{v}]``: model status;
* ``GET /v1/models/{name}[/versions/{v}]/metadata``: signature defs;
* ``POST /v1/models/{name}[/versions/{v}]:predict``: row or columnar predict.

Errors are ``{"error": "..."}`` with TF Serving's statuses: 400 for bad requests (and requests over the
limits of ``predict.Limits``), 404 for unknown models or versions, 405 for a ``GET`` of ``:predict``,
408 for a body that does not arrive within ``body_timeout_seconds``, 413 for bodies over the size
limit, 503 when the requests in flight leave no room in the memory budget for a while (see ``runs``),
504 for a request that runs past its deadline. Outside TF Serving's API: ``GET /`` (the page),
``/static/*`` (its script and style) and ``GET /api/models`` (what the page lists in its menu).
Predictions run in worker threads, so requests are served concurrently; a client that goes away stops
its request's work at the next image, chunk or band and leaves one line in the log.
"""

import asyncio
import logging
import os

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from cyclegan_tf.serving import limits
from cyclegan_tf.serving import predict as predict_lib
from cyclegan_tf.serving import runs as runs_lib
from cyclegan_tf.serving.registry import ServableNotFoundError

logger = logging.getLogger(__name__)

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
DEFAULT_MAX_REQUEST_BYTES = limits.MAX_REQUEST_BYTES
DEFAULT_MAX_PIXELS = limits.MAX_PIXELS
DEFAULT_REQUEST_TIMEOUT_SECONDS = limits.REQUEST_TIMEOUT_SECONDS
DEFAULT_BODY_TIMEOUT_SECONDS = limits.BODY_TIMEOUT_SECONDS
# Past the limit, the rest of a body is read and dropped (up to this much more) so that the client,
# still sending, receives the 413 instead of a reset connection.
_DRAIN_BYTES = 64 * 1024 * 1024
# What nginx answers when the client closed the connection before the response: never sent, logged.
_CLIENT_CLOSED_REQUEST = 499


def _error(status, message):
    return JSONResponse({"error": message}, status_code=status)


def _parse_version(text):
    if not text.isdigit():
        raise StarletteHTTPException(404, f"Malformed version: {text!r} is not a number")
    return int(text)


def _refuse_get_of_verb(text):
    """405 for ``GET .../models/NAME:predict`` (model names have no colon; verbs need POST)."""
    _, colon, verb = text.rpartition(":")
    if colon:
        raise StarletteHTTPException(
            405, f"Method Not Allowed: :{verb} takes POST with a JSON body, not GET"
        )


def _split_verb(text):
    name, colon, verb = text.rpartition(":")
    if not colon:
        raise StarletteHTTPException(404, f"Missing ':predict' in {text!r}")
    return name, verb


async def _read_body(request, limit, timeout):
    """The body, or ``RequestError`` 413 once it is over ``limit`` bytes, 408 after ``timeout`` s."""
    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > limit
    chunks, size = [], 0
    with anyio.move_on_after(timeout) as scope:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                too_large = True
            if too_large:
                if size > limit + _DRAIN_BYTES:
                    break
                continue
            chunks.append(chunk)
    if scope.cancelled_caught:
        raise predict_lib.RequestError(
            408,
            f"the request body did not arrive within {timeout:g} s (--body-timeout-seconds); "
            f"{size} bytes came",
        )
    if too_large:
        raise predict_lib.RequestError(
            413,
            f"the request body is over {limit} bytes (--max-request-mb {limit / 2**20:g}); "
            "send smaller or fewer images",
        )
    return b"".join(chunks)


async def _drain(request, limit, timeout):
    """Reads and drops the body (up to ``limit`` bytes), so that a refusal reaches the client."""
    size = 0
    with anyio.move_on_after(timeout):
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    break
        except ClientDisconnect:
            pass


def _client(request):
    return f"{request.client[0]}:{request.client[1]}" if request.client else "a client"


def create_app(
    registry,
    max_request_bytes=DEFAULT_MAX_REQUEST_BYTES,
    max_pixels=DEFAULT_MAX_PIXELS,
    max_concurrent_runs=runs_lib.DEFAULT_MAX_CONCURRENT_RUNS,
    max_memory_gb=runs_lib.DEFAULT_MAX_MEMORY_GB,
    max_wait_seconds=runs_lib.DEFAULT_WAIT_SECONDS,
    precision="float32",
    max_request_pixels=predict_lib.DEFAULT_MAX_REQUEST_PIXELS,
    max_instances=predict_lib.DEFAULT_MAX_INSTANCES,
    request_timeout_seconds=DEFAULT_REQUEST_TIMEOUT_SECONDS,
    body_timeout_seconds=DEFAULT_BODY_TIMEOUT_SECONDS,
):
    """Builds the FastAPI app serving ``registry``'s models.

    Args:
        registry: a ``registry.ModelRegistry`` (already refreshed; polling is the caller's choice).
        max_request_bytes: int, the largest request body accepted. Defaults to 32 MiB.
        max_pixels: int, the largest height x width accepted per image. Defaults to 4096 x 4096
            (safe: images too large for a run's share of the budget are translated tiled).
        max_concurrent_runs: int, how many model runs may overlap; the JSON and image encoding of
            other requests still proceeds meanwhile. Defaults to 2.
        max_memory_gb: float, the memory (GiB) the requests in flight may hold together (model runs,
            JSON parsing and writing), on top of the server's own. Defaults to 6.
        max_wait_seconds: float, how long a request waits for room before it gets 503. Defaults
            to 10.
        precision: str, ``"float32"`` or ``"bf16"`` (see ``runs.ModelRuns``).
        max_request_pixels: int, the pixels of all the images of one request together. Defaults to
            4096 x 4096.
        max_instances: int, the instances (images) of one request. Defaults to 64.
        request_timeout_seconds: float, how long a request may take once its headers arrived before
            it is stopped with 504 (TF Serving's ``--rest_api_timeout_in_ms``). Defaults to 600.
        body_timeout_seconds: float, how long the body may take to arrive before 408. Defaults to 60.

    Returns:
        A ``fastapi.FastAPI`` app, ready for ``uvicorn.run`` (or ``connections.run_server``).
    """
    if int(max_request_bytes) <= 0:
        raise ValueError(f"max_request_bytes must be positive. Received: {max_request_bytes}")
    limits = predict_lib.Limits(max_pixels, max_request_pixels, max_instances)
    for name, value in (
        ("request_timeout_seconds", request_timeout_seconds),
        ("body_timeout_seconds", body_timeout_seconds),
    ):
        if not float(value) > 0:
            raise ValueError(f"{name} must be positive. Received: {value}")
    app = FastAPI(
        title="cyclegan_tf serving",
        description="TF Serving's REST API for the exported generators, and a web page.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    if not float(max_memory_gb) > 0:
        raise ValueError(f"max_memory_gb must be positive. Received: {max_memory_gb}")
    budget = runs_lib.MemoryBudget(
        int(float(max_memory_gb) * 2**30), max_concurrent_runs, max_wait_seconds
    )
    model_runs = runs_lib.ModelRuns(budget, precision)
    app.state.registry = registry

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, error):
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(ServableNotFoundError)
    async def not_found(request, error):
        return _error(404, str(error))

    @app.exception_handler(predict_lib.RequestError)
    async def bad_request(request, error):
        response = _error(error.status, error.message)
        if error.status == 408:  # the rest of the body may never come: no next request either
            response.headers["connection"] = "close"
        return response

    @app.exception_handler(Exception)
    async def internal_error(request, error):
        logger.exception("Unhandled error for %s %s", request.method, request.url.path)
        return _error(500, f"internal error: {type(error).__name__}: {error}")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(os.path.join(STATIC_DIR, "index.html"))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/models")
    def list_models():
        models = []
        for name in registry.model_names():
            try:
                served = registry.get(name)
            except ServableNotFoundError:
                continue  # unloaded between the two calls
            models.append(
                {
                    "name": name,
                    "version": str(served.version),
                    "signatures": sorted(served.signatures),
                }
            )
        return {
            "models": models,
            "max_request_bytes": max_request_bytes,
            "max_pixels": limits.max_pixels,
            "max_request_pixels": limits.max_request_pixels,
            "max_instances": limits.max_instances,
        }

    @app.get("/v1/models/{name}")
    def model_status(name: str):
        _refuse_get_of_verb(name)
        return registry.status(name)

    @app.get("/v1/models/{name}/versions/{version}")
    def version_status(name: str, version: str):
        _refuse_get_of_verb(version)
        return registry.status(name, _parse_version(version))

    @app.get("/v1/models/{name}/metadata")
    def model_metadata(name: str):
        return registry.metadata(name)

    @app.get("/v1/models/{name}/versions/{version}/metadata")
    def version_metadata(name: str, version: str):
        return registry.metadata(name, _parse_version(version))

    async def run_predict(request, name, version, verb):
        if verb != "predict":
            raise StarletteHTTPException(
                404 if verb not in ("classify", "regress") else 400,
                f"this server implements :predict only. Received: :{verb}",
            )
        served = registry.get(name, version)
        deadline = runs_lib.Deadline(request_timeout_seconds)
        declared = request.headers.get("content-length", "")
        expected = int(declared) if declared.isdigit() else max_request_bytes
        # The JSON's parsed form holds many times its bytes: reserved before the body is read.
        try:
            parsing = await anyio.to_thread.run_sync(
                budget.acquire,
                runs_lib.json_bytes(min(expected, max_request_bytes)),
                False,
                deadline,
            )
        except predict_lib.RequestError:
            await _drain(request, max_request_bytes + _DRAIN_BYTES, body_timeout_seconds)
            raise
        try:
            body = [await _read_body(request, max_request_bytes, body_timeout_seconds)]
            watcher = asyncio.ensure_future(_cancel_when_gone(request, deadline))
            try:
                content = await anyio.to_thread.run_sync(
                    _predict, served, body, parsing, limits, model_runs, deadline
                )
            finally:
                watcher.cancel()
        except ClientDisconnect:
            logger.info("%s went away while sending its request to %s", _client(request), name)
            return Response(status_code=_CLIENT_CLOSED_REQUEST)
        except runs_lib.RequestCancelled:
            logger.info(
                "%s went away before the answer of %s; its work stopped", _client(request), name
            )
            return Response(status_code=_CLIENT_CLOSED_REQUEST)
        finally:
            parsing.release()
        return Response(content, media_type="application/json")

    @app.post("/v1/models/{name_and_verb}")
    async def model_predict(request: Request, name_and_verb: str):
        name, verb = _split_verb(name_and_verb)
        return await run_predict(request, name, None, verb)

    @app.post("/v1/models/{name}/versions/{version_and_verb}")
    async def version_predict(request: Request, name: str, version_and_verb: str):
        version, verb = _split_verb(version_and_verb)
        return await run_predict(request, name, _parse_version(version), verb)

    return app


async def _cancel_when_gone(request, deadline):
    """Cancels ``deadline`` when the client disconnects (its body is read: only that can come)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            deadline.cancel()
            return


def _predict(served, body, parsing, limits, model_runs, deadline):
    """Parses, runs and answers one request, each phase within the memory budget.

    Args:
        served: a ``registry.ServedVersion``.
        body: a one-item list holding the body, emptied once parsed (so that its memory can go).
        parsing: the reservation of the parsing memory, released once the arrays are built.
        limits: a ``predict.Limits``.
        model_runs: a ``runs.ModelRuns``.
        deadline: a ``runs.Deadline``.

    Returns:
        bytes, the JSON answer.
    """
    parsed = predict_lib.parse_request(served, predict_lib.parse_json(body.pop()), limits)
    parsing.release()
    deadline.check()
    outputs = model_runs.run(served, parsed.signature_name, parsed.arrays, parsed.sizes, deadline)
    row_format = parsed.row_format
    del parsed  # the inputs
    with model_runs.budget.reserve(runs_lib.render_bytes(outputs), run=False, deadline=deadline):
        return predict_lib.render(predict_lib.response_body(outputs, row_format))
