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


# ---- ${data_root}: one key says where the data sets are ----------------------------------------
def _paths(config: Config) -> list[str]:
    d, m = config.data, config.model
    found = [d.train, d.dev, d.schema_file, *config.pretrain.texts, m.encoder, m.tokenizer]
    return [str(p) for p in found if p is not None]


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_recipe_path_moves_with_data_root(name: str):
    """After `get_data.sh DATASET ROOT/data/DATASET`, data_root=ROOT is the only override."""
    raw = (CONFIGS / name).read_text(encoding="utf-8")
    assert "../shared" not in raw.replace("data_root: ../shared", ""), "a path not under data_root"
    moved = load_config(CONFIGS / name, ["data_root=/elsewhere"])
    if "${data_root}" in raw:
        local = [p for p in _paths(moved) if not p.startswith(("hfl/", "bert-base"))]  # hub names
        assert local and all(p.startswith("/elsewhere/") for p in local), local


def test_data_root_is_replaced_in_strings_and_lists(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "data_root: /d\ntask: entity\ndata:\n  train: ${data_root}/a/train.json\n"
        'pretrain:\n  texts: ["${data_root}/t1.json", other.json]\n'
    )
    config = load_config(path)
    assert str(config.data.train) == "/d/a/train.json"
    assert [str(p) for p in config.pretrain.texts] == ["/d/t1.json", "other.json"]
    assert str(load_config(path, ["data_root=rel"]).data.train) == "rel/a/train.json"


def test_data_root_unset_or_another_variable_is_an_error_naming_the_key(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("task: entity\ndata:\n  train: ${data_root}/train.json\n")
    with pytest.raises(ConfigError, match=r"data\.train: uses \$\{data_root\}, which is not set"):
        load_config(path)
    path.write_text("task: entity\ndata_root: /d\ndata:\n  train: ${HOME}/train.json\n")
    with pytest.raises(ConfigError, match=r"data\.train: unknown \$\{HOME\}"):
        load_config(path)


@pytest.mark.parametrize("task", ["entity", "relation", "event"])
def test_the_copy_me_templates_load_as_their_task(task: str):
    config = load_config(CONFIGS / "templates" / f"{task}.yaml")
    assert config.task == task and str(config.data.train) == "data/mine/train.json"
