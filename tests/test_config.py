"""load_config: shipped recipes, overrides, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gplinker.config import Config, config_to_yaml, load_config
from gplinker.errors import ConfigError

try:
    from conftest import ROOT
except ImportError:  # pragma: no cover
    from tests.conftest import ROOT

CONFIGS = ROOT / "configs"

GOOD = """\
data:
  schema_file: data/sample/duee_event_schema.json
  max_length: 64
model:
  pretrained: false
train:
  epochs: 3
  lr: 2e-5
"""


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return str(info.value)


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_shipped_recipes_load(name: str):
    config = load_config(CONFIGS / name)
    assert isinstance(config, Config)
    assert isinstance(config.train.lr, float) and config.train.lr > 0


def test_sample_recipe_values():
    config = load_config(CONFIGS / "sample.yaml")
    assert config.data.max_length == 64 and config.model.pretrained is False
    assert config.model.head_size == 32 and config.train.lr == pytest.approx(1e-3)


def test_yaml_string_2e_5_is_accepted_as_float(tmp_path: Path):
    config = load_config(write(tmp_path, GOOD))
    assert config.train.lr == pytest.approx(2e-5) and isinstance(config.train.lr, float)


def test_overrides_float_and_nested_encoder_override():
    config = load_config(
        CONFIGS / "sample.yaml", ["train.lr=3e-5", "model.encoder_overrides.num_hidden_layers=1"]
    )
    assert config.train.lr == pytest.approx(3e-5) and isinstance(config.train.lr, float)
    assert config.model.encoder_overrides["num_hidden_layers"] == 1
    assert config.model.encoder_overrides["hidden_size"] == 128  # siblings kept


def test_override_creates_missing_section(tmp_path: Path):
    config = load_config(write(tmp_path, "data:\n  schema_file: s.json\n"), ["train.epochs=7"])
    assert config.train.epochs == 7


def test_unknown_yaml_key_names_file_line_key_and_suggestion(tmp_path: Path):
    path = write(tmp_path, GOOD.replace("  epochs: 3", "  epoch: 3"))
    msg = error_of(path)
    assert "recipe.yaml:7" in msg  # `epoch:` is on line 7
    assert "train.epoch" in msg
    assert "did you mean 'epochs'" in msg


def test_unknown_nested_key_in_data_section_names_its_line(tmp_path: Path):
    path = write(tmp_path, GOOD.replace("  max_length: 64", "  max_lenght: 64"))
    msg = error_of(path)
    assert "recipe.yaml:3" in msg and "data.max_lenght" in msg and "'max_length'" in msg


def test_unknown_key_lr_rate_suggests_lr(tmp_path: Path):
    path = write(tmp_path, GOOD.replace("  lr: 2e-5", "  lr_rate: 2e-5"))
    msg = error_of(path)
    assert "recipe.yaml:8" in msg and "train.lr_rate" in msg
    assert "did you mean 'lr'" in msg


def test_wrong_type_names_key_and_line(tmp_path: Path):
    path = write(tmp_path, GOOD.replace("epochs: 3", "epochs: many"))
    msg = error_of(path)
    assert "recipe.yaml:7" in msg and "train.epochs" in msg and "'many'" in msg


def test_unknown_top_level_section_suggests(tmp_path: Path):
    msg = error_of(write(tmp_path, GOOD + "trian:\n  seed: 1\n"))
    assert "recipe.yaml:9" in msg and "trian" in msg and "did you mean 'train'" in msg


def test_unknown_override_key_errors_and_suggests():
    msg = error_of(CONFIGS / "sample.yaml", ("train.epoch=3",))
    assert "train.epoch" in msg and "did you mean 'epochs'" in msg


def test_wrong_type_override_errors():
    msg = error_of(CONFIGS / "sample.yaml", ("train.epochs=many",))
    assert "train.epochs" in msg and "'many'" in msg


def test_wrong_type_override_is_not_blamed_on_the_yaml_line():
    msg = error_of(CONFIGS / "sample.yaml", ("train.epochs=many",))
    assert "sample.yaml:22" not in msg and "command-line override" in msg


@pytest.mark.parametrize("bad", ["train.lr", "=3", "", "data.max_length.x=3"])
def test_malformed_override_errors(bad: str):
    with pytest.raises(ConfigError):
        load_config(CONFIGS / "sample.yaml", [bad])


def test_missing_required_schema_file_errors(tmp_path: Path):
    msg = error_of(write(tmp_path, "data:\n  max_length: 64\n"))
    assert "data.schema_file" in msg


def test_unreadable_or_non_mapping_yaml_errors(tmp_path: Path):
    assert "recipe.yaml" in error_of(write(tmp_path, "- a\n- b\n"))
    assert "bad.yaml" in error_of(write(tmp_path, "data: [\n", "bad.yaml"))
    assert "missing.yaml" in error_of(tmp_path / "missing.yaml")


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_config_to_yaml_loads_back_equal(tmp_path: Path, name: str):
    config = load_config(CONFIGS / name, ["train.lr=3e-5"])
    again = load_config(write(tmp_path, config_to_yaml(config)))
    assert again == config
