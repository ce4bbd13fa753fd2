"""A new user's path from an annotation tool to a trained model and back, through the CLI
only (issue 15): a small doccano and a small Label Studio export of entities (written here
from the embedded sample, one span with a space at its edge) -> convert -> schema -> check
(its warning shown, exit 0) -> train on the sample budget -> predict in the tool's format ->
that file converted back parses, and holds what the model found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.metrics import exact_prf

SAMPLE = ROOT / "data" / "sample-entity"
RECIPE = ROOT / "configs" / "sample-entity.yaml"


def utf16(text: str, i: int) -> int:
    return len(text[:i].encode("utf-16-le")) // 2


def sample_rows(split: str) -> list[dict]:
    lines = (SAMPLE / f"{split}.json").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def with_a_space_at_an_edge(rows: list[dict]) -> list[dict]:
    """The first row gets a span one character longer, over a space the test adds."""
    row = rows[0]
    e = row["entities"][0]
    text = row["text"][: e["end_offset"]] + " " + row["text"][e["end_offset"] :]
    moved = [
        {**x, "start_offset": x["start_offset"] + (x["start_offset"] >= e["end_offset"]),
         "end_offset": x["end_offset"] + (x["end_offset"] > e["end_offset"])}
        for x in row["entities"]
    ]  # fmt: skip
    moved[0] = {**moved[0], "end_offset": e["end_offset"] + 1}
    return [{**row, "text": text, "entities": moved}, *rows[1:]]


def doccano_export(rows: list[dict], path: Path) -> Path:
    """doccano's sequence-labelling JSONL: [start, end, label], counted in UTF-16 units."""
    lines = [
        {
            "id": i,
            "text": r["text"],
            "label": [
                [utf16(r["text"], e["start_offset"]), utf16(r["text"], e["end_offset"]), e["label"]]
                for e in r["entities"]
            ],
        }
        for i, r in enumerate(rows, 1)
    ]
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), "utf-8")
    return path


def label_studio_export(rows: list[dict], path: Path) -> Path:
    """Label Studio's JSON export: one task per text, its annotation's `labels` results."""
    tasks = [
        {
            "id": i,
            "data": {"text": r["text"]},
            "annotations": [
                {
                    "id": i,
                    "result": [
                        {
                            "id": f"r{i}-{k}",
                            "type": "labels",
                            "from_name": "label",
                            "to_name": "text",
                            "value": {
                                "start": e["start_offset"],
                                "end": e["end_offset"],
                                "text": r["text"][e["start_offset"] : e["end_offset"]],
                                "labels": [e["label"]],
                            },
                        }
                        for k, e in enumerate(r["entities"])
                    ],
                }
            ],
        }
        for i, r in enumerate(rows, 1)
    ]
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    return path


def run(*args: str) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (args, result.output)
    return result.output


def found(rows_path: Path) -> set[tuple[str, str, int, int]]:
    lines = rows_path.read_text(encoding="utf-8").splitlines()
    return found_in([json.loads(line) for line in lines])


def accepted(pre_annotations: Path) -> Path:
    """What Label Studio exports once an annotator accepts every pre-annotation as it is:
    each task's prediction becomes its annotation."""
    tasks = json.loads(pre_annotations.read_text(encoding="utf-8"))
    for task in tasks:
        task["annotations"] = [{"id": 1, "result": task.pop("predictions")[0]["result"]}]
    out = pre_annotations.with_name("accepted.json")
    out.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["doccano", "label-studio"])
def test_from_an_annotation_tool_to_a_model_and_back(tool: str, tmp_path: Path) -> None:
    export = doccano_export if tool == "doccano" else label_studio_export
    data = tmp_path / "data"
    data.mkdir()
    train_rows, dev_rows = with_a_space_at_an_edge(sample_rows("train")), sample_rows("dev")
    for split, rows in (("train", train_rows), ("dev", dev_rows)):
        source = export(rows, tmp_path / f"{split}-export")
        run("convert", source, "-o", data / f"{split}.json", "--from", tool, "--task", "entity")
    assert found(data / "train.json") == found_in(train_rows)  # offsets exact, none lost

    run("schema", "--from", data / "train.json", "-o", data / "schema.json")
    schema = json.loads((data / "schema.json").read_text(encoding="utf-8"))
    assert set(schema["entity_types"]) == {e["label"] for r in train_rows for e in r["entities"]}

    keys = [
        f"data.train={data / 'train.json'}",
        f"data.dev={data / 'dev.json'}",
        f"data.schema_file={data / 'schema.json'}",
        f"output_dir={tmp_path / 'run'}",
    ]
    report = run("check", "--config", RECIPE, *keys)
    assert "whitespace" in report and "train.json:1" in report  # the warning, and where

    run("train", "--config", RECIPE, *keys)
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in dev_rows), "utf-8")
    suffix = ".jsonl" if tool == "doccano" else ".json"
    pre = tmp_path / f"pre-annotations{suffix}"
    run("predict", "--model", tmp_path / "run" / "best", "-i", texts, "-o", pre, "--format", tool)

    back = tmp_path / "back.json"
    reimport = pre if tool == "doccano" else accepted(pre)
    run("convert", reimport, "-o", back, "--from", tool, "--task", "entity")
    f1 = exact_prf(found(back), found_in(dev_rows)).f1
    assert f1 >= 0.9, f1  # what the model found, as the tool would show it


def found_in(rows: list[dict]) -> set[tuple[str, str, int, int]]:
    return {
        (r["text"], e["label"], e["start_offset"], e["end_offset"])
        for r in rows
        for e in r["entities"]
    }
