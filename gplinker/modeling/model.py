"""GPLinkerModel: any Hugging Face AutoModel encoder + a task's pointer heads; folder save/load.

A model folder holds `config.json` (encoder config + head settings) and
`model.safetensors`; the tokenizer and schema are added by `gplinker.predict.GPLinker`.
Loading one reads only those two files: no pickle, and no code from the folder
(`trust_remote_code` is passed as False to every Auto* call, so transformers neither runs an
`auto_map` class nor asks on stdin whether to).
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from huggingface_hub.errors import StrictDataclassError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear
from torch.ao.quantization import quantize_dynamic
from transformers import CONFIG_MAPPING, AutoConfig, AutoModel, PretrainedConfig

from gplinker.config import ModelConfig
from gplinker.errors import ConfigError, GPLinkerError
from gplinker.modeling.global_pointer import (
    EfficientGlobalPointer,
    Factored,
    GlobalPointer,
    PointerSpec,
)

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
# int8 keeps the encoder's last layers fp32: their error reaches the pointer heads unsmoothed
# and shifts the scores up (docs/performance.md, "CPU inference")
FP32_LAST_LAYERS = 1


class FolderConfig(BaseModel):
    """What `config.json` of a saved model stores. A folder from before tasks existed has
    only `num_labels`: it is an event model, whose heads that number gives."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal["gplinker-ee/1"] = "gplinker-ee/1"
    task: str = "event"
    heads: tuple[PointerSpec, ...] = ()
    num_labels: int | None = Field(None, ge=1)  # old event folders only
    pointer: Literal["efficient", "original"] = "efficient"
    head_size: int = Field(64, ge=1)
    encoder: dict[str, Any]

    @model_validator(mode="after")
    def _heads_of_old_folders(self) -> FolderConfig:
        if self.heads:
            return self
        if self.num_labels is None or self.task != "event":
            raise ValueError("heads: missing")
        event_heads = (
            PointerSpec("argu", self.num_labels),
            PointerSpec("head_link", 1, rope=False),
            PointerSpec("tail_link", 1, rope=False),
        )
        return self.model_copy(update={"heads": event_heads})


ModelOutput = dict[str, Tensor | Factored]  # head name -> [B, H, L, L] scores, or their parts


class GPLinkerModel(nn.Module):
    """An encoder and the task's pointer heads, each an attribute named as its head (so
    event folders keep their weight names: argu.*, head_link.*, tail_link.*). Scores only;
    the loss lives in training (SPEC §4) so inference never builds it."""

    def __init__(
        self,
        encoder: nn.Module,
        heads: Sequence[PointerSpec],
        pointer: Literal["efficient", "original"] = "efficient",
        head_size: int = 64,
        task: str = "event",
    ):
        super().__init__()
        if not heads or len({h.name for h in heads}) != len(heads):
            raise ValueError(f"heads need distinct names, got {[h.name for h in heads]}")
        self.encoder = encoder
        self.heads = tuple(heads)
        self.folder_config = FolderConfig(
            task=task,
            heads=self.heads,
            pointer=pointer,
            head_size=head_size,
            encoder=encoder.config.to_dict(),
        )
        D = encoder.config.hidden_size
        Pointer = EfficientGlobalPointer if pointer == "efficient" else GlobalPointer
        for h in self.heads:
            self.add_module(h.name, Pointer(D, h.num_labels, head_size, h.rope, h.ordered))

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, *, factored: bool = False
    ) -> ModelOutput:
        """Scores of every head. `factored=True` lets training skip the [B, H, L, L]
        tensors (EGP only; the original GlobalPointer always returns dense)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]  # [B, L, D]
        # the pointers turn autocast off and compute in their weights' dtype (fp32 unless
        # the whole model was cast): scores, masks and loss stay fp32 under bf16/fp16
        out: ModelOutput = {}
        for h in self.heads:
            pointer = getattr(self, h.name)
            if factored and isinstance(pointer, EfficientGlobalPointer):
                out[h.name] = pointer.factored(hidden, attention_mask)
            else:
                out[h.name] = pointer(hidden, attention_mask)
        return out

    @classmethod
    def from_encoder(
        cls, config: ModelConfig, heads: Sequence[PointerSpec], vocab_size: int, task: str = "event"
    ) -> GPLinkerModel:
        """Build from a recipe: pretrained weights, or a random encoder of the given shape."""
        overrides = dict(config.encoder_overrides)
        try:
            if config.encoder is None:
                enc_config = AutoConfig.for_model(config.model_type, **overrides)
            else:
                enc_config = AutoConfig.from_pretrained(
                    config.encoder, trust_remote_code=False, **overrides
                )
        except (OSError, ValueError) as e:
            raise _unreachable(config.encoder, e) from e
        if config.pretrained:
            if config.encoder is None:
                raise ConfigError("pretrained: true needs model.encoder", key="model.pretrained")
            # a .bin checkpoint goes through torch's weights-only unpickler: no code runs
            kwargs: dict[str, Any] = {"config": enc_config, "trust_remote_code": False}
            try:
                try:
                    encoder = AutoModel.from_pretrained(
                        config.encoder, add_pooling_layer=False, **kwargs
                    )
                except TypeError:  # encoders without a pooler option
                    encoder = AutoModel.from_pretrained(config.encoder, **kwargs)
            except (OSError, ValueError) as e:
                raise _unreachable(config.encoder, e) from e
            except pickle.UnpicklingError as e:
                raise ConfigError(
                    f"cannot load {config.encoder!r}: its weights are a pickle that torch's "
                    "weights-only loader refused; give a folder with model.safetensors",
                    key="model.encoder",
                ) from e
        else:
            enc_config.vocab_size = vocab_size
            encoder = _encoder_from_config(enc_config)
        return cls(encoder, heads, config.pointer, config.head_size, task)

    @property
    def int8(self) -> bool:
        """Whether the encoder's Linear layers were quantized (`quantize_encoder`)."""
        return any(isinstance(m, DynamicQuantizedLinear) for m in self.encoder.modules())

    def quantize_encoder(self, fp32_last: int = FP32_LAST_LAYERS) -> GPLinkerModel:
        """Dynamic int8 quantization of the encoder's Linear layers, for CPU inference
        (weights int8, activations quantized per batch), but for those of its last
        `fp32_last` layers: the pointer heads and the decoder stay fp32. In place; such a
        model is not saved (its folder keeps fp32 weights). torch.ao.quantization warns
        that it is deprecated (for torchao, another package); it still works in the torch
        this project pins, and the warnings are kept quiet."""
        kept = last_layers(self.encoder, fp32_last)
        linear = {
            name
            for name, module in self.encoder.named_modules()
            if isinstance(module, nn.Linear) and not any(name.startswith(k + ".") for k in kept)
        }
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(deprecated|quantized tensor creation)")
            quantize_dynamic(self.encoder, linear, dtype=torch.qint8, inplace=True)
        return self

    def save_pretrained(self, directory: str | Path) -> None:
        if self.int8:
            raise GPLinkerError("an int8-quantized model is not saved: save the fp32 one")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(
            self.folder_config.model_dump_json(indent=1, exclude_none=True)
        )
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> GPLinkerModel:
        """Load a saved folder; safetensors only, no code from the folder is run."""
        directory = Path(directory)
        try:
            text = (directory / CONFIG_NAME).read_text(encoding="utf-8")
            folder = FolderConfig.model_validate_json(text)
        except (OSError, UnicodeDecodeError, ValidationError) as e:
            raise GPLinkerError(f"{directory}: not a gplinker model folder ({_brief(e)})") from e
        encoder = _encoder_from_folder(folder, directory / CONFIG_NAME)
        model = cls(encoder, folder.heads, folder.pointer, folder.head_size, folder.task)
        try:
            state = load_file(str(directory / WEIGHTS_NAME))
        except (OSError, SafetensorError) as e:
            raise GPLinkerError(f"{directory / WEIGHTS_NAME}: cannot read weights ({e})") from e
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items()}
        if expected != found:
            wrong = sorted(k for k in expected.keys() & found.keys() if expected[k] != found[k])
            raise GPLinkerError(
                f"{directory}: {WEIGHTS_NAME} does not match {CONFIG_NAME} (missing "
                f"{sorted(expected.keys() - found.keys())[:3]}, unexpected "
                f"{sorted(found.keys() - expected.keys())[:3]}, other shape {wrong[:3]})"
            )
        model.load_state_dict(state)
        return model


def _encoder_from_config(enc_config: PretrainedConfig) -> nn.Module:
    try:
        return AutoModel.from_config(enc_config, add_pooling_layer=False, trust_remote_code=False)
    except TypeError:
        return AutoModel.from_config(enc_config, trust_remote_code=False)


def _encoder_from_folder(folder: FolderConfig, path: Path) -> nn.Module:
    """A random encoder of the shape `config.json` gives (built-in classes only)."""
    enc_dict = dict(folder.encoder)
    model_type = enc_dict.pop("model_type", None)
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        raise GPLinkerError(
            f"{path}: encoder.model_type {model_type!r} is not an encoder family of transformers"
        )
    try:
        return _encoder_from_config(AutoConfig.for_model(model_type, **enc_dict))
    except (ValueError, TypeError, StrictDataclassError) as e:
        raise GPLinkerError(
            f"{path}: the encoder settings do not make an encoder ({_brief(e)})"
        ) from e


def _brief(e: Exception) -> str:
    """The error on one line (the CLI prints one `error:` line)."""
    if isinstance(e, ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, d['loc'])) or 'config'}: {d['msg']}" for d in e.errors()
        )
    return " ".join(str(e).split())


def _unreachable(name: str | None, e: Exception) -> GPLinkerError:
    if name is not None and not Path(name).exists():
        return ConfigError(
            f"{name!r} is not on this machine and the hub is unreachable; give a local folder",
            key="model.encoder",
        )
    return ConfigError(f"cannot load {name!r}: {_brief(e)}", key="model.encoder")


def last_layers(encoder: nn.Module, n: int) -> list[str]:
    """Module names of the encoder's last `n` transformer layers (e.g. `encoder.layer.11`):
    the ModuleList as long as `config.num_hidden_layers`, as Hugging Face encoders hold
    their stack of layers."""
    if n == 0:
        return []
    depth = encoder.config.num_hidden_layers
    for name, module in encoder.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == depth:
            return [f"{name}.{i}" for i in range(max(depth - n, 0), depth)]
    raise GPLinkerError(f"{type(encoder).__name__}: no list of {depth} layers to keep fp32")
