"""The HTTP API and the web page: routes, the token check, the bounded queue and JSON errors.

Every API answer that is not an image is JSON; an error is ``{"detail": "<one sentence>"}`` with status 400
(a bad image, parameter or hint), 401 (no or wrong token), 413 (too large), 415 (not a form upload) or 503 (queue
full or timed out, with ``Retry-After``). No route takes a path from the client.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from pix2color import __version__
from pix2color.hint_points import MAX_HINTS
from pix2color.serve.batching import Batcher
from pix2color.serve.hint_field import check_hints_accepted, check_hints_inside, read_hints
from pix2color.serve.model import MAX_RENDER_SIZE, Photo, ServedModel, Settings
from pix2color.serve.options import ServeOptions
from pix2color.serve.uploads import (
    FIELD,
    HINTS_FIELD,
    MAX_HINT_BYTES,
    MEDIA_TYPES,
    decode_upload,
    encode_image,
    read_upload,
)

STATIC = Path(__file__).resolve().parent / "static"
MAX_SATURATION = 4.0
LOCAL_NAMES = frozenset({"localhost"})
BEARER = HTTPBearer(auto_error=False, description="the server's --token")
PAGE_HEADERS = {  # the page loads nothing from elsewhere: no CDN, works offline
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; connect-src 'self' blob:; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {
                        FIELD: {"type": "string", "format": "binary", "description": "the photo"},
                        HINTS_FIELD: {
                            "type": "string",
                            "description": (
                                "optional colour hints for a model that takes them (GET /v1/model: hints), the "
                                'JSON list pix2color-infer --hints reads: [{"x": 120, "y": 80, "color": '
                                '"#b03a2e", "size": 8}], x and y in the photo\'s pixels'
                            ),
                        },
                    },
                }
            }
        },
    }
}
ERRORS = {
    code: {"description": text, "content": {"application/json": {"example": {"detail": "One sentence."}}}}
    for code, text in {
        400: "a bad image, parameter or hint",
        401: "no or wrong token",
        413: "upload or image too large",
        415: "not a multipart/form-data upload",
        503: "queue full or timed out (Retry-After)",
    }.items()
}


class Admission:
    """Counts colorize requests in the server; one past ``limit`` gets 503 with a Retry-After estimate."""

    def __init__(self, limit: int, batcher: Batcher):
        self.limit = limit
        self.batcher = batcher
        self.in_flight = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.in_flight >= self.limit:
            raise busy(f"the server's queue is full ({self.limit} photos)", self.retry_after())
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    def retry_after(self) -> int:
        """Seconds until the photos ahead are likely done: batches ahead x mean seconds per batch."""
        batches = math.ceil(self.in_flight / self.batcher.max_batch)
        return max(1, math.ceil(batches * self.batcher.seconds_per_batch))


def busy(why: str, retry_after: int) -> HTTPException:
    return HTTPException(503, f"{why}; retry in {retry_after} s.", headers={"Retry-After": str(retry_after)})


def create_app(model: ServedModel, options: ServeOptions) -> FastAPI:
    """The FastAPI app serving ``model`` under ``options``; the batcher runs while the app does."""
    batcher = Batcher(model.colorize, options.max_batch, options.max_wait_ms / 1000)
    admission = Admission(options.queue, batcher)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPIOffline(  # FastAPI whose /docs and /redoc load Swagger UI from the package, not a CDN
        title="pix2color",
        version=__version__,
        summary="Colorize photos with a trained pix2color checkpoint.",
        lifespan=lifespan,
    )
    add_error_handlers(app)
    if options.cors:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(options.cors),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["X-Batch-Size", "X-Render-Size", "Retry-After"],
        )
    guard = make_guard(options.token)

    @app.get("/v1/health", dependencies=[Depends(guard)], responses=ERRORS)
    async def health() -> dict[str, Any]:
        """Whether the server is up, and how full its queue is."""
        return {"status": "ok", "in_flight": admission.in_flight, "waiting": batcher.waiting, "queue": options.queue}

    @app.get("/v1/model", dependencies=[Depends(guard)], responses=ERRORS)
    async def model_info() -> dict[str, Any]:
        """The checkpoint (encoder, stage, training metrics, whether it takes hints), the default render size and
        the server's limits."""
        limits = {
            "max_upload_bytes": options.max_upload_bytes,
            "max_pixels": options.max_pixels,
            "max_batch": options.max_batch,
            "max_wait_ms": options.max_wait_ms,
            "queue": options.queue,
            "timeout_s": options.timeout_s,
            "max_saturation": MAX_SATURATION,
            "formats": list(MEDIA_TYPES),
            "max_hints": MAX_HINTS,
            "max_hint_bytes": MAX_HINT_BYTES,
        }
        return model.info | {"limits": limits}

    @app.post(
        "/v1/colorize",
        dependencies=[Depends(guard)],
        openapi_extra=UPLOAD_BODY,
        response_class=Response,
        responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}, "description": "the photo"}} | ERRORS,
    )
    async def colorize(
        request: Request,
        render_size: Annotated[
            int | None,
            Query(ge=32, le=MAX_RENDER_SIZE, multiple_of=32, description="square the model runs at"),
        ] = None,
        saturation: Annotated[float, Query(ge=0, le=MAX_SATURATION, description="factor on the colors")] = 1.0,
        fmt: Annotated[Literal["png", "jpg"], Query(alias="format", description="output format")] = "png",
    ) -> Response:
        """Colorize the uploaded photo (multipart field `file`, colour hints in the optional field `hints`); the
        answer has the photo's full size."""
        async with admission.slot():
            received = await read_upload(request, options.max_upload_bytes)
            hints = await run_in_threadpool(read_hints, received.hints)
            check_hints_accepted(hints, model.colorizer.accepts_hints)  # before the photo is decoded
            image = await run_in_threadpool(decode_upload, received.photo, options.max_pixels)
            check_hints_inside(hints, image)
            settings = Settings(render_size or model.colorizer.render_size, saturation)
            try:
                pixels = image.width * image.height
                done = await batcher.submit(Photo(image, hints), settings, pixels, options.timeout_s)
            except TimeoutError:
                why = f"the photo was not colorized within {options.timeout_s:g} s"
                raise busy(why, admission.retry_after()) from None
            body = await run_in_threadpool(encode_image, done.result, fmt)
        headers = {"X-Batch-Size": str(done.batch_size), "X-Render-Size": str(settings.render_size)}
        return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers | {"Cache-Control": "no-store"})

    app.mount("/", PageFiles(directory=STATIC, html=True), name="page")
    return app


class PageFiles(StaticFiles):
    """The web page's files, with headers that keep it self-contained."""

    async def get_response(self, path: str, scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


def make_guard(token: str | None):
    """The check run before every /v1 route.

    With a token: ``Authorization: Bearer <token>`` or 401. Without one (the server then listens on loopback
    only): the Host header must name this machine, so a web page elsewhere cannot reach the API through DNS
    rebinding.
    """

    async def guard(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]):
        if token is None:
            if not is_local_host(request.headers.get("host", "")):
                raise HTTPException(400, "this server answers only requests addressed to localhost or 127.0.0.1.")
            return
        given = credentials.credentials if credentials else ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            what = "a wrong token" if given else "no token"
            raise HTTPException(
                401,
                f"the request has {what}; send the server's token as 'Authorization: Bearer <token>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return guard


def is_local_host(host: str) -> bool:
    """Whether a Host header ("127.0.0.1:8000", "[::1]:8000", "localhost") names a loopback address."""
    name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return is_loopback(name)


def is_loopback(host: str) -> bool:
    """Whether an address or name (``--host``) is this machine's loopback; other names may resolve anywhere."""
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add_error_handlers(app: FastAPI) -> None:
    """Bad parameters answer 400 (not FastAPI's 422) and unexpected failures 500, each as one JSON sentence."""

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = exc.errors()[0]
        name = str(error["loc"][-1]) if error.get("loc") else "a parameter"
        value = f"={error['input']}" if "input" in error and error["input"] is not None else ""
        return JSONResponse({"detail": f"{name}{value} is not valid: {error['msg']}."}, status_code=400)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the server failed on this request ({type(exc).__name__}); see the server's log."},
            status_code=500,
        )
