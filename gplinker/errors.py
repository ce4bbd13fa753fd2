"""Exceptions a user can act on. Library code raises them; only the CLI catches them."""

from __future__ import annotations

from pathlib import Path


class GPLinkerError(Exception):
    """Base class: a problem with the user's input, config or files, not a bug."""


class InputError(GPLinkerError):
    """A bad input file or line; the message starts with `path:line:`.

    `kind` names the sort of problem ("invalid JSON", "span mismatch", ...) so that a report
    over a whole file can count them; None when it is not a per-line problem.
    """

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        line: int | None = None,
        *,
        kind: str | None = None,
    ):
        self.path, self.line, self.reason, self.kind = path, line, message, kind
        where = "" if path is None else f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


class ConfigError(GPLinkerError):
    """A bad config value; the message names the key (and the YAML line when known)."""

    def __init__(self, message: str, key: str | None = None, where: str | None = None):
        self.key, self.reason = key, message
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{key}: {message}" if key else f"{prefix}{message}")
