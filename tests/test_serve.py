"""The HTTP service through an in-process ASGI client: answers equal to `predict`'s, every
status code the service promises, micro-batching counted in forward passes."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from conftest import task_texts, tiny_model_folder

from gplinker import serve
from gplinker.predict import GPLinker, predict_file
from gplinker.serve import BodyLimit, Limits, create_app

TASKS = ["event", "entity", "relation"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve-models")
    return {task: tiny_model_folder(task, root / task) for task in TASKS}


@pytest.fixture(scope="module")
def models(folders: dict[str, Path]) -> dict[str, GPLinker]:
    return {task: GPLinker.from_pretrained(f, device="cpu") for task, f in folders.items()}


def predicted_rows(folder: Path, texts: list[str], tmp_path: Path) -> list[dict]:
    """What `gplinker predict` writes for these texts, less the ids."""
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    predict_file(folder, source, out, progress=False)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return [{k: v for k, v in row.items() if k != "id"} for row in rows]


@asynccontextmanager
async def client(app, raise_app_exceptions: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the app in this event loop, its lifespan run around it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            yield c


def call(app, method: str, url: str, **kwargs) -> httpx.Response:
    async def go() -> httpx.Response:
        async with client(app) as c:
            return await c.request(method, url, **kwargs)

    return asyncio.run(go())


class Gate:
    """Stands in for serve.rows_of: counts the batches and holds each one until opened."""

    def __init__(self, rows_of: Callable, opened: bool = True):
        self.rows_of, self.calls, self.sizes = rows_of, 0, []
        self.open_ = threading.Event()
        self.running = threading.Event()
        if opened:
            self.open_.set()

    def __call__(self, model, texts, batch_size):
        self.calls += 1
        self.sizes.append(len(texts))
        self.running.set()
        assert self.open_.wait(30), "the test never opened the gate"
        return self.rows_of(model, texts, batch_size)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    g = Gate(serve.rows_of)
    monkeypatch.setattr(serve, "rows_of", g)
    return g


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


# ---- answers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("task", TASKS)
def test_extract_answers_what_predict_writes(task, folders, models, tmp_path):
    texts = [*task_texts(task, "dev")[:12], "", "短。"]
    response = call(create_app(models[task]), "POST", "/extract", json={"texts": texts})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == task
    expected = predicted_rows(folders[task], texts, tmp_path)
    assert body["results"] == expected
    key = models[task].task.record_key
    assert sum(len(row[key]) for row in expected) > 0, "the model found nothing: a weak test"


def test_one_text_and_the_other_routes(models):
    app = create_app(models["entity"])
    text = task_texts("entity", "dev")[0]
    one = call(app, "POST", "/extract", json={"text": text}).json()
    many = call(app, "POST", "/extract", json={"texts": [text]}).json()
    assert one == many and len(one["results"]) == 1
    assert call(app, "POST", "/extract", json={"texts": []}).json()["results"] == []
    health = call(app, "GET", "/health").json()
    assert health["status"] == "ok" and health["task"] == "entity"
    schema = call(app, "GET", "/schema").json()
    assert schema["task"] == "entity"
    assert schema["schema"] == models["entity"].schema.to_json()
    docs = call(app, "GET", "/openapi.json").json()
    assert "/extract" in docs["paths"]
    assert call(app, "GET", "/docs").status_code == 200


def test_a_text_of_100000_characters_is_read_through_windows(folders, models, tmp_path):
    base = "".join(task_texts("entity", "dev")[:40])
    text = (base * (100_000 // len(base) + 1))[:100_000]
    response = call(create_app(models["entity"]), "POST", "/extract", json={"text": text})
    assert response.status_code == 200
    found = response.json()["results"]
    assert found == predicted_rows(folders["entity"], [text], tmp_path)
    assert max(e["end_offset"] for e in found[0]["entities"]) > 90_000  # every window read


# ---- bounds ----------------------------------------------------------------------------------
def test_413_names_the_limit(models):
    app = create_app(models["event"], limits=Limits(max_texts=3, max_chars=10, max_body=2000))
    r = call(app, "POST", "/extract", json={"texts": ["a"] * 4})
    assert r.status_code == 413 and "limit is 3" in r.json()["detail"]
    r = call(app, "POST", "/extract", json={"texts": ["a", "b" * 11]})
    assert r.status_code == 413 and r.json()["detail"].startswith("texts[1]: 11 characters")
    r = call(app, "POST", "/extract", json={"text": "x" * 11})
    assert r.status_code == 413 and r.json()["detail"].startswith("text: 11 characters")
    r = call(app, "POST", "/extract", json={"text": "x" * 3000})
    assert r.status_code == 413 and "2000 bytes" in r.json()["detail"]


def test_a_chunked_body_is_cut_at_the_limit():
    """No Content-Length: BodyLimit counts the chunks and answers 413 without the app."""
    reached = []

    async def app(scope, receive, send):
        reached.append(scope)

    async def go(chunks: list[bytes]) -> list[dict]:
        sent, queue = [], [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
        queue.append({"type": "http.request", "body": b"", "more_body": False})

        async def receive():
            return queue.pop(0)

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "headers": [(b"transfer-encoding", b"chunked")]}
        await BodyLimit(app, max_body=100)(scope, receive, send)
        return sent

    sent = asyncio.run(go([b"x" * 60, b"x" * 60]))
    assert sent[0]["status"] == 413 and not reached
    assert asyncio.run(go([b"x" * 50, b"x" * 50])) == [] and len(reached) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"texts": ["a",', None),  # malformed JSON
        (b'{"texts": "one string"}', ["body", "texts"]),
        (b'{"texts": ["a", 7]}', ["body", "texts", 1]),
        (b'{"text": null}', ["body"]),  # neither given
        (b'{"text": "a", "texts": ["b"]}', ["body"]),  # both given
        (b'{"text": "a", "path": "/etc/passwd"}', ["body", "path"]),
        (b'{"texts": ["ok", "\\ud800"]}', ["body", "texts", 1]),  # lone surrogate
        (b'["a"]', ["body"]),
        (b"\xff\xfe", None),  # not UTF-8
    ],
)
def test_422_names_the_field(models, body, field):
    r = call(
        create_app(models["event"]),
        "POST",
        "/extract",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    if field is not None:
        assert [d["loc"] for d in detail] == [field], detail


def test_503_with_retry_after_when_the_queue_is_full(models, gate):
    app = create_app(models["event"], limits=Limits(max_texts=2, max_queue=4))

    async def go():
        async with client(app) as c:
            gate.open_.clear()
            gate.running.clear()  # set by the warm-up batch
            first = asyncio.create_task(c.post("/extract", json={"texts": ["一", "二"]}))
            await wait_until(gate.running.is_set, "the first batch runs")
            queued = [
                asyncio.create_task(c.post("/extract", json={"texts": ["三", "四"]}))
                for _ in range(2)
            ]
            await wait_until(lambda: app.state.batcher.queued == 4, "4 texts wait")
            full = await c.post("/extract", json={"text": "五"})
            gate.open_.set()
            return full, [await t for t in [first, *queued]]

    full, answered = asyncio.run(go())
    assert full.status_code == 503 and full.headers["retry-after"] == "1"
    assert "limit 4" in full.json()["detail"]
    assert [r.status_code for r in answered] == [200, 200, 200]


def test_a_failed_batch_is_a_500_and_the_server_goes_on(models, monkeypatch):
    real, failures = serve.rows_of, [RuntimeError("boom")]

    def flaky(model, texts, batch_size):
        if failures:
            raise failures.pop()
        return real(model, texts, batch_size)

    app = create_app(models["event"])

    async def go():
        async with client(app, raise_app_exceptions=False) as c:
            monkeypatch.setattr(serve, "rows_of", flaky)  # after the warm-up batch
            return [await c.post("/extract", json={"text": "一次。"}) for _ in range(2)]

    assert [r.status_code for r in asyncio.run(go())] == [500, 200]


# ---- micro-batching --------------------------------------------------------------------------
def test_concurrent_requests_share_forward_passes(models, gate, tmp_path, folders):
    texts = task_texts("event", "dev")[:16]
    app = create_app(models["event"], limits=Limits(batch_size=32))

    async def go():
        async with client(app) as c:
            gate.calls, gate.sizes = 0, []
            gate.open_.clear()
            gate.running.clear()
            tasks = [asyncio.create_task(c.post("/extract", json={"text": t})) for t in texts]
            await wait_until(gate.running.is_set, "a batch runs")
            # the first batch holds what came before it started; all others wait
            await wait_until(
                lambda: gate.sizes[0] + app.state.batcher.queued == len(texts), "all wait"
            )
            health = await c.get("/health")  # the event loop is free while the model runs
            gate.open_.set()
            answers = [await t for t in tasks]
            return health, answers, (await c.get("/health")).json()

    health, answers, after = asyncio.run(go())
    assert (after["batches"], after["texts"]) == (gate.calls, len(texts))
    assert health.status_code == 200 and health.json()["queued"] == len(texts) - gate.sizes[0]
    # one batch of the requests that came before it started, one of all that waited
    assert gate.calls in (1, 2) and sum(gate.sizes) == len(texts)
    expected = predicted_rows(folders["event"], texts, tmp_path)
    assert [a.json()["results"][0] for a in answers] == expected


def test_a_lone_request_is_answered_alone(models, gate):
    app = create_app(models["event"], limits=Limits(max_wait_ms=0))
    r = call(app, "POST", "/extract", json={"text": "一个。"})
    assert r.status_code == 200 and gate.sizes[-1] == 1


# ---- access ----------------------------------------------------------------------------------
def test_api_key(models):
    app = create_app(models["event"], api_key="s3cret")
    body = {"text": "一个。"}
    assert call(app, "POST", "/extract", json=body).status_code == 401
    wrong = call(app, "POST", "/extract", json=body, headers={"Authorization": "Bearer s3cre"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    basic = call(app, "GET", "/schema", headers={"Authorization": "Basic czNjcmV0"})
    assert basic.status_code == 401
    right = {"Authorization": "Bearer s3cret"}
    assert call(app, "POST", "/extract", json=body, headers=right).status_code == 200
    assert call(app, "GET", "/schema", headers=right).status_code == 200
    lower = {"Authorization": "bearer s3cret"}  # the scheme's name is case-insensitive
    assert call(app, "GET", "/schema", headers=lower).status_code == 200
    garbage = call(app, "POST", "/extract", content=b"\xff{", headers={})
    assert garbage.status_code == 401  # the key is checked before the body is read
    assert call(app, "GET", "/health").status_code == 200
    assert call(app, "GET", "/").status_code == 200  # the page holds no data
    open_app = create_app(models["event"])
    assert call(open_app, "POST", "/extract", json=body).status_code == 200


def test_cross_origin_requests_are_refused_unless_allowed(models):
    body, evil = {"text": "一个。"}, {"Origin": "http://evil.example"}
    refused = call(create_app(models["event"]), "POST", "/extract", json=body, headers=evil)
    assert refused.status_code == 403 and "--cors http://evil.example" in refused.text
    same = call(
        create_app(models["event"]),
        "POST",
        "/extract",
        json=body,
        headers={"Origin": "http://127.0.0.1"},
    )
    assert same.status_code == 200
    app = create_app(models["event"], cors=["http://evil.example"])
    allowed = call(app, "POST", "/extract", json=body, headers=evil)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://evil.example"
    preflight = call(
        app,
        "OPTIONS",
        "/extract",
        headers={**evil, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200


def test_only_loopback_host_names_on_loopback(models):
    """A page on another site that rebinds its DNS name to 127.0.0.1 sends its own Host."""
    app = create_app(models["event"], hosts=serve.LOOPBACK_HOSTS)
    assert call(app, "GET", "/health").status_code == 200
    rebound = call(app, "GET", "/health", headers={"Host": "evil.example:8000"})
    assert rebound.status_code == 400


def test_limits_hold_one_request_in_the_queue():
    with pytest.raises(ValueError, match="max_queue"):
        Limits(max_texts=10, max_queue=5)
    assert serve.is_loopback("127.0.0.1") and serve.is_loopback("::1")
    assert not serve.is_loopback("0.0.0.0") and not serve.is_loopback("example.com")
