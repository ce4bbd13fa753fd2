"""tcmalloc under the heavy commands: a third less peak memory, and faster steps.

glibc's malloc raises its mmap threshold each time a large block is freed (up to 32 MiB), so
after a few steps a training loop's activation tensors come from the heap, and batches of
varying length leave holes between live blocks that it never returns. The masked LM of
duee-tiny held 2.0 GB where its live memory was ~0.6 GB. Under gperftools' tcmalloc the same
minute peaked at 1.23 GB and ran 12 % more steps; jemalloc, `malloc_trim` every step and a
fixed mmap threshold all cut memory less or cost speed (docs/performance.md, "Training
memory"). An allocator is chosen before a process starts, so `gplinker train|predict|
evaluate|serve|export` start themselves again with tcmalloc preloaded when the system has it
(Debian: libtcmalloc-minimal4, which scripts/setup.sh installs where it can).
GPLINKER_ALLOCATOR=system keeps glibc's malloc.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

HEAVY_COMMANDS = frozenset({"train", "predict", "evaluate", "serve", "export"})
LIBRARIES = ("tcmalloc_minimal", "tcmalloc")  # find_library names, the lighter one first
CHOICE = "GPLINKER_ALLOCATOR"  # "tcmalloc" (the default) or "system"


def find_tcmalloc() -> str | None:
    """The soname of an installed tcmalloc (the loader finds it as for any library)."""
    for name in LIBRARIES:
        found = ctypes.util.find_library(name)
        if found:
            return found
    return None


def active() -> str:
    """The allocator this process runs on: "tcmalloc" when one is mapped, else "system"."""
    maps = Path("/proc/self/maps")
    if maps.exists() and "tcmalloc" in maps.read_text(errors="replace"):
        return "tcmalloc"
    return "system"


def preload_env(environ: Mapping[str, str], library: str) -> dict[str, str]:
    """`environ` with `library` first in LD_PRELOAD (what the loader reads at start)."""
    rest = environ.get("LD_PRELOAD", "")
    return {**environ, "LD_PRELOAD": f"{library}:{rest}" if rest else library}


def wants_restart(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """True for a heavy command on Linux that is not on tcmalloc yet and has not opted out."""
    command = next((a for a in argv[1:] if not a.startswith("-")), None)
    return (
        sys.platform.startswith("linux")
        and command in HEAVY_COMMANDS
        and environ.get(CHOICE, "tcmalloc") != "system"
        and "tcmalloc" not in environ.get("LD_PRELOAD", "")  # the restarted process, or a user's
    )


def restart_with_tcmalloc(*, heavy: bool = False) -> None:
    """Replace this process by the same command line with tcmalloc preloaded, where it is
    installed and wanted; otherwise return and run on the system allocator. `heavy` skips
    the look at the command (for scripts that train or predict)."""
    argv = ["gplinker", "train"] if heavy else sys.argv
    if not wants_restart(argv, os.environ):
        return
    library = find_tcmalloc()
    if library is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    command_line = [sys.executable, *sys.orig_argv[1:]]
    os.execve(sys.executable, command_line, preload_env(os.environ, library))
