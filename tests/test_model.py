"""GPLinkerModel: shapes, factored parts, and folder save -> load (SPEC §3, §10).

What loading a folder refuses (pickles, code, mismatched parts, hub names offline) is in
test_safe_loading.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from gplinker.config import ModelConfig
from gplinker.errors import ConfigError
from gplinker.modeling.global_pointer import (
    EfficientGlobalPointer,
    Factored,
    GlobalPointer,
    PointerSpec,
)
from gplinker.modeling.model import GPLinkerModel

try:
    from conftest import SHARED, TINY_ENCODER
except ImportError:  # pragma: no cover
    from tests.conftest import SHARED, TINY_ENCODER

H, VOCAB = 5, 50
HEADS = (
    PointerSpec("argu", H),
    PointerSpec("head_link", 1, rope=False),
    PointerSpec("tail_link", 1, rope=False),
)


def tiny_model(pointer: str = "efficient", seed: int = 0) -> GPLinkerModel:
    torch.manual_seed(seed)
    config = ModelConfig(
        pretrained=False, encoder_overrides=TINY_ENCODER, pointer=pointer, head_size=8
    )
    return GPLinkerModel.from_encoder(config, HEADS, VOCAB).eval()


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, VOCAB, (2, 7), generator=g)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    ids[1, 4:] = 0
    return ids, mask


@pytest.mark.parametrize("pointer", ["efficient", "original"])
def test_output_shapes_argu_bhll_links_b1ll(pointer: str):
    model = tiny_model(pointer)
    cls = EfficientGlobalPointer if pointer == "efficient" else GlobalPointer
    assert isinstance(model.argu, cls) and isinstance(model.head_link, cls)
    with torch.no_grad():
        out = model(*inputs())
    assert list(out) == ["argu", "head_link", "tail_link"]
    assert out["argu"].shape == (2, H, 7, 7)
    assert out["head_link"].shape == out["tail_link"].shape == (2, 1, 7, 7)
    # padding (row 1 beyond 4) and the lower triangle are masked in every output
    for scores in (out["argu"], out["head_link"], out["tail_link"]):
        assert (scores[1, :, 4:, :] <= -1e11).all() and (scores[1, :, :, 4:] <= -1e11).all()
        assert (scores[:, :, 3, 2] <= -1e11).all()
        assert (scores[0, :, 2, 3] > -1e11).all()


def test_rope_only_on_argu_pointer():
    model = tiny_model()
    assert model.argu.use_rope and not model.head_link.use_rope and not model.tail_link.use_rope


def test_factored_parts_dense_equal_plain_output():
    model = tiny_model()
    ids, mask = inputs()
    with torch.no_grad():
        plain = model(ids, mask)
        parts = model(ids, mask, factored=True)
    for name in ("argu", "head_link", "tail_link"):
        f = parts[name]
        assert isinstance(f, Factored)
        assert_close(f.dense(), plain[name])


def test_factored_with_original_pointer_returns_dense():
    model = tiny_model("original")
    with torch.no_grad():
        out = model(*inputs(), factored=True)
    assert isinstance(out["argu"], torch.Tensor) and out["argu"].shape == (2, H, 7, 7)


@pytest.mark.parametrize("pointer", ["efficient", "original"])
def test_save_then_load_gives_identical_scores_in_eval_mode(tmp_path: Path, pointer: str):
    """Guards SPEC §10: RoPE tables that come back uninitialised after loading."""
    model = tiny_model(pointer, seed=3)
    model.save_pretrained(tmp_path / "m")
    loaded = GPLinkerModel.from_pretrained(tmp_path / "m").eval()
    assert loaded.folder_config == model.folder_config
    ids, mask = inputs()
    with torch.no_grad():
        a, b = model(ids, mask), loaded(ids, mask)
    for name in ("argu", "head_link", "tail_link"):
        assert torch.isfinite(b[name]).all()
        assert_close(b[name], a[name], rtol=0, atol=0)
    for (k1, v1), (k2, v2) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k1 == k2 and torch.equal(v1, v2)


def test_pretrained_without_encoder_is_config_error():
    with pytest.raises(ConfigError, match=r"model\.pretrained"):
        GPLinkerModel.from_encoder(ModelConfig(pretrained=True), HEADS, VOCAB)


TOKENIZER_DIR = SHARED / "models" / "bert-base-chinese-tokenizer"


@pytest.mark.skipif(not TOKENIZER_DIR.exists(), reason="../shared tokenizer folder absent")
def test_local_config_folder_random_init_uses_its_config_with_overrides():
    config = ModelConfig(
        encoder=str(TOKENIZER_DIR), pretrained=False, encoder_overrides=TINY_ENCODER
    )
    model = GPLinkerModel.from_encoder(config, HEADS, VOCAB)
    assert model.encoder.config.hidden_size == 32 and model.encoder.config.vocab_size == VOCAB


@pytest.mark.skipif(not TOKENIZER_DIR.exists(), reason="../shared tokenizer folder absent")
def test_local_folder_without_weights_pretrained_is_config_error():
    config = ModelConfig(encoder=str(TOKENIZER_DIR), pretrained=True)
    with pytest.raises(ConfigError, match=r"model\.encoder"):
        GPLinkerModel.from_encoder(config, HEADS, VOCAB)
