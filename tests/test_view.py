"""gplinker.view without a browser: the embedded data survives any text, the limit keeps
memory flat and counts the rest, bad lines name file:line, every task's output reads, and
`gplinker view` on real `gplinker predict` output. tests/test_browser.py checks the drawing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import task_texts, tiny_model_folder
from typer.testing import CliRunner

from gplinker import view
from gplinker.cli import app
from gplinker.errors import InputError
from gplinker.view import render_page, render_view, view_file

runner = CliRunner()
HOSTILE = "a</script><script>alert(1)</script><!-- \u2028\u2029 & <img src=x onerror=alert(2)>"
# one line per task, in the shape `gplinker predict` writes (an emoji before the spans:
# offsets count code points)
ROWS = {
    "event": {
        "id": "e1",
        "text": "😀雷军宣布小米发布新机",
        "event_list": [
            {
                "event_type": "产品行为-发布",
                "trigger": "发布",
                "trigger_start_index": 7,
                "arguments": [
                    {"role": "发布方", "argument": "小米", "argument_start_index": 5},
                    {"role": "发布产品", "argument": "新机", "argument_start_index": 9},
                ],
            },
            {"event_type": "无触发词", "arguments": [{"role": "时间", "argument": "雷军"}]},
        ],
    },
    "entity": {
        "id": "n1",
        "text": "😀雷军宣布小米",
        "entities": [
            {"entity": "雷军", "label": "name", "start_offset": 1, "end_offset": 3},
            {"entity": "雷军宣布", "label": "act", "start_offset": 1, "end_offset": 5},
        ],
    },
    "relation": {
        "id": "r1",
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
            }
        ],
    },
}


def _data(page: str) -> dict:
    """The JSON a view embeds, read the way a browser would: up to the first </script>."""
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    assert m, "no data script"
    return json.loads(m.group(1))


def _write(path: Path, rows: list[dict | str]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_render_view_keeps_a_closing_script_tag_inside_the_json() -> None:
    row = {**ROWS["entity"], "id": HOSTILE, "text": HOSTILE + "雷军", "entities": []}
    page = render_view([row], limit=10, total=1)
    assert _data(page) == {"task": "entity", "rows": [row]}
    # no text reaches the HTML unescaped: only the template's own tags close scripts
    assert page.count("</script>") == page.count("<script") == 3
    assert "alert(1)" in page and "<script>alert(1)" not in page and "<img" not in page
    assert "\u2028" not in page and "\u2029" not in page


def test_render_view_shows_the_first_limit_rows_and_counts_the_rest() -> None:
    rows = [{**ROWS["entity"], "id": f"n{i}"} for i in range(5)]
    page = render_view(rows, limit=2, total=7)
    assert [r["id"] for r in _data(page)["rows"]] == ["n0", "n1"]
    assert "and 5 more lines not shown" in page
    assert "7 lines of entity extraction, 0 in error; the first 2 shown" in page
    assert "more line" not in render_view(rows, limit=5, total=5)
    assert "and 1 more line not shown" in render_view(rows, limit=4, total=5)


def test_render_view_escapes_the_title() -> None:
    page = render_view([], limit=1, total=0, title="<b>x</b>.jsonl")
    assert "&lt;b&gt;x&lt;/b&gt;.jsonl" in page and "<b>" not in page


@pytest.mark.parametrize("task", sorted(ROWS))
def test_view_file_reads_each_task_and_counts_error_records(task: str, tmp_path: Path) -> None:
    error = {"id": None, "line": 2, "error": 'pred.jsonl:2: "text" is missing'}
    preds = _write(tmp_path / "pred.jsonl", [ROWS[task], error, "", ROWS[task]])
    summary = view_file(preds, tmp_path / "v.html")
    assert (summary.task, summary.shown, summary.total, summary.errors) == (task, 3, 3, 1)
    data = _data((tmp_path / "v.html").read_text(encoding="utf-8"))
    assert data == {"task": task, "rows": [ROWS[task], error, ROWS[task]]}


def test_view_file_keeps_only_limit_rows_while_counting_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    preds = _write(tmp_path / "pred.jsonl", [{**ROWS["event"], "id": str(i)} for i in range(500)])
    seen: list[int] = []
    real = view.render_view

    def spy(rows: list[dict], **kw: int) -> str:
        seen.append(len(rows))
        return real(rows, **kw)

    monkeypatch.setattr(view, "render_view", spy)
    summary = view_file(preds, tmp_path / "v.html", limit=3)
    assert seen == [3] and (summary.shown, summary.total) == (3, 500)
    assert "and 497 more lines not shown" in (tmp_path / "v.html").read_text(encoding="utf-8")


ENTITY = ROWS["entity"]
BAD_LINES = {
    "invalid JSON": ("{not json", "invalid JSON"),
    "not an object": ("[1, 2]", "expected a JSON object, got a list"),
    "no records key": ({"id": "x", "text": "t"}, "no event_list, entities, spo_list or error"),
    "text not a string": ({**ENTITY, "text": 3}, '"text" should be a string, got int'),
    "records not a list": ({**ENTITY, "entities": {}}, '"entities" should be a list'),
    "field missing": (
        {**ENTITY, "entities": [{"entity": "雷军", "start_offset": 1, "end_offset": 3}]},
        'entities[0]: "label" is missing',
    ),
    "offset a string": (
        {**ENTITY, "entities": [{**ENTITY["entities"][0], "start_offset": "1"}]},
        'entities[0]: "start_offset" should be int, got a string',
    ),
    "offset past the end": (
        {**ENTITY, "entities": [{**ENTITY["entities"][0], "end_offset": 40}]},
        "entities[0]: [1, 40) is not inside the text (7 characters)",
    ),
    "offset off the text": (
        {**ENTITY, "entities": [{**ENTITY["entities"][0], "start_offset": 0}]},
        "entities[0]: '雷军' but text[0:3] is '😀雷军'",
    ),
    "argument off the text": (
        {
            **ROWS["event"],
            "event_list": [
                {
                    "event_type": "t",
                    "arguments": [{"role": "r", "argument": "x", "argument_start_index": 2}],
                }
            ],
        },
        "event_list[0].arguments[0]: 'x' but text[2:3] is '军'",
    ),
    "a second task": (ROWS["relation"], '"spo_list" (relation) on a line after lines of entity'),
}


@pytest.mark.parametrize("bad", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_a_bad_line_names_file_and_line_and_leaves_the_old_output(
    bad: tuple, tmp_path: Path
) -> None:
    line, message = bad
    good = ROWS["event"] if isinstance(line, dict) and "event_list" in line else ENTITY
    preds = _write(tmp_path / "pred.jsonl", [good, {**good, "id": "2"}, line])
    out = tmp_path / "v.html"
    out.write_text("old", encoding="utf-8")
    with pytest.raises(InputError) as e:
        view_file(preds, out)
    assert str(e.value).startswith(f"{preds}:3: ") and message in str(e.value)
    assert out.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.jsonl", "v.html"]  # no temp file


def test_render_page_inlines_its_css_and_scripts() -> None:
    page = render_page()
    assert "<script src=" not in page and 'rel="stylesheet"' not in page
    assert "const GPL" in page and 'id="text"' in page and 'id="key"' in page
    assert ".gpl-seg" in page  # the stylesheet


def test_importing_view_loads_no_torch() -> None:
    code = "import sys, gplinker.view; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("task", ["event", "entity", "relation"])
def test_cli_view_draws_what_predict_wrote(task: str, tmp_path: Path) -> None:
    model = tiny_model_folder(task, tmp_path / "m")
    texts = tmp_path / "in.jsonl"
    _write(texts, [{"id": f"t{i}", "text": t} for i, t in enumerate(task_texts(task)[:6])])
    pred, out = tmp_path / "pred.jsonl", tmp_path / "view.html"
    args = ["predict", "-m", str(model), "-i", str(texts), "-o", str(pred), "--device", "cpu"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["view", str(pred), "-o", str(out), "--limit", "4"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: 4 of 6 lines shown ({task}, 0 in error)" in result.stdout
    rows = [json.loads(line) for line in pred.read_text(encoding="utf-8").splitlines()]
    assert any(row[key] for row in rows for key in view.RECORD_KEYS if key in row)
    assert _data(out.read_text(encoding="utf-8")) == {"task": task, "rows": rows[:4]}


def test_cli_view_reports_a_bad_line_as_one_error(tmp_path: Path) -> None:
    preds = _write(tmp_path / "pred.jsonl", [ENTITY, "{oops"])
    result = runner.invoke(app, ["view", str(preds), "-o", str(tmp_path / "v.html")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {preds}:2: invalid JSON")
    assert not (tmp_path / "v.html").exists()
