"""gplinker serve: a model folder behind HTTP (FastAPI on uvicorn).

Requests that arrive together share one forward pass (`MicroBatcher`), run in a worker
thread so that the event loop keeps answering; everything a client sends is bounded
(`Limits`) before it reaches the model. FastAPI because it gives validation errors that
name the field, OpenAPI docs and Bearer-token parsing from the same declarations; its
Starlette middleware gives CORS and trusted hosts.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Security
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gplinker.data.alignment import encode_windows
from gplinker.data.reader import check_unicode
from gplinker.predict import Backend, GPLinker
from gplinker.view import render_page

logger = logging.getLogger(__name__)
LOOPBACK_HOSTS = ["127.0.0.1", "localhost"]


@dataclass(frozen=True)
class Limits:
    """What one request may ask and how much work may wait; beyond them: 413 or 503."""

    max_texts: int = 64  # texts per request
    max_chars: int = 200_000  # characters per text: longer ones are read through windows
    max_body: int = 4 * 2**20  # bytes per request body
    max_queue: int = 512  # texts waiting for the model
    batch_size: int = 64  # texts of concurrent requests gathered into one batch
    forward_batch: int = 16  # windows per forward pass, the batch's sorted by length
    max_wait_ms: float = 10.0  # how long a batch waits for as many requests as the last held

    def __post_init__(self) -> None:
        if self.max_queue < self.max_texts:
            raise ValueError(
                f"max_queue ({self.max_queue}) must hold one whole request ({self.max_texts} texts)"
            )


class QueueFull(Exception):
    """More texts are waiting than Limits.max_queue allows."""


@dataclass
class _Waiting:
    texts: Sequence[str]
    answer: asyncio.Future


class MicroBatcher:
    """Gathers the texts of concurrent requests into one call of `run` on `executor`, one
    batch at a time. A batch starts as soon as the worker is free and a request waits:
    requests that came while the previous batch ran join it whole, up to `batch_size` texts
    (a larger request runs alone). While requests come together (the last batch held more
    than one), a batch also waits, `max_wait` seconds at most, until it holds as many
    requests as the last one did: clients that were answered together ask again a moment
    apart, and a batch started on the first of them would run nearly empty. A lone
    client's request never waits."""

    def __init__(
        self,
        run: Callable[[Sequence[str]], list[dict]],
        *,
        batch_size: int,
        max_wait: float,
        max_queue: int,
        executor: Executor,
    ):
        self._run, self._executor = run, executor
        self.batch_size, self.max_wait, self.max_queue = batch_size, max_wait, max_queue
        self._queue: deque[_Waiting] = deque()
        self.queued = 0  # texts waiting
        self.batches = 0  # calls of `run` so far
        self.texts = 0  # texts they held: texts / batches is the mean batch
        self._last = 0  # requests the last batch held
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        for waiting in self._queue:
            waiting.answer.cancel()

    async def submit(self, texts: Sequence[str]) -> list[dict]:
        """The rows of `texts`, once a batch holding them has run; QueueFull at once when
        they would not fit in the queue."""
        if self.queued + len(texts) > self.max_queue:
            raise QueueFull(f"{self.queued} texts are waiting (limit {self.max_queue})")
        answer = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(texts, answer))
        self.queued += len(texts)
        self._arrived.set()
        return await answer

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            batch = await self._gather()
            if not batch:
                continue
            texts = [t for w in batch for t in w.texts]
            try:
                rows = await loop.run_in_executor(self._executor, self._run, texts)
            except Exception as e:  # a bug, not the client's: answer 500, keep serving
                logger.exception("a batch of %d texts failed", len(texts))
                for w in batch:
                    if not w.answer.done():
                        w.answer.set_exception(e)
                continue
            self.batches += 1
            self.texts += len(texts)
            k = 0
            for w in batch:
                if not w.answer.done():  # else the client went away
                    w.answer.set_result(rows[k : k + len(w.texts)])
                k += len(w.texts)

    async def _gather(self) -> list[_Waiting]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.max_wait if self._last > 1 else 0)
        batch: list[_Waiting] = []
        size = 0
        while True:
            while self._queue and (
                not batch or size + len(self._queue[0].texts) <= self.batch_size
            ):
                waiting = self._queue.popleft()
                self.queued -= len(waiting.texts)
                if not waiting.answer.done():
                    batch.append(waiting)
                    size += len(waiting.texts)
            if not self._queue:
                self._arrived.clear()
            left = deadline - loop.time()
            full = size >= self.batch_size or len(batch) >= self._last or self._queue
            if not batch or full or left <= 0:
                break
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                break
        self._last = len(batch)
        return batch


class MainThreadExecutor(Executor):
    """Runs the calls submitted from the server's thread on the thread that calls `run`.
    `gplinker serve` gives the model the main thread and uvicorn another: on 2 cores a
    forward pass called from a second thread took 1.3× (batch 32) to 2.8× (one text) as
    long as from the main one, with the same 2 torch threads."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue = queue.SimpleQueue()

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        self._calls.put((future, fn, args, kwargs))
        return future

    def run(self, until: Callable[[], bool]) -> None:
        """Run calls as they come until `until()` holds (checked every 0.1 s)."""
        while not until():
            try:
                future, fn, args, kwargs = self._calls.get(timeout=0.1)
            except queue.Empty:
                continue
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except Exception as e:
                    future.set_exception(e)


@dataclass(frozen=True)
class _Text:
    """What a task's output_row reads of an input line; a request's texts have no id."""

    text: str
    id: None = None


def rows_of(model: GPLinker, texts: Sequence[str], batch_size: int) -> list[dict]:
    """What `gplinker predict` writes for each text, less the id: the same windows, decoder
    and output row. The windows go through the model `batch_size` at a time, sorted by
    length: 32 texts of a batch padded to the longest ran at 0.76× the speed of the same
    texts in two sorted passes of 16 (bert-base shape, 2 cores)."""
    windows = encode_windows(texts, model.tokenizer, model.max_length, model.window_overlap)
    found = model.decode_encoded(windows, texts, batch_size=batch_size)
    rows = [model.task.output_row(_Text(t), f) for t, f in zip(texts, found, strict=True)]
    for row in rows:
        del row["id"]
    return rows


class ExtractRequest(BaseModel):
    """One text or a list of them."""

    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr] | None = Field(None, examples=[["雷军宣布小米将于明年3月发布新机。"]])
    text: StrictStr | None = Field(None, description="one text: the same as texts=[text]")

    @model_validator(mode="after")
    def _one_of(self) -> ExtractRequest:
        if (self.texts is None) == (self.text is None):
            raise ValueError('give either "texts" (a list of strings) or "text" (a string)')
        return self

    def all_texts(self) -> list[str]:
        return self.texts if self.texts is not None else [self.text or ""]


class ExtractResponse(BaseModel):
    task: str = Field(description="event, entity or relation")
    results: list[dict[str, Any]] = Field(
        description="per text, in order, the line `gplinker predict` writes for it, without id"
    )


def create_app(
    model: GPLinker,
    *,
    limits: Limits = Limits(),
    api_key: str | None = None,
    cors: Sequence[str] = (),
    hosts: Sequence[str] | None = None,
    executor: Executor | None = None,
) -> FastAPI:
    """The service of one model. api_key: required as a Bearer token by every route but
    /health and the static page and docs. cors: origins whose pages may call it (any other
    cross-origin request gets 403). hosts: the Host headers accepted (None: any), which
    keeps a page on another site from reaching a loopback server by DNS rebinding.
    executor: where the model runs (default: a thread of its own)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = executor is None
        runner = ThreadPoolExecutor(1, thread_name_prefix="gplinker-model") if own else executor
        # the first request is not the slow one
        await asyncio.get_running_loop().run_in_executor(
            runner, rows_of, model, ["预热。"], limits.forward_batch
        )
        app.state.batcher = MicroBatcher(
            lambda texts: rows_of(model, texts, limits.forward_batch),
            batch_size=limits.batch_size,
            max_wait=limits.max_wait_ms / 1000,
            max_queue=limits.max_queue,
            executor=runner,
        )
        app.state.batcher.start()
        yield
        await app.state.batcher.stop()
        if own:
            runner.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="gplinker", summary=f"{model.task.name} extraction with GPLinker", lifespan=lifespan
    )
    _add_routes(app, model, limits, guarded=api_key is not None)
    app.add_middleware(BodyLimit, max_body=limits.max_body)
    if api_key:
        app.add_middleware(ApiKey, key=api_key)
    app.add_middleware(SameOrigin, allowed=frozenset(cors))
    if cors:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(cors), allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )  # fmt: skip
    if hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))
    return app


def _add_routes(app: FastAPI, model: GPLinker, limits: Limits, guarded: bool) -> None:
    # declares the Bearer scheme in the OpenAPI docs; ApiKey enforces it, before any body
    # is read, so that a client without the key learns nothing but 401
    keyed = [Security(HTTPBearer(description="the key in $GPLINKER_API_KEY"))] if guarded else []
    page_html = render_page()

    @app.get("/health")
    async def health() -> dict:
        """Answers while a batch runs: the model works on another thread."""
        batcher: MicroBatcher = app.state.batcher
        return {
            "status": "ok",
            "task": model.task.name,
            "queued": batcher.queued,  # texts waiting now
            "batches": batcher.batches,  # run so far, and the texts they held
            "texts": batcher.texts,
        }

    @app.get("/schema", dependencies=keyed)
    async def schema() -> dict:
        """The task and the labels the model was trained with (its schema.json)."""
        return {
            "task": model.task.name,
            "record_key": model.task.record_key,
            "schema": model.schema.to_json(),
        }

    @app.post(
        "/extract",
        dependencies=keyed,
        response_model=ExtractResponse,
        responses={
            413: {"description": "too many texts, a text too long, or a body too large"},
            503: {"description": "the queue is full: retry after Retry-After seconds"},
        },
    )
    async def extract(request: ExtractRequest) -> JSONResponse:
        """The records of each text, as `gplinker predict` writes them (offsets included)."""
        texts = request.all_texts()
        _check_texts(texts, request.texts is None, limits)
        try:
            rows = await app.state.batcher.submit(texts) if texts else []
        except QueueFull as e:
            raise HTTPException(
                503, f"busy: {e}; retry in a moment", headers={"Retry-After": "1"}
            ) from None
        # the rows are plain JSON already: no second validation through the response model
        return JSONResponse({"task": model.task.name, "results": rows})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return page_html


def _check_texts(texts: Sequence[str], single: bool, limits: Limits) -> None:
    """413 past a limit, 422 for a text that is not Unicode, each naming the field."""
    if len(texts) > limits.max_texts:
        raise HTTPException(
            413, f"texts: {len(texts)} texts in one request; the limit is {limits.max_texts}"
        )
    for i, text in enumerate(texts):
        field = "text" if single else f"texts[{i}]"
        if len(text) > limits.max_chars:
            raise HTTPException(
                413, f"{field}: {len(text)} characters; the limit is {limits.max_chars}"
            )

        def fail(message: str, kind: str, i: int = i) -> HTTPException:
            loc = ["body", "text"] if single else ["body", "texts", i]
            return HTTPException(422, [{"loc": loc, "msg": message, "type": kind}])

        check_unicode(text, field, fail)


async def _refuse(send: Send, status: int, detail: str, headers: Sequence[tuple] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: a request body over `max_body` bytes gets 413 before the app sees
    any of it. The body is read here (at most max_body bytes per request, whether sent
    with a Content-Length or chunked) and handed on whole."""

    def __init__(self, app: ASGIApp, max_body: int):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"the request body is larger than the limit of {self.max_body} bytes"
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit():
            await _refuse(send, 400, "Content-Length is not a number")
            return
        if int(length) > self.max_body:
            await _refuse(send, 413, too_large)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                await _refuse(send, 413, too_large)
                return
            more = message.get("more_body", False)
        body: Message | None = {"type": "http.request", "body": b"".join(chunks)}

        async def replay() -> Message:
            nonlocal body
            if body is not None:
                message, body = body, None
                return message
            return await receive()

        await self.app(scope, replay, send)


class ApiKey:
    """ASGI middleware: every request but those for the open paths (the health check, the
    page, the docs: none holds model output) needs `Authorization: Bearer <key>`, else 401
    before the app reads anything."""

    OPEN = frozenset(["/health", "/", "/docs", "/openapi.json"])

    def __init__(self, app: ASGIApp, key: str):
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.OPEN:
            scheme, _, token = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
            # constant time: how long the check takes tells nothing of how much matched
            if not (hmac.compare_digest(token.strip(), self.key) and scheme.lower() == b"bearer"):
                await _refuse(
                    send, 401, "a valid API key is needed: Authorization: Bearer <key>",
                    [(b"www-authenticate", b"Bearer")],
                )  # fmt: skip
                return
        await self.app(scope, receive, send)


class SameOrigin:
    """ASGI middleware: a request that a page of another origin sends (its Origin header
    names neither this server nor one of `allowed`) gets 403 before it runs. CORS headers
    alone would only hide the answer from that page, after the model had run."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str]):
        self.app, self.allowed = app, allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            origin = headers.get(b"origin", b"").decode("latin-1")
            own = f"{scope.get('scheme', 'http')}://{headers.get(b'host', b'').decode('latin-1')}"
            if origin and origin != own and origin not in self.allowed:
                await _refuse(
                    send, 403, f"cross-origin request from {origin} refused (start the server "
                    f"with --cors {origin} to allow its pages)",
                )  # fmt: skip
                return
        await self.app(scope, receive, send)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_server(
    model_dir: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: Limits = Limits(),
    api_key: str | None = None,
    cors: Sequence[str] = (),
    device: str | None = None,
    access_log: bool = False,
    int8: bool = False,
    backend: Backend = "torch",
) -> None:
    """Load the model and serve it until interrupted. On loopback only loopback Host
    headers are accepted; elsewhere any, and a missing API key is warned about."""
    import uvicorn

    model = GPLinker.from_pretrained(model_dir, device=device, int8=int8, backend=backend)
    if is_loopback(host):
        hosts: list[str] | None = LOOPBACK_HOSTS
    else:
        hosts = None
        if not api_key:
            logger.warning(
                "serving on %s with no API key: anyone who reaches this port can use the "
                "model (set GPLINKER_API_KEY, and put a TLS proxy in front)",
                host,
            )
    executor = MainThreadExecutor()
    app = create_app(
        model, limits=limits, api_key=api_key, cors=cors, hosts=hosts, executor=executor
    )
    logger.info("serving %s (%s) on http://%s:%d/", model_dir, model.task.name, host, port)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=access_log,
        server_header=False,
        # connections beyond these get 503 from uvicorn itself: a last bound on sockets
        limit_concurrency=4 * limits.max_queue,
        timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gplinker-http")

    def stop(signum: int, frame: Any) -> None:
        if server.should_exit:  # a second Ctrl-C: now, not after the running batch
            raise KeyboardInterrupt
        logger.info("stopping once the requests in flight are answered")
        server.should_exit = True

    # uvicorn installs no signal handlers off the main thread: these do its work (set
    # even where the shell started this process with SIGINT ignored)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    thread.start()
    try:
        executor.run(until=lambda: not thread.is_alive())
    except KeyboardInterrupt:
        server.force_exit = True  # the model no longer runs: nothing in flight will end
    finally:
        server.should_exit = True
        thread.join()


@contextmanager
def serving(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """The app on a real socket, served by uvicorn in a background thread, for as long as
    the block runs (a notebook, a test, a benchmark): yields its base URL. port=0: any
    free port."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gplinker-serving", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(30)
