"""gplinker.progress: a bar written into a log redraws at most every 30 s."""

from __future__ import annotations

import io

from gplinker.progress import LOG_INTERVAL_S, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_the_bar_redraws_at_most_every_30_seconds() -> None:
    log = io.StringIO()
    bar = progress_bar(range(5000), file=log, desc="lines")
    assert bar.mininterval == LOG_INTERVAL_S
    for _ in bar:
        pass
    assert log.getvalue().count("\r") <= 3  # the first draw and the last, not one per step
    assert "5000/5000" in log.getvalue()


def test_on_a_terminal_the_bar_is_tqdms_own() -> None:
    bar = progress_bar(range(3), file=Terminal())
    assert bar.mininterval == 0.1
    bar.close()


def test_a_postfix_per_step_does_not_redraw_per_step() -> None:
    """The masked-LM and epoch bars set the loss at every step."""
    log = io.StringIO()
    bar = progress_bar(desc="masked LM", unit=" steps", file=log)
    for step in range(2000):
        bar.update()
        bar.set_postfix(loss=f"{step:.3f}")
    bar.close()
    assert log.getvalue().count("\r") <= 3, log.getvalue().count("\r")
