"""The drawing itself, in headless Chromium (Playwright): a `gplinker view` file of every task,
texts that try to inject markup, and the service's page against a live server. What the
browser shows is read back from the DOM (data-* attributes, computed colours) and compared
with the records, through a reference written here with plain loops.

Skipped, with the reason, where Playwright or /usr/bin/chromium is missing (failed instead
under GPLINKER_REQUIRE_BROWSER=1, as CI runs them)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, task_texts, tiny_model_folder

from gplinker.predict import GPLinker
from gplinker.serve import create_app, serving
from gplinker.view import RECORD_KEYS, render_page, view_file

spec = importlib.util.spec_from_file_location(
    "screenshot_page", ROOT / "scripts/screenshot_page.py"
)
assert spec and spec.loader
shot = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shot)  # launch, capture: the README picture's own helpers

ARTIFACTS = ROOT / "tests" / "artifacts"
TRIGGER = "触发词"
TASK_KEY = {task: key for key, task in RECORD_KEYS.items()}
HOSTILE = '<script>alert(1)</script><img src=x onerror="window.__pwned=1;alert(2)">'
API_KEY = "test-key"
# one line per task drawn by hand: an emoji first (offsets count code points), nested and
# crossing spans, an argument two events share, a record without offsets
HAND_MADE = {
    "entity": {
        "id": "hand",
        "text": "😀雷军宣布小米",
        "entities": [
            {"entity": "雷军", "label": "name", "start_offset": 1, "end_offset": 3},
            {"entity": "雷军宣布", "label": "act", "start_offset": 1, "end_offset": 5},
            {"entity": "宣布小", "label": "cross", "start_offset": 3, "end_offset": 6},
        ],
    },
    "event": {
        "id": "hand",
        "text": "😀昨天小米发布新机并裁员",
        "event_list": [
            {
                "event_type": "产品行为-发布",
                "trigger": "发布",
                "trigger_start_index": 5,
                "arguments": [
                    {"role": "时间", "argument": "昨天", "argument_start_index": 1},
                    {"role": "发布方", "argument": "小米", "argument_start_index": 3},
                ],
            },
            {
                "event_type": "组织关系-裁员",
                "trigger": "裁员",
                "trigger_start_index": 10,
                "arguments": [{"role": "时间", "argument": "昨天", "argument_start_index": 1}],
            },
            {"event_type": "无触发词", "arguments": [{"role": "发布方", "argument": "小米"}]},
        ],
    },
    "relation": {
        "id": "hand",
        "text": "😀雷军创办小米",
        "spo_list": [
            {
                "subject": "雷军",
                "subject_type": "人物",
                "predicate": "创始人",
                "object": "小米",
                "object_type": "企业",
                "subject_start_index": 1,
                "object_start_index": 5,
            },
            {
                "subject": "小米",
                "subject_type": "企业",
                "predicate": "董事长",
                "object": "雷军",
                "object_type": "人物",
            },
        ],
    },
}
# what the page shows of one drawn line (a .gpl-record), read from the DOM
READ_RECORD = """(box) => {
  const bg = (e) => getComputedStyle(e).backgroundColor;
  const num = (v) => (v === undefined ? null : Number(v));
  return {
    text: box.querySelector(".gpl-text").textContent,
    segments: [...box.querySelectorAll(".gpl-text .gpl-seg")].map((s) => ({
      start: num(s.dataset.start), end: num(s.dataset.end), text: s.textContent,
      spans: s.dataset.spans.split(" ").map(Number), bg: bg(s),
    })),
    chips: [...box.querySelectorAll(".gpl-table .gpl-span")].map((c) => ({
      label: c.dataset.label, role: c.dataset.role, start: num(c.dataset.start),
      end: num(c.dataset.end), span: num(c.dataset.span),
      text: c.querySelector(".gpl-span-text").textContent, bg: bg(c),
    })),
    legend: [...box.querySelectorAll(".gpl-key")].map((k) =>
      [k.dataset.label, k.textContent, bg(k.querySelector(".gpl-swatch"))]),
    rows: box.querySelectorAll(".gpl-table tbody tr").length,
  };
}"""


# ---- the reference: what a drawing of a row must hold -------------------------------------
def expected_chips(task: str, row: dict) -> list[tuple]:
    """(label, role, start, end, text) of every span in the table, in table order."""

    def chip(label: str, role: str, start: int | None, text: str, end: int | None = None):
        if start is not None and end is None:
            end = start + len(text)  # Python indices: code points, as the page must count
        return (label, role, start, end, text)

    out = []
    for rec in row[TASK_KEY[task]]:
        if task == "entity":
            label, start, end = rec["label"], rec["start_offset"], rec["end_offset"]
            out.append(chip(label, label, start, rec["entity"], end))
        elif task == "relation":
            for role in ("subject", "object"):
                out.append(
                    chip(rec[f"{role}_type"], role, rec.get(f"{role}_start_index"), rec[role])
                )
        else:
            if "trigger" in rec:
                out.append(chip(TRIGGER, TRIGGER, rec.get("trigger_start_index"), rec["trigger"]))
            for a in rec["arguments"]:
                out.append(chip(a["role"], a["role"], a.get("argument_start_index"), a["argument"]))
    return out


def expected_segments(text: str, spans: set[tuple[str, int, int]]) -> list[tuple]:
    """The text cut at every span boundary: (start, end, the spans covering it) per covered
    piece."""
    cuts = sorted({0, len(text)} | {s for _, s, _ in spans} | {e for _, _, e in spans})
    out = []
    for a, b in itertools.pairwise(cuts):
        covering = {s for s in spans if s[1] <= a and b <= s[2]}
        if covering:
            out.append((a, b, text[a:b], covering))
    return out


def check_drawn(task: str, row: dict, drawn: dict) -> None:
    """The drawing of `row` shows its text, a chip per span with the legend's colour of its
    label, a table row per record, and the text cut at every boundary with each piece
    naming the spans over it and coloured as the innermost."""
    assert drawn["text"] == row["text"]
    chips = drawn["chips"]
    assert [(c["label"], c["role"], c["start"], c["end"], c["text"]) for c in chips] == (
        expected_chips(task, row)
    )
    assert drawn["rows"] == len(row[TASK_KEY[task]])
    legend = {label: colour for label, _, colour in drawn["legend"]}
    in_order = list(dict.fromkeys(c["label"] for c in chips))
    assert [label for label, _, _ in drawn["legend"]] == in_order
    assert all(label == shown for label, shown, _ in drawn["legend"])
    for c in chips:
        assert c["bg"] == legend[c["label"]] and c["bg"] not in ("", "rgba(0, 0, 0, 0)")
    # one highlighted span per (label, start, end), whichever records share it
    ids: dict[tuple, int] = {}
    for c in chips:
        if c["start"] is None:
            assert c["span"] is None  # no offset: listed, not highlighted
            continue
        assert ids.setdefault((c["label"], c["start"], c["end"]), c["span"]) == c["span"]
    assert len(set(ids.values())) == len(ids)
    by_id = {i: key for key, i in ids.items()}
    want = expected_segments(row["text"], set(ids))
    got = [
        (s["start"], s["end"], s["text"], {by_id[i] for i in s["spans"]}) for s in drawn["segments"]
    ]
    assert got == want
    for seg, (*_, covering) in zip(drawn["segments"], want, strict=True):
        shortest = min(e - s for _, s, e in covering)
        assert seg["bg"] in {legend[lab] for lab, s, e in covering if e - s == shortest}


# ---- fixtures -----------------------------------------------------------------------------
def _missing(reason: str) -> None:
    """Skip, but fail where the browser must be there (CI sets GPLINKER_REQUIRE_BROWSER=1)."""
    if os.environ.get("GPLINKER_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and GPLINKER_REQUIRE_BROWSER=1")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not shot.CHROMIUM.exists():
        _missing(f"no Chromium at {shot.CHROMIUM} (scripts/setup_browser.sh installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        _missing(f"Playwright (python) is not installed: {e}")
    with sync_playwright() as p:
        context = shot.launch(p, tmp_path_factory.mktemp("chromium-profile"))
        yield context
        context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab that records dialogs and script errors; it must end with neither."""
    tab = browser.new_page()
    tab.dialogs, tab.errors = [], []
    tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    yield tab
    tab.close()
    assert tab.errors == [] and tab.dialogs == []


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """task -> a tiny random model folder (made once per module)."""
    made: dict[str, Path] = {}

    def get(task: str) -> Path:
        if task not in made:
            made[task] = tiny_model_folder(task, tmp_path_factory.mktemp(f"{task}-model"))
        return made[task]

    return get


def _predicted(folder: Path, texts: list[str], tmp: Path) -> list[dict]:
    """What `gplinker predict` writes for `texts`."""
    from gplinker.predict import predict_file

    src, out = tmp / "texts.jsonl", tmp / "pred.jsonl"
    lines = [
        json.dumps({"id": f"t{i}", "text": t}, ensure_ascii=False) for i, t in enumerate(texts)
    ]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    predict_file(folder, src, out, device="cpu", progress=False)
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _drawn(tab: Any) -> list[dict]:
    return [box.evaluate(READ_RECORD) for box in tab.query_selector_all(".gpl-record")]


# ---- (a) the static view ------------------------------------------------------------------
@pytest.mark.parametrize("task", ["event", "entity", "relation"])
def test_view_file_draws_every_span_in_its_legend_colour(
    task: str, model_folder: Any, page: Any, tmp_path: Path
) -> None:
    texts = [*task_texts(task)[:6], "😀🙂" + task_texts(task)[0]]
    rows = [*_predicted(model_folder(task), texts, tmp_path), HAND_MADE[task]]
    assert any(r[TASK_KEY[task]] for r in rows[:-1]), "the tiny model found nothing to draw"
    view = tmp_path / "view.html"
    view_file(_write(tmp_path / "all.jsonl", rows), view)
    page.goto(view.as_uri())
    drawn = _drawn(page)
    assert len(drawn) == len(rows)
    for row, shown in zip(rows, drawn, strict=True):
        check_drawn(task, row, shown)
    headings = page.eval_on_selector_all(".gpl-line > h2", "hs => hs.map(h => h.textContent)")
    assert headings == [r["id"] for r in rows]


def test_nested_and_crossing_spans_are_cut_at_every_boundary(page: Any, tmp_path: Path) -> None:
    view = tmp_path / "view.html"
    view_file(_write(tmp_path / "p.jsonl", [HAND_MADE["entity"]]), view)
    page.goto(view.as_uri())
    (drawn,) = _drawn(page)
    legend = {label: colour for label, _, colour in drawn["legend"]}
    labels = {0: "name", 1: "act", 2: "cross"}
    segments = [(s["text"], {labels[i] for i in s["spans"]}, s["bg"]) for s in drawn["segments"]]
    assert segments == [
        ("雷军", {"name", "act"}, legend["name"]),  # inside act: coloured as the inner one
        ("宣布", {"act", "cross"}, legend["cross"]),  # where act and cross cross
        ("小", {"cross"}, legend["cross"]),
    ]
    assert len(set(legend.values())) == 3


def test_a_shared_argument_is_highlighted_once_and_listed_twice(page: Any, tmp_path: Path) -> None:
    view = tmp_path / "view.html"
    view_file(_write(tmp_path / "p.jsonl", [HAND_MADE["event"]]), view)
    page.goto(view.as_uri())
    (drawn,) = _drawn(page)
    when = [c for c in drawn["chips"] if c["role"] == "时间"]
    assert len(when) == 2 and when[0]["span"] == when[1]["span"] is not None
    assert [s["text"] for s in drawn["segments"]] == ["昨天", "小米", "发布", "裁员"]
    no_offset = [c for c in drawn["chips"] if c["start"] is None]
    assert [(c["role"], c["text"]) for c in no_offset] == [("发布方", "小米")]


# ---- (b) markup in the data stays text ----------------------------------------------------
def _hostile_row(task: str) -> dict:
    """A line of `task` with markup in its id, its text, a highlighted span, every label,
    role and type, and the record's own fields."""
    text = f"雷军{HOSTILE}</script>小米"
    at, mark = 2, HOSTILE  # the span that covers the markup
    if task == "entity":
        records = [
            {"entity": mark, "label": HOSTILE, "start_offset": at, "end_offset": at + len(mark)},
            {"entity": "雷军", "label": "<b>org</b>", "start_offset": 0, "end_offset": 2},
        ]
    elif task == "event":
        arg = {"role": HOSTILE, "argument": mark, "argument_start_index": at}
        trigger = {"trigger": "雷军", "trigger_start_index": 0}
        records = [{"event_type": HOSTILE, **trigger, "arguments": [arg]}]
    else:
        spo = {"subject": mark, "subject_type": HOSTILE, "subject_start_index": at}
        obj = {"object": "雷军", "object_type": "<b>org</b>", "object_start_index": 0}
        records = [{**spo, "predicate": HOSTILE, **obj}]
    return {"id": HOSTILE, "text": text, TASK_KEY[task]: records}


@pytest.mark.parametrize("task", ["event", "entity", "relation"])
def test_markup_in_any_field_renders_as_text(task: str, page: Any, tmp_path: Path) -> None:
    row = _hostile_row(task)
    error = {"id": None, "line": 2, "error": f"bad line {HOSTILE}"}
    view = tmp_path / "view.html"
    view_file(_write(tmp_path / "p.jsonl", [row, error]), view)
    page.goto(view.as_uri())
    (drawn,) = _drawn(page)
    check_drawn(task, row, drawn)
    assert page.locator("img").count() == 0 and page.locator("b").count() == 0
    assert page.locator("script").count() == 3  # the data and the two inlined scripts
    assert page.evaluate("window.__pwned") is None  # (the page fixture: and no dialog)
    assert HOSTILE in page.locator(".gpl-table").text_content()
    assert page.locator(".gpl-error").text_content() == f"line 2: bad line {HOSTILE}"
    assert HOSTILE in page.locator(".gpl-line > h2").first.text_content()


# ---- (c) the service's page ---------------------------------------------------------------
def _app(folder: Path) -> Any:
    """The service of gplinker.serve with an API key."""
    return create_app(GPLinker.from_pretrained(folder, device="cpu"), api_key=API_KEY)


@pytest.mark.parametrize("task", ["event", "entity", "relation"])
def test_live_page_draws_what_the_service_returns(
    task: str, model_folder: Any, page: Any, tmp_path: Path
) -> None:
    texts = [task_texts(task)[1], f"😀{HOSTILE}" + task_texts(task)[0]]
    with serving(_app(model_folder(task))) as url:
        page.goto(url)
        page.wait_for_function("document.getElementById('task').textContent !== ''")
        assert page.text_content("#task") == f"{task} extraction"
        page.fill("#text", "\n".join(texts))
        page.click("#go")
        page.wait_for_selector("#status.gpl-error")
        assert page.text_content("#status").startswith("needs an API key: ")
        page.fill("#key", API_KEY)
        with page.expect_response(lambda r: r.url == url + "/extract") as answer:
            page.click("#go")
        body = answer.value.json()
        page.wait_for_selector(".gpl-record")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"page-{task}.png"), full_page=True)
    assert body["task"] == task and [r["text"] for r in body["results"]] == texts
    assert any(r[TASK_KEY[task]] for r in body["results"]), "the tiny model found nothing"
    drawn = _drawn(page)
    for row, shown in zip(body["results"], drawn, strict=True):
        check_drawn(task, row, shown)
    assert page.locator("img").count() == 0 and page.evaluate("window.__pwned") is None
    # the static view of the same rows gives every label the page's colour
    view = tmp_path / "view.html"
    view_file(_write(tmp_path / "p.jsonl", body["results"]), view)
    page.goto(view.as_uri())
    in_view = {lab: c for d in _drawn(page) for lab, _, c in d["legend"]}
    on_page = {lab: c for d in drawn for lab, _, c in d["legend"]}
    assert in_view == on_page


def test_live_page_shows_the_services_validation_detail(page: Any, browser: Any) -> None:
    """A 422's list detail and a 413's string reach the status line, readable."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse

    app = FastAPI()
    answers = iter(
        [
            (422, [{"loc": ["body", "texts", 0], "msg": "a lone surrogate", "type": "x"}]),
            (413, f"texts: 99 texts in one request; the limit is 64 {HOSTILE}"),
        ]
    )
    app.get("/", response_class=HTMLResponse)(render_page)
    app.get("/health")(lambda: {"status": "ok", "task": "entity"})

    @app.post("/extract")
    def extract() -> JSONResponse:
        status, detail = next(answers)
        return JSONResponse({"detail": detail}, status_code=status)

    with serving(app) as url:
        page.goto(url)
        page.fill("#text", "雷军")
        page.click("#go")
        page.wait_for_selector("#status.gpl-error")
        assert page.text_content("#status") == "error 422: texts: 0: a lone surrogate"
        page.click("#go")
        page.wait_for_function("document.getElementById('status').textContent.includes('413')")
        assert page.text_content("#status") == (
            f"error 413: texts: 99 texts in one request; the limit is 64 {HOSTILE}"
        )
        assert page.locator("img").count() == 0


def test_screenshot_script_captures_the_page_as_png(
    model_folder: Any, browser: Any, tmp_path: Path
) -> None:
    app = create_app(GPLinker.from_pretrained(model_folder("entity"), device="cpu"))
    with serving(app) as url:
        out = shot.capture(browser, url, "雷军宣布小米发布新机。", tmp_path / "img" / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
