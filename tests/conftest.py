"""Shared fixtures: a tokenizer built from data/sample, a tiny encoder config, the schema.

No test touches the network: the hub is switched off for every test (the env variable is
read once at import by huggingface_hub, so its constant is patched too).
"""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub.constants
import pytest

from gplinker import tasks
from gplinker.data.reader import read_examples
from gplinker.modeling.global_pointer import PointerSpec
from gplinker.schema import Example, Schema

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
SHARED = ROOT.parent / "shared"
# the embedded sample of every task: (train, dev, schema file, sample config)
SAMPLES = {
    "event": (
        SAMPLE / "train.json",
        SAMPLE / "dev.json",
        SAMPLE / "duee_event_schema.json",
        ROOT / "configs/sample.yaml",
    ),
    "entity": (
        ROOT / "data/sample-entity/train.json",
        ROOT / "data/sample-entity/dev.json",
        ROOT / "data/sample-entity/schema.json",
        ROOT / "configs/sample-entity.yaml",
    ),
    "relation": (
        ROOT / "data/sample-relation/train.json",
        ROOT / "data/sample-relation/dev.json",
        ROOT / "data/sample-relation/all_schemas",
        ROOT / "configs/sample-relation.yaml",
    ),
}
TINY_ENCODER = {
    "num_hidden_layers": 2,
    "hidden_size": 32,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
}


EVENT = tasks.get("event")


def event_heads(schema: Schema) -> list[PointerSpec]:
    return EVENT.heads(schema)


def label_counts(schema: Schema) -> dict[str, int]:
    """What `collate` needs to turn an event model's labels into indices."""
    return {h.name: h.num_labels for h in EVENT.heads(schema)}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="session")
def schema() -> Schema:
    return Schema.from_file(SAMPLE / "duee_event_schema.json")


@pytest.fixture(scope="session")
def sample_examples(schema: Schema) -> list[Example]:
    return list(read_examples(SAMPLE / "train.json", schema))


@pytest.fixture(scope="session")
def tiny_tokenizer(sample_examples: list[Example]):
    from gplinker.data.tokenizer import build_wordpiece_tokenizer

    return build_wordpiece_tokenizer((ex.text for ex in sample_examples), 2000)


def sample_texts(split: str = "train") -> list[str]:
    lines = (SAMPLE / f"{split}.json").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines]


def task_texts(task: str, split: str = "train") -> list[str]:
    path = SAMPLES[task][0 if split == "train" else 1]
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


def tiny_model_folder(task: str, folder: Path, shift: float | None = None) -> Path:
    """A random tiny model of `task` saved as `gplinker train` saves one, without training.
    A random model scores about half of all spans above 0 (slow to decode); `shift` lowers
    the first head's scores (spans), so that a few dozen records are found per file. By
    default 1.3, but for relations -2 (raised): a triple needs a subject, an object and both
    links above 0, which a random model seldom gives."""
    if shift is None:
        shift = -2.0 if task == "relation" else 1.3
    import torch

    from gplinker.config import ModelConfig
    from gplinker.data.tokenizer import build_wordpiece_tokenizer
    from gplinker.modeling.model import GPLinkerModel
    from gplinker.predict import GPLinker

    t = tasks.get(task)
    schema = t.read_schema(SAMPLES[task][2], None)
    tokenizer = build_wordpiece_tokenizer(task_texts(task), 2000)
    torch.manual_seed(0)
    config = ModelConfig(pretrained=False, encoder_overrides=TINY_ENCODER, head_size=16)
    heads = t.heads(schema)
    model = GPLinkerModel.from_encoder(config, heads, len(tokenizer), task).eval()
    with torch.no_grad():
        getattr(model, heads[0].name).bias.bias -= shift
    GPLinker(model, tokenizer, schema, max_length=64, device="cpu").save_pretrained(folder)
    return folder
