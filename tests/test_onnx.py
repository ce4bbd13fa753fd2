"""--backend onnx: the encoder exported by `gplinker export --onnx` and run by ONNX Runtime,
the heads and decoder in PyTorch; the same records as the torch backend (fp32), scores
close with the int8 encoder."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import task_texts, tiny_model_folder
from test_int8 import assert_close, scores
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.errors import GPLinkerError
from gplinker.export import ONNX_INT8_NAME, ONNX_NAME, _nodes_under
from gplinker.predict import GPLinker

pytest.importorskip("onnxruntime")
TASKS = ["event", "entity", "relation"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onnx")
    out = {}
    for task in TASKS:
        folder = tiny_model_folder(task, root / task)
        result = CliRunner().invoke(app, ["export", "-m", str(folder), "--onnx", str(folder)])
        assert result.exit_code == 0, result.output
        out[task] = folder
    return out


@pytest.mark.parametrize("task", TASKS)
def test_onnx_finds_what_torch_finds(task: str, exported: dict[str, Path]) -> None:
    texts = task_texts(task, "dev")[:24]
    torch_found = GPLinker.from_pretrained(exported[task], device="cpu").extract(texts)
    onnx = GPLinker.from_pretrained(exported[task], backend="onnx")
    assert sum(map(len, torch_found)) > 0
    assert onnx.extract(texts) == torch_found


@pytest.mark.parametrize("task", TASKS)
def test_onnx_int8_scores_stay_close(task: str, exported: dict[str, Path]) -> None:
    texts = task_texts(task, "dev")[:16]
    fp32 = scores(GPLinker.from_pretrained(exported[task], device="cpu"), texts)
    int8 = scores(GPLinker.from_pretrained(exported[task], backend="onnx", int8=True), texts)
    assert_close(fp32, int8)


def test_onnx_int8_keeps_the_last_layer_fp32(exported: dict[str, Path]) -> None:
    import onnx

    graph = onnx.load(str(exported["event"] / ONNX_INT8_NAME)).graph
    weights = {i.name for i in graph.initializer}
    fp32 = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    int8 = [n.name for n in graph.node if n.op_type == "MatMulInteger"]
    assert len(fp32) == 6 and all("/layer.1/" in n for n in fp32)  # the last of two layers
    assert int8 and not any("/layer.1/" in n for n in int8)
    with pytest.raises(GPLinkerError, match=r"no node named under /encoder/encoder/layer\.7/"):
        _nodes_under(exported["event"] / ONNX_NAME, ["encoder.layer.7"])  # a name not exported


def test_onnx_needs_the_export_and_the_cpu(tmp_path: Path, exported: dict[str, Path]) -> None:
    bare = tiny_model_folder("entity", tmp_path / "bare")
    with pytest.raises(GPLinkerError, match="make it with gplinker export --onnx"):
        GPLinker.from_pretrained(bare, backend="onnx")
    with pytest.raises(GPLinkerError, match="runs on the CPU"):
        GPLinker.from_pretrained(exported["entity"], backend="onnx", device="cuda")
