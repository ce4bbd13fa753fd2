"""ONNX Runtime for the encoder: `gplinker export --onnx DIR` and `--backend onnx`.

An exported folder is the model folder plus `encoder.onnx` (and `encoder.int8.onnx`, its
weights dynamically quantized by onnxruntime): the encoder runs in ONNX Runtime, the pointer
heads and the decoder stay in PyTorch, fp32, loaded from the folder's safetensors as usual.
onnx and onnxruntime are an optional extra (`pip install -e ".[onnx]"`).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gplinker.errors import GPLinkerError

ONNX_NAME, ONNX_INT8_NAME = "encoder.onnx", "encoder.int8.onnx"
INPUTS = ("input_ids", "attention_mask")


class _Hidden(nn.Module):
    """The encoder as ONNX sees it: two inputs, the last hidden states out."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]


def export_onnx(model: Any, source: Path, output: Path, *, int8: bool = True) -> list[Path]:
    """Copy the model folder `source` to `output` and add its encoder as ONNX (and int8
    ONNX); batch and length stay dynamic. `model`: the loaded fp32 GPLinker of `source`."""
    if output.resolve() != source.resolve():
        shutil.copytree(source, output, dirs_exist_ok=True)
    _require("onnx"), _require("onnxruntime")
    ids = torch.tensor([[model.tokenizer.cls_token_id] * 8] * 2)
    axes = {name: {0: "batch", 1: "length"} for name in (*INPUTS, "hidden")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on HF's mask code
        torch.onnx.export(
            _Hidden(model.model.encoder).eval(), (ids, torch.ones_like(ids)),
            str(output / ONNX_NAME), input_names=list(INPUTS), output_names=["hidden"],
            dynamic_axes=axes, dynamo=False,
        )  # fmt: skip
    written = [output / ONNX_NAME]
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(output / ONNX_NAME, output / ONNX_INT8_NAME, weight_type=QuantType.QInt8)
        written.append(output / ONNX_INT8_NAME)
    return written


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
