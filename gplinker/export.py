"""ONNX Runtime for the encoder: `gplinker export --onnx DIR` and `--backend onnx`.

An exported folder is the model folder plus `encoder.onnx` (and `encoder.int8.onnx`, its
weights dynamically quantized by onnxruntime): the encoder runs in ONNX Runtime, the pointer
heads and the decoder stay in PyTorch, fp32, loaded from the folder's safetensors as usual.
onnx and onnxruntime are an optional extra (`pip install -e ".[onnx]"`).
"""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gplinker.errors import GPLinkerError
from gplinker.modeling.model import FP32_LAST_LAYERS, last_layers

ONNX_NAME, ONNX_INT8_NAME = "encoder.onnx", "encoder.int8.onnx"
INPUTS = ("input_ids", "attention_mask")


class _Hidden(nn.Module):
    """The encoder as ONNX sees it: two inputs, the last hidden states out."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]


def export_onnx(
    model: Any, source: Path, output: Path, *, int8: bool = True, fp32_last: int = FP32_LAST_LAYERS
) -> list[Path]:
    """Copy the model folder `source` to `output` and add its encoder as ONNX (and int8
    ONNX, but for the MatMuls of its last `fp32_last` layers, as `--int8` in torch); batch
    and length stay dynamic. `model`: the loaded fp32 GPLinker of `source`."""
    if output.resolve() != source.resolve():
        shutil.copytree(source, output, dirs_exist_ok=True)
    _require("onnx"), _require("onnxruntime")
    encoder = model.model.encoder
    ids = torch.tensor([[model.tokenizer.cls_token_id] * 8] * 2)
    axes = {name: {0: "batch", 1: "length"} for name in (*INPUTS, "hidden")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on HF's mask code
        torch.onnx.export(
            _Hidden(encoder).eval(), (ids, torch.ones_like(ids)),
            str(output / ONNX_NAME), input_names=list(INPUTS), output_names=["hidden"],
            dynamic_axes=axes, dynamo=False,
        )  # fmt: skip
    written = [output / ONNX_NAME]
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            output / ONNX_NAME, output / ONNX_INT8_NAME, weight_type=QuantType.QInt8,
            nodes_to_exclude=_nodes_under(output / ONNX_NAME, last_layers(encoder, fp32_last)),
        )  # fmt: skip
        written.append(output / ONNX_INT8_NAME)
    return written


def _nodes_under(path: Path, modules: list[str]) -> list[str]:
    """The graph's nodes inside these encoder modules: the exporter names a node by its
    module path under _Hidden, "/encoder/" + `encoder.layer.3` as `encoder/layer.3` + "/"."""
    import onnx

    scopes = tuple("/encoder/" + re.sub(r"\.(?=\D)", "/", m) + "/" for m in modules)
    nodes = [n.name for n in onnx.load(str(path)).graph.node if n.name.startswith(scopes)]
    if modules and not nodes:  # else int8 would quantize the layers it keeps fp32
        raise GPLinkerError(f"{path}: no node named under {scopes[0]} to keep fp32")
    return nodes


class OrtEncoder(nn.Module):
    """Stands in for the Hugging Face encoder of a GPLinkerModel: the same call, the
    last hidden states computed by an ONNX Runtime session (CPU)."""

    def __init__(self, path: Path, config: Any):
        super().__init__()
        ort = _require("onnxruntime")
        if not path.is_file():
            raise GPLinkerError(f"{path}: no such file (make it with gplinker export --onnx)")
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.config = config

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor]:
        feed = {
            "input_ids": input_ids.cpu().numpy(),
            "attention_mask": attention_mask.cpu().numpy(),
        }
        return (torch.from_numpy(self.session.run(None, feed)[0]),)


def _require(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError as e:
        raise GPLinkerError(
            f"the ONNX backend needs {name}: pip install -e '.[onnx]' (onnx, onnxruntime)"
        ) from e
