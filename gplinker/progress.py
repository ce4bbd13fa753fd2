"""Progress bars that suit where they are written: redrawn live on a terminal; into a log
file (stderr not a terminal) at most once every 30 s, instead of the ten redraws a second
that fill a log with thousands of `\r`-joined lines an hour."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

LOG_INTERVAL_S = 30.0


class _Bar(tqdm):
    def set_postfix(self, ordered_dict: Any = None, refresh: bool = False, **kwargs: Any) -> None:
        """As tqdm's, but the new postfix waits for the next redraw: tqdm's default redraws
        at once, at every step, whatever mininterval says."""
        super().set_postfix(ordered_dict, refresh, **kwargs)


def progress_bar(iterable: Iterable | None = None, **kwargs: Any) -> tqdm:
    """tqdm(iterable, **kwargs), redrawn at most every LOG_INTERVAL_S off a terminal."""
    out = kwargs.get("file") or sys.stderr
    if not (hasattr(out, "isatty") and out.isatty()):
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
        kwargs.setdefault("maxinterval", LOG_INTERVAL_S * 2)
    return _Bar(iterable, **kwargs)
