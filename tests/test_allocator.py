"""The heavy commands restart themselves on tcmalloc (gplinker/allocator.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gplinker import allocator

LINUX = sys.platform.startswith("linux")


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["gplinker", "train", "--config", "x.yaml"], {}, True),
        (["gplinker", "--quiet", "predict", "--model", "m"], {}, True),
        (["gplinker", "serve"], {"LD_PRELOAD": "libfoo.so"}, True),
        (["gplinker", "view", "p.jsonl"], {}, False),  # light: not worth a second start
        (["gplinker", "--help"], {}, False),
        (["gplinker", "train"], {"GPLINKER_ALLOCATOR": "system"}, False),
        (["gplinker", "train"], {"LD_PRELOAD": "libtcmalloc_minimal.so.4"}, False),  # restarted
    ],
)
def test_which_command_lines_restart(argv: list[str], environ: dict, expected: bool) -> None:
    assert allocator.wants_restart(argv, environ) is (expected and LINUX)


def test_preload_goes_first_and_keeps_the_users_libraries() -> None:
    assert allocator.preload_env({"A": "1"}, "libt.so.4") == {"A": "1", "LD_PRELOAD": "libt.so.4"}
    env = allocator.preload_env({"LD_PRELOAD": "libfoo.so"}, "libt.so.4")
    assert env["LD_PRELOAD"] == "libt.so.4:libfoo.so"


# what a console script does, with the allocator printed before and after the restart
PROGRAM = """
import sys
from gplinker import allocator, cli
print("allocator", allocator.active(), flush=True)
sys.argv = ["gplinker", "export", "--help"]
cli.main()
"""


def _allocators_seen(**environ: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "GPLINKER_ALLOCATOR")}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], env={**env, **environ}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "--onnx" in done.stdout  # the command itself ran after the restart
    return [line.split()[1] for line in done.stdout.splitlines() if line.startswith("allocator ")]


@pytest.mark.skipif(not LINUX or allocator.find_tcmalloc() is None, reason="no tcmalloc here")
def test_a_heavy_command_runs_on_tcmalloc() -> None:
    assert _allocators_seen() == ["system", "tcmalloc"]


@pytest.mark.skipif(not LINUX, reason="the restart is Linux only")
def test_system_malloc_on_request() -> None:
    assert _allocators_seen(GPLINKER_ALLOCATOR="system") == ["system"]
