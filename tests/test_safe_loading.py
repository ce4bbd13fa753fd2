"""Safe loading (issue 4): what loading a model folder may and may not do.

1. Weights are safetensors; no pickle in a folder is ever unpickled.
2. No code from a folder is imported (`trust_remote_code` off, and nothing asks whether).
3. A folder whose parts do not match (schema / config.json / weights) is a clear error.
4. A hub name with no network is one `error:` line saying to give a local folder.

The hostile payloads create a marker file when they run; each test checks that the marker
never appears, and `test_payloads_really_run_code` checks that they would create it if
they were unpickled or imported, so a missing marker means "not run", not "payload broken".
"""

from __future__ import annotations

import builtins
import copy
import importlib.util
import json
import pickle
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import transformers.dynamic_module_utils
from conftest import event_heads
from safetensors.torch import load_file, save_file
from transformers import BertConfig
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.config import ModelConfig
from gplinker.data.tokenizer import load_tokenizer
from gplinker.errors import ConfigError, GPLinkerError
from gplinker.modeling.global_pointer import PointerSpec
from gplinker.modeling.model import GPLinkerModel
from gplinker.predict import GPLinker
from gplinker.schema import Schema

try:
    from conftest import SAMPLE, TINY_ENCODER
except ImportError:  # pragma: no cover
    from tests.conftest import SAMPLE, TINY_ENCODER

runner = CliRunner()
DEV = SAMPLE / "dev.json"
HUB_NAME = "hfl/chinese-roberta-wwm-ext"
FOLDER_FILES = [
    "config.json",
    "model.safetensors",
    "schema.json",
    "tokenizer.json",
    "tokenizer_config.json",
]
HEADS5 = [PointerSpec("argu", 5)]  # a model of one head is enough to load or refuse


# --- fixtures and payloads ----------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer, schema: Schema) -> Path:
    """A valid model folder, written once by GPLinker.save_pretrained."""
    torch.manual_seed(0)
    config = ModelConfig(pretrained=False, encoder_overrides=TINY_ENCODER, head_size=8)
    model = GPLinkerModel.from_encoder(config, event_heads(schema), len(tiny_tokenizer))
    directory = tmp_path_factory.mktemp("saved") / "model"
    tokenizer = copy.deepcopy(tiny_tokenizer)  # saving sets model_max_length; keep the shared one
    GPLinker(model, tokenizer, schema, max_length=64).save_pretrained(directory)
    return directory


@pytest.fixture
def folder(saved: Path, tmp_path: Path) -> Path:
    """A fresh copy of the valid folder, for a test to spoil."""
    return Path(shutil.copytree(saved, tmp_path / "model"))


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The file a payload creates when it runs. Should a guard break, transformers' copy of
    the folder's code goes under tmp_path rather than ~/.cache."""
    monkeypatch.setattr(
        transformers.dynamic_module_utils, "HF_MODULES_CACHE", str(tmp_path / "hf_modules")
    )
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a payload ran"


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Answers "y" to any question on stdin (transformers asks "run the custom code?" when
    trust_remote_code is left unset) and records it; safe loading never asks."""
    prompts: list[str] = []

    def answer_yes(prompt: str = "") -> str:
        prompts.append(prompt)
        return "y"

    monkeypatch.setattr(builtins, "input", answer_yes)
    return prompts


class _CreatesFile:
    """Unpickling this calls open(path, "w"): the file appears. No shell, no network."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def write_pickle(path: Path, marker: Path, kind: str) -> None:
    """kind "pickle": a bare pickle stream; "torch": torch.save's zip format (what
    pytorch_model.bin / *.pt / training_args.bin are)."""
    if kind == "pickle":
        path.write_bytes(pickle.dumps({"weight": _CreatesFile(marker)}))
    else:
        torch.save({"weight": _CreatesFile(marker)}, path)


def write_code(path: Path, marker: Path, body: str = "") -> None:
    """A Python file that creates the marker when imported."""
    path.write_text(f"open({str(marker)!r}, 'w').close()\n{body}", encoding="utf-8")


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def one_line(e: BaseException) -> str:
    """The CLI prints str(e) as its one `error:` line: it must have no line break."""
    message = str(e)
    assert "\n" not in message, message
    return message


def one_error_line(result) -> str:
    """exit code 2, no traceback, stderr = log lines + exactly one `error:` line."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    log_line = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING) ")
    assert all(line in errors or log_line.match(line) for line in lines), result.stderr
    return errors[0]


def test_payloads_really_run_code(tmp_path: Path) -> None:
    """The control: unpickled or imported, each payload does create its marker."""
    for kind in ("pickle", "torch"):
        mark = tmp_path / f"ran-{kind}"
        write_pickle(tmp_path / f"payload-{kind}.bin", mark, kind)
        if kind == "pickle":
            pickle.loads((tmp_path / "payload-pickle.bin").read_bytes())
        else:
            torch.load(tmp_path / "payload-torch.bin", weights_only=False)
        assert mark.exists()
    mark = tmp_path / "ran-code"
    write_code(tmp_path / "evil_module.py", mark)
    spec = importlib.util.spec_from_file_location("evil_module", tmp_path / "evil_module.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert mark.exists()


# --- 1. weights are safetensors; no pickle is read -----------------------------------------


def test_saved_folder_is_json_safetensors_and_tokenizer_files_only(
    saved: Path, tmp_path: Path
) -> None:
    assert sorted(p.name for p in saved.iterdir()) == FOLDER_FILES
    GPLinkerModel.from_pretrained(saved).save_pretrained(tmp_path / "m")  # the model alone
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == FOLDER_FILES[:2]
    config = json.loads((tmp_path / "m" / "config.json").read_text(encoding="utf-8"))
    assert config["format"] == "gplinker-ee/1" and config["task"] == "event"
    assert [(h["name"], h["num_labels"]) for h in config["heads"]] == [
        ("argu", 21),
        ("head_link", 1),
        ("tail_link", 1),
    ]
    head = (saved / "model.safetensors").read_bytes()[:8]
    assert not head.startswith((b"PK", b"\x80"))  # neither torch's zip nor a bare pickle
    assert load_file(str(saved / "model.safetensors"))  # a real safetensors file


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("pytorch_model.bin", "torch"),
        ("pytorch_model.bin", "pickle"),
        ("model.bin", "torch"),
        ("model.pt", "torch"),
        ("model.ckpt", "pickle"),
        ("training_args.bin", "torch"),
        ("optimizer.pt", "torch"),
    ],
)
def test_a_pickle_beside_model_safetensors_is_never_read(
    folder: Path, marker: Path, name: str, kind: str
) -> None:
    write_pickle(folder / name, marker, kind)
    loaded = GPLinker.from_pretrained(folder, device="cpu")
    weights = load_file(str(folder / "model.safetensors"))
    state = loaded.model.state_dict()
    assert state.keys() == weights.keys()
    assert all(torch.equal(state[k], weights[k]) for k in weights)
    assert isinstance(loaded.extract(["雀巢裁员4000人"])[0], list)


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.bin", "model.pt"])
def test_a_pickle_as_the_only_weights_is_refused(folder: Path, marker: Path, name: str) -> None:
    (folder / "model.safetensors").unlink()
    write_pickle(folder / name, marker, "torch")
    with pytest.raises(GPLinkerError, match=r"model\.safetensors: cannot read weights") as info:
        GPLinker.from_pretrained(folder, device="cpu")
    one_line(info.value)


@pytest.mark.parametrize("content", ["pickle", "torch", "random", "empty", "truncated"])
def test_a_model_safetensors_that_is_not_one_is_a_clear_error(
    folder: Path, marker: Path, content: str
) -> None:
    path = folder / "model.safetensors"
    if content in ("pickle", "torch"):
        write_pickle(path, marker, content)
    elif content == "random":
        path.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    elif content == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(GPLinkerError, match=r"model\.safetensors: cannot read weights") as info:
        GPLinker.from_pretrained(folder, device="cpu")
    one_line(info.value)


def test_predict_cli_on_a_folder_with_only_pickled_weights_is_one_error_line(
    folder: Path, marker: Path
) -> None:
    (folder / "model.safetensors").unlink()
    write_pickle(folder / "pytorch_model.bin", marker, "torch")
    args = ["predict", "--model", str(folder), "--input", str(DEV), "--output", "-"]
    line = one_error_line(runner.invoke(app, args))
    assert "model.safetensors" in line and "cannot read weights" in line


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("kind", ["torch", "pickle"])
def test_a_pretrained_encoder_folder_with_pickled_weights_is_never_unpickled(
    tmp_path: Path, marker: Path, kind: str
) -> None:
    """Training from a local encoder folder: a .bin goes through torch's weights-only
    unpickler, which refuses the payload; the refusal is a ConfigError, not a traceback."""
    encoder = tmp_path / "encoder"
    BertConfig(**TINY_ENCODER, vocab_size=50).save_pretrained(encoder)
    write_pickle(encoder / "pytorch_model.bin", marker, kind)
    with pytest.raises(ConfigError, match=r"model\.encoder: .*model\.safetensors") as info:
        GPLinkerModel.from_encoder(ModelConfig(encoder=str(encoder), pretrained=True), HEADS5, 50)
    one_line(info.value)


# --- 2. no code from the folder is imported -------------------------------------------------


def _tokenizer_auto_map(folder: Path, marker: Path, tokenizer_class: str | None) -> None:
    write_code(
        folder / "tokenization_evil.py",
        marker,
        "from transformers import PreTrainedTokenizerFast\n\n"
        "class EvilTokenizer(PreTrainedTokenizerFast):\n    pass\n",
    )

    def change(config: dict) -> None:
        config["auto_map"] = {"AutoTokenizer": [None, "tokenization_evil.EvilTokenizer"]}
        if tokenizer_class is not None:
            config["tokenizer_class"] = tokenizer_class

    edit_json(folder / "tokenizer_config.json", change)


def test_a_tokenizer_auto_map_beside_a_built_in_class_is_ignored(
    folder: Path, marker: Path, asked: list[str]
) -> None:
    _tokenizer_auto_map(folder, marker, tokenizer_class=None)
    loaded = GPLinker.from_pretrained(folder, device="cpu")
    assert type(loaded.tokenizer).__module__.startswith("transformers.")
    assert loaded.tokenizer("雀巢裁员")["input_ids"][0] == 2  # [CLS]: the folder's vocabulary
    assert asked == []


def test_a_tokenizer_only_in_the_folders_code_is_refused_without_asking(
    folder: Path, marker: Path, asked: list[str]
) -> None:
    """Left unset, trust_remote_code makes transformers ask on stdin, and "y" runs the code."""
    _tokenizer_auto_map(folder, marker, tokenizer_class="EvilTokenizer")
    with pytest.raises(GPLinkerError, match=r"cannot load tokenizer.*custom code") as info:
        GPLinker.from_pretrained(folder, device="cpu")
    one_line(info.value)
    assert asked == []


def test_predict_cli_reading_stdin_never_takes_an_answer_from_it(
    folder: Path, marker: Path
) -> None:
    """End to end: `--input -` with a "y" line first; it must not answer a prompt."""
    _tokenizer_auto_map(folder, marker, tokenizer_class="EvilTokenizer")
    stdin = 'y\n{"id": "a", "text": "雀巢裁员4000人"}\n'
    args = ["predict", "--model", str(folder), "--input", "-", "--output", "-"]
    line = one_error_line(runner.invoke(app, args, input=stdin))
    assert "cannot load tokenizer" in line and "custom code" in line


def _config_auto_map(folder: Path, marker: Path, where: str) -> None:
    write_code(folder / "configuration_evil.py", marker)
    write_code(folder / "modeling_evil.py", marker)
    auto_map = {"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.M"}

    def change(config: dict) -> None:
        (config if where == "top" else config["encoder"])["auto_map"] = auto_map

    edit_json(folder / "config.json", change)


def test_an_auto_map_in_config_json_is_refused_without_asking(
    folder: Path, marker: Path, asked: list[str]
) -> None:
    _config_auto_map(folder, marker, "top")
    with pytest.raises(GPLinkerError, match=r"not a gplinker model folder.*auto_map") as info:
        GPLinker.from_pretrained(folder, device="cpu")
    one_line(info.value)
    assert type(load_tokenizer(folder)).__module__.startswith("transformers.")  # alone too
    assert asked == []


def test_an_auto_map_in_the_encoder_config_is_ignored(
    folder: Path, marker: Path, asked: list[str]
) -> None:
    _config_auto_map(folder, marker, "encoder")
    loaded = GPLinker.from_pretrained(folder, device="cpu")
    assert type(loaded.model.encoder).__name__ == "BertModel"
    assert type(loaded.model.encoder).__module__.startswith("transformers.")
    assert asked == []


@pytest.mark.parametrize("pretrained", [False, True])
def test_an_encoder_folder_with_custom_code_is_refused_without_asking(
    tmp_path: Path, marker: Path, asked: list[str], pretrained: bool
) -> None:
    """Training from a local encoder folder whose model_type only its own code knows."""
    encoder = tmp_path / "encoder"
    BertConfig(**TINY_ENCODER, vocab_size=50).save_pretrained(encoder)
    write_code(encoder / "configuration_evil.py", marker)
    write_code(encoder / "modeling_evil.py", marker)

    def change(config: dict) -> None:
        config["model_type"] = "evil"
        config["auto_map"] = {
            "AutoConfig": "configuration_evil.EvilConfig",
            "AutoModel": "modeling_evil.EvilModel",
        }

    edit_json(encoder / "config.json", change)
    config = ModelConfig(encoder=str(encoder), pretrained=pretrained)
    with pytest.raises(ConfigError, match=r"model\.encoder: .*custom code") as info:
        GPLinkerModel.from_encoder(config, HEADS5, 50)
    one_line(info.value)
    assert asked == []


# --- 3. parts that do not match are a clear error -------------------------------------------


@pytest.mark.parametrize("keep", [1, -1])
def test_a_schema_with_another_number_of_labels_names_schema_json(folder: Path, keep: int) -> None:
    def change(data: dict) -> None:
        roles = data["roles"]
        if keep == 1:  # fewer event types
            data["roles"] = dict(list(roles.items())[:1])
        else:  # one more role
            first = next(iter(roles))
            roles[first] = [*roles[first], "多出的角色"]

    edit_json(folder / "schema.json", change)
    with pytest.raises(GPLinkerError, match=r"heads.*schema\.json does not belong") as info:
        GPLinker.from_pretrained(folder, device="cpu")
    one_line(info.value)


@pytest.mark.parametrize(
    ("change", "wrong"),
    [
        ({"heads": 20}, "argu.bias"),  # heads vs weights
        ({"head_size": 16}, "argu.dense"),
        ({"pointer": "original"}, "argu."),
        ({"encoder": {"hidden_size": 64, "num_attention_heads": 2}}, "encoder."),
        ({"encoder": {"num_hidden_layers": 3}}, "encoder.encoder.layer.2"),
        ({"encoder": {"vocab_size": 77}}, "encoder.embeddings.word_embeddings"),
    ],
)
def test_config_json_that_does_not_match_the_weights_names_both_files(
    folder: Path, change: dict, wrong: str
) -> None:
    def apply(config: dict) -> None:
        if "heads" in change:  # the argument head's number of labels
            config["heads"][0]["num_labels"] = change["heads"]
        rest = {k: v for k, v in change.items() if k not in ("encoder", "heads")}
        config["encoder"].update(change.get("encoder", {}))
        config.update(rest)

    edit_json(folder / "config.json", apply)
    with pytest.raises(GPLinkerError, match=r"model\.safetensors does not match config\.json"):
        GPLinker.from_pretrained(folder, device="cpu")
    with pytest.raises(GPLinkerError) as info:
        GPLinkerModel.from_pretrained(folder)
    assert wrong in one_line(info.value)


def test_weights_with_a_foreign_extra_tensor_are_a_clear_error(folder: Path) -> None:
    path = folder / "model.safetensors"
    state = load_file(str(path))
    state["stray.weight"] = torch.zeros(2)
    save_file(state, str(path))
    with pytest.raises(GPLinkerError, match=r"does not match config\.json.*stray\.weight"):
        GPLinkerModel.from_pretrained(folder)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_type": None}, "encoder.model_type None is not"),
        ({"model_type": "evil"}, "encoder.model_type 'evil' is not"),
        ({"hidden_size": 33}, "do not make an encoder.*hidden size"),
        ({"num_hidden_layers": "two"}, "do not make an encoder.*num_hidden_layers"),
    ],
)
def test_an_encoder_config_that_makes_no_encoder_is_a_clear_error(
    folder: Path, change: dict, message: str
) -> None:
    def apply(config: dict) -> None:
        config["encoder"].update(change)
        if change.get("model_type", "") is None:
            del config["encoder"]["model_type"]

    edit_json(folder / "config.json", apply)
    with pytest.raises(GPLinkerError, match=rf"config\.json: .*{message}") as info:
        GPLinkerModel.from_pretrained(folder)
    one_line(info.value)


@pytest.mark.parametrize(
    "content", [None, b"\x80\x81 not utf-8", b"{not json", b'{"num_labels": 0, "encoder": {}}']
)
def test_a_missing_or_broken_config_json_is_not_a_gplinker_model_folder(
    folder: Path, content: bytes | None
) -> None:
    if content is None:
        (folder / "config.json").unlink()
    else:
        (folder / "config.json").write_bytes(content)
    with pytest.raises(GPLinkerError, match="not a gplinker model folder") as info:
        GPLinker.from_pretrained(folder, device="cpu")
    one_line(info.value)


def test_missing_weights_are_a_clear_error(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    with pytest.raises(GPLinkerError, match=r"model\.safetensors: cannot read weights"):
        GPLinkerModel.from_pretrained(folder)


# --- 4. a hub name with no network: one line, give a local folder ---------------------------


def test_predict_cli_with_a_hub_name_says_give_a_local_folder() -> None:
    args = ["predict", "--model", "some-org/some-model", "--input", str(DEV), "--output", "-"]
    line = one_error_line(runner.invoke(app, args))
    assert "some-org/some-model" in line and "local folder" in line


def _hub_recipe(tmp_path: Path, tokenizer: str | None) -> Path:
    recipe = tmp_path / "hub.yaml"
    lines = [
        "data:",
        f"  train: {SAMPLE / 'train.json'}",
        f"  dev: {SAMPLE / 'dev.json'}",
        f"  schema_file: {SAMPLE / 'duee_event_schema.json'}",
        "model:",
        f"  encoder: {HUB_NAME}",
        "  pretrained: true",
        f"output_dir: {tmp_path / 'run'}",
    ]
    if tokenizer:
        lines.insert(lines.index("model:") + 1, f"  tokenizer: {tokenizer}")
    recipe.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return recipe


@pytest.mark.parametrize("tokenizer", [None, "wordpiece"])  # tokenizer from the hub, or not
def test_train_cli_with_a_hub_encoder_says_give_a_local_folder(
    tmp_path: Path, tokenizer: str | None
) -> None:
    result = runner.invoke(app, ["train", "--config", str(_hub_recipe(tmp_path, tokenizer))])
    line = one_error_line(result)
    assert HUB_NAME in line and "not on this machine" in line and "local folder" in line


def test_a_hub_encoder_offline_is_a_config_error_naming_the_key() -> None:
    config = ModelConfig(encoder=HUB_NAME, pretrained=True)
    with pytest.raises(ConfigError) as info:
        GPLinkerModel.from_encoder(config, HEADS5, 50)
    message = one_line(info.value)
    assert message.startswith("model.encoder: ") and HUB_NAME in message
    assert "not on this machine" in message and "local folder" in message
