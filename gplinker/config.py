"""YAML recipe -> validated, frozen Config. The only place that holds defaults.

Relative paths in a recipe are taken from the directory the command runs in, the same
way command-line overrides such as `data.train=my.json` are read.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gplinker.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class DataConfig(_Section):
    train: Path | None = Field(None, description="JSONL used for training (the task's format)")
    dev: Path | None = Field(None, description="JSONL evaluated after every epoch")
    schema_file: Path | None = Field(
        None,
        description="labels: DuEE event schema, DuIE all_50_schemas, or entity types (empty "
        "for entities = the types of data.train)",
    )
    max_length: int = Field(128, ge=8, le=4096, description="tokens per window, [CLS]/[SEP] incl.")
    skip_invalid: bool = Field(
        False, description="drop bad train/dev lines (counted and reported) instead of failing"
    )
    windows: bool = Field(
        True, description="cover longer texts with overlapping windows; false = cut them"
    )
    window_overlap: int = Field(
        32, ge=0, description="tokens shared by consecutive windows (< max_length - 2)"
    )

    @model_validator(mode="after")
    def _overlap_fits(self) -> DataConfig:
        if self.window_overlap >= self.max_length - 2:
            raise ValueError(f"window_overlap must be below max_length - 2 = {self.max_length - 2}")
        return self


class ModelConfig(_Section):
    encoder: str | None = Field(
        None,
        description="hub name or local folder of the encoder (config, and weights if pretrained)",
    )
    pretrained: bool = Field(True, description="load the encoder's weights; false = random init")
    model_type: str = Field("bert", description="encoder family when `encoder` is empty")
    encoder_overrides: dict[str, Any] = Field(
        default_factory=dict, description="encoder config keys to change, e.g. num_hidden_layers"
    )
    tokenizer: str | None = Field(
        None,
        description="hub name or folder; empty = the encoder's; 'wordpiece' = from data.train",
    )
    tokenizer_vocab_size: int = Field(3000, ge=100, description="size of a 'wordpiece' vocabulary")
    split_digits: bool | None = Field(
        None,
        description="split digit runs from the letters they touch before WordPiece "
        "('Oracle2019' -> 'Oracle', '2019'), so that a span can start or end between them; "
        "empty = on for random-init encoders, off for pretrained ones (learnt without it)",
    )
    vocab_min_count: int = Field(
        0,
        ge=0,
        description="random init only: keep the tokens seen at least this often in data.train "
        "(others become [UNK]); 0 = the whole vocabulary",
    )
    pointer: Literal["efficient", "original"] = Field(
        "efficient", description="Efficient GlobalPointer (SPEC §3) or the original GlobalPointer"
    )
    head_size: int = Field(64, ge=2, multiple_of=2, description="d, the q/k size of each pointer")

    @model_validator(mode="after")
    def _cut_needs_random_init(self) -> ModelConfig:
        if self.vocab_min_count and self.pretrained:
            raise ValueError(
                "vocab_min_count needs pretrained: false (pretrained embeddings are indexed by "
                "the whole vocabulary)"
            )
        return self


class TrainConfig(_Section):
    epochs: int = Field(10, ge=1, description="passes over data.train; dev is scored after each")
    batch_size: int = Field(16, ge=1, description="texts per training step")
    eval_batch_size: int = Field(64, ge=1, description="texts per forward pass when scoring dev")
    optimizer: Literal["adax", "adamw", "adam"] = Field(
        "adax", description="AdaX (SPEC §5), AdamW, or Adam (the reference's 2e-5 setting)"
    )
    lr: float = Field(2e-5, gt=0, description="peak learning rate")
    weight_decay: float = Field(0.0, ge=0, description="decoupled weight decay (AdamW-style)")
    schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant", description="learning rate after warmup: constant, or decay to 0 at the end"
    )
    warmup_steps: int = Field(0, ge=0, description="linear warmup from 0 over this many steps")
    max_grad_norm: float = Field(0.0, ge=0, description="clip gradients to this norm; 0 = off")
    loss: Literal["sparse", "soft"] = Field(
        "sparse", description="multilabel CE on hard labels, or its soft-label form (SPEC §4)"
    )
    label_smoothing: float = Field(
        0.0, ge=0, lt=0.5, description="soft loss only: targets 1-ε on labels, ε elsewhere"
    )
    gradient_penalty: float = Field(
        0.0, ge=0, description="weight ε of ε/2·‖∇ loss‖² over the input embeddings (SPEC §6)"
    )
    ema_decay: float = Field(
        0.0, ge=0, lt=1, description="evaluate and save an exponential moving average; 0 = off"
    )
    seed: int = Field(42, description="seeds torch, numpy, random and the batch order")
    mixed_precision: Literal["no", "bf16", "fp16"] = Field(
        "no",
        description="autocast of the encoder in training steps (Accelerate); pointers, "
        "loss and dev evaluation stay fp32",
    )
    max_minutes: float | None = Field(
        None, gt=0, description="stop starting new steps after this many minutes (then evaluate)"
    )
    max_candidates: int = Field(
        256, ge=1, description="decoder bound on candidate spans per sentence and head"
    )
    bucket_size: int = Field(
        50, ge=1, description="batches whose texts are sorted by length together (1 = no sorting)"
    )
    checkpoint_every: int = Field(
        1000,
        ge=0,
        description="steps between checkpoints inside an epoch (one is also written after "
        "each epoch; 0 = only those); gplinker train --resume RUN goes on from the last",
    )
    log_every: int = Field(50, ge=1, description="steps between loss lines in train.log")
    tensorboard: bool = Field(True, description="also log to TensorBoard under output_dir/tb")

    @model_validator(mode="after")
    def _smoothing_needs_soft(self) -> TrainConfig:
        if self.label_smoothing and self.loss != "soft":
            raise ValueError("label_smoothing needs loss: soft")
        return self


class PretrainConfig(_Section):
    minutes: float = Field(
        0.0,
        ge=0,
        description="masked-LM pretraining of the encoder before training, within "
        "train.max_minutes; 0 = off",
    )
    texts: list[Path] = Field(
        default_factory=list,
        description="JSONL files whose texts feed the masked LM with those of data.train "
        "(e.g. LIC2020 test1.json); a text also in data.dev is left out",
    )
    mask_prob: float = Field(0.15, gt=0, lt=1, description="share of real tokens predicted")
    lr: float = Field(5e-4, gt=0, description="AdamW learning rate of the masked LM")
    batch_size: int = Field(32, ge=1, description="texts per masked-LM step")


class Config(_Section):
    task: Literal["entity", "relation", "event"] = Field(
        "event", description="what to extract: entities, relation triples or events"
    )
    data_root: Path | None = Field(
        None,
        description="where the data sets and models are (scripts/get_data.sh puts them in "
        "DATA_ROOT/data/DATASET): ${data_root} in any path of the recipe is replaced by it",
    )
    data: DataConfig
    model: ModelConfig = ModelConfig()
    pretrain: PretrainConfig = PretrainConfig()
    train: TrainConfig = TrainConfig()
    output_dir: Path = Field(
        Path("runs/default"), description="run folder: config, logs, metrics, best/ and last/"
    )

    @model_validator(mode="after")
    def _labels_need_a_schema(self) -> Config:
        if self.task != "entity" and self.data.schema_file is None:
            raise ValueError(
                f"data.schema_file is needed for task {self.task!r} (only entity types can "
                "come from data.train)"
            )
        return self

    @model_validator(mode="after")
    def _pretraining_needs_random_init(self) -> Config:
        if self.pretrain.minutes and self.model.pretrained:
            raise ValueError("pretrain.minutes is for random-init encoders (pretrained: false)")
        return self


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML recipe, apply `a.b=value` overrides, validate; errors name key and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text) or {}
        root = yaml.compose(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read config: {e}", where=str(path)) from e
    if not isinstance(raw, dict):
        raise ConfigError("a config is a mapping of sections (data, model, train)", where=str(path))
    overridden = [_apply_override(raw, item) for item in overrides]
    _expand_data_root(raw, raw.get("data_root"), path)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            message = f"unknown key{_suggest(err['loc'])}"
        elif err["type"] == "value_error":  # a check across keys: the input is the section
            message = str(err["ctx"]["error"])
        else:
            message = f"{err['msg'].lower()}, got {err.get('input')!r}"
        if any(key == o or key.startswith(o + ".") or o.startswith(key + ".") for o in overridden):
            where = f"{path} (command-line override)"
        else:
            line = _line_of(root, err["loc"])
            where = f"{path}:{line}" if line else str(path)
        raise ConfigError(message, key=key, where=where) from None


def config_to_yaml(config: Config) -> str:
    """The resolved config, as written into every run folder."""
    return yaml.safe_dump(config.model_dump(mode="json"), allow_unicode=True, sort_keys=False)


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _expand_data_root(node: Any, root: Any, path: Path, key: str = "") -> Any:
    """Replace ${data_root} in every string of the raw config, in place; another ${...},
    or ${data_root} with no data_root set, is a ConfigError naming the key."""
    if isinstance(node, dict):
        for k, v in node.items():
            node[k] = _expand_data_root(v, root, path, f"{key}.{k}" if key else str(k))
    elif isinstance(node, list):
        node[:] = [_expand_data_root(v, root, path, f"{key}[{i}]") for i, v in enumerate(node)]
    elif isinstance(node, str):
        for name in _VARIABLE.findall(node):
            if name != "data_root":
                raise ConfigError(
                    f"unknown ${{{name}}} (only ${{data_root}} is replaced)", key, str(path)
                )
            if root is None:
                raise ConfigError("uses ${data_root}, which is not set", key, str(path))
        return node.replace("${data_root}", str(root))
    return node


def _apply_override(raw: dict, item: str) -> str:
    """Set `a.b=value` (value read as YAML) in the raw dict; returns the dotted key."""
    key, sep, value = item.partition("=")
    key = key.strip().lstrip("-")
    if not sep or not key:
        raise ConfigError(f"an override looks like train.lr=3e-5, got {item!r}")
    parts = key.split(".")
    node = raw
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError("is not a section", key=key)
    node[parts[-1]] = yaml.safe_load(value) if value.strip() else None
    return key


def _suggest(loc: Sequence[Any]) -> str:
    section: type[BaseModel] = Config
    for p in loc[:-1]:
        field = section.model_fields.get(str(p))
        ann = field.annotation if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return ""
        section = ann
    typo, known = str(loc[-1]), list(section.model_fields)
    # a key that starts the typo (lr_rate -> lr) beats difflib's letter overlap
    close = sorted((k for k in known if typo.startswith(k) or k.startswith(typo)), key=len)[-1:]
    close = close or difflib.get_close_matches(typo, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"


def _line_of(node: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    """1-based YAML line of a dotted key, or of its deepest existing parent."""
    line = None
    for p in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if k.value == str(p)), None)
        if match is None:
            break
        line, node = match[0].start_mark.line + 1, match[1]
    return line
