"""--int8: the encoder's Linear layers dynamically quantized but for its last layer's, the
heads and the decoder fp32; its scores stay close to fp32's, and prediction runs through
every entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import task_texts, tiny_model_folder
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.data.alignment import encode_windows
from gplinker.data.collate import collate
from gplinker.errors import GPLinkerError
from gplinker.modeling.model import FP32_LAST_LAYERS, last_layers
from gplinker.predict import GPLinker

TASKS = ["event", "entity", "relation"]
# the largest score difference allowed, as a share of the spread (std) of fp32's scores
SCORE_TOLERANCE = 0.1


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("int8")
    return {task: tiny_model_folder(task, root / task) for task in TASKS}


def scores(linker: GPLinker, texts: list[str]) -> dict[str, torch.Tensor]:
    """Every head's dense scores [B, H, L, L] of the texts' first windows."""
    windows = encode_windows(texts, linker.tokenizer, linker.max_length, None)
    batch = collate([(ws[0], None) for ws in windows])
    with torch.inference_mode():
        return linker.model(batch.input_ids, batch.attention_mask)


def assert_close(fp32: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> None:
    """Every head's scores changed, but by less than SCORE_TOLERANCE of their spread."""
    for name, s in fp32.items():
        real = torch.isfinite(s) & (s.abs() < 1e6)  # not the masked cells (padding, t < h)
        worst = (other[name][real] - s[real]).abs().max() / s[real].std()
        assert 0 < worst < SCORE_TOLERANCE, (name, float(worst))


def linear_layers(module: torch.nn.Module) -> dict[str, bool]:
    """Each Linear layer's name -> whether it is int8."""
    return {
        name: isinstance(m, DynamicQuantizedLinear)
        for name, m in module.named_modules()
        if isinstance(m, torch.nn.Linear | DynamicQuantizedLinear)
    }


@pytest.mark.parametrize("task", TASKS)
def test_only_the_encoders_linear_layers_are_int8(task: str, folders: dict[str, Path]) -> None:
    int8 = GPLinker.from_pretrained(folders[task], device="cpu", int8=True)
    assert int8.model.int8 and FP32_LAST_LAYERS == 1
    last = f"encoder.layer.{int8.model.encoder.config.num_hidden_layers - 1}."
    layers = linear_layers(int8.model.encoder)
    assert sum(n.startswith(last) for n in layers) == 6  # q, k, v, attention out, FFN in, out
    for name, quantized in layers.items():
        assert quantized != name.startswith(last), name  # the last layer fp32, the rest int8
    for head in int8.model.heads:
        pointer = getattr(int8.model, head.name)
        assert not any(isinstance(m, DynamicQuantizedLinear) for m in pointer.modules())
        assert all(p.dtype == torch.float32 for p in pointer.parameters())


def test_int8_can_quantize_every_layer(folders: dict[str, Path]) -> None:
    linker = GPLinker.from_pretrained(folders["event"], device="cpu")
    assert all(linear_layers(linker.model.quantize_encoder(fp32_last=0).encoder).values())
    unlike_bert = torch.nn.Sequential(torch.nn.Linear(2, 2))
    unlike_bert.config = linker.model.encoder.config  # type: ignore[assignment]
    with pytest.raises(GPLinkerError, match="no list of 2 layers to keep fp32"):
        last_layers(unlike_bert, 1)


@pytest.mark.parametrize("task", TASKS)
def test_int8_scores_stay_close_to_fp32(task: str, folders: dict[str, Path]) -> None:
    texts = task_texts(task, "dev")[:16]
    fp32 = scores(GPLinker.from_pretrained(folders[task], device="cpu"), texts)
    int8 = scores(GPLinker.from_pretrained(folders[task], device="cpu", int8=True), texts)
    assert_close(fp32, int8)


def test_an_int8_model_is_not_saved_and_runs_on_the_cpu_only(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    int8 = GPLinker.from_pretrained(folders["entity"], device="cpu", int8=True)
    with pytest.raises(GPLinkerError, match="not saved"):
        int8.save_pretrained(tmp_path / "copy")
    with pytest.raises(GPLinkerError, match="int8 runs on the CPU, not on cuda"):
        GPLinker.from_pretrained(folders["entity"], device="cuda", int8=True)


def test_predict_int8_from_the_command_line(folders: dict[str, Path], tmp_path: Path) -> None:
    texts = task_texts("entity", "dev")[:10]
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    args = ["predict", "-m", str(folders["entity"]), "-i", str(source), "-o", str(out), "--int8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == texts and all("entities" in r for r in rows)
