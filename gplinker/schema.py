"""Event schema -> label set (SPEC §2), and the records every room shares."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gplinker.errors import InputError

TRIGGER = "触发词"


@dataclass(frozen=True, slots=True, order=True)
class Argument:
    """One element of an event; the trigger is the Argument whose role is TRIGGER."""

    role: str
    text: str
    start: int  # char offset in the full text

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True, slots=True)
class Event:
    event_type: str
    arguments: frozenset[Argument]

    @property
    def trigger(self) -> Argument | None:
        return next((a for a in sorted(self.arguments) if a.role == TRIGGER), None)

    def to_json(self) -> dict:
        """DuEE submission format, plus character offsets."""
        trig = self.trigger
        out: dict = {"event_type": self.event_type}
        if trig is not None:
            out["trigger"] = trig.text
            out["trigger_start_index"] = trig.start
        out["arguments"] = [
            {"role": a.role, "argument": a.text, "argument_start_index": a.start}
            for a in sorted(self.arguments, key=lambda a: (a.start, a.role, a.text))
            if a.role != TRIGGER
        ]
        return out


Element = tuple[str, str, int | None]  # (role, text, char start; None where a file gives none)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event as the metrics see it: its elements (the trigger among them, role TRIGGER)
    sorted, a repeated one kept. The reference scores an event listing an argument twice
    as a miss, so a file's event is not collapsed into an `Event` (a set) before scoring."""

    event_type: str
    elements: tuple[Element, ...]

    @classmethod
    def of(cls, event_type: str, elements: Iterable[Element]) -> EventRecord:
        return cls(event_type, tuple(sorted(elements, key=_element_order)))

    @classmethod
    def from_event(cls, ev: Event) -> EventRecord:
        return cls.of(ev.event_type, ((a.role, a.text, a.start) for a in ev.arguments))


def _element_order(e: Element) -> tuple[str, str, int]:
    return e[0], e[1], -1 if e[2] is None else e[2]


@dataclass(frozen=True, slots=True)
class Example:
    id: str
    text: str
    events: tuple[Event, ...] = ()
    where: str = ""  # "train.json:17", for messages


class Schema:
    """Event types with their roles; `labels` puts (type, TRIGGER) first for every type."""

    def __init__(self, roles: dict[str, Sequence[str]]):
        self.roles: dict[str, tuple[str, ...]] = {t: tuple(r) for t, r in roles.items()}
        self.labels: tuple[tuple[str, str], ...] = tuple(
            (t, role) for t, rs in self.roles.items() for role in (TRIGGER, *rs)
        )
        self._ids = {label: i for i, label in enumerate(self.labels)}

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self.roles)

    def __len__(self) -> int:
        return len(self.labels)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.roles == other.roles

    def __hash__(self) -> int:
        return hash(tuple(self.roles.items()))

    def label_id(self, event_type: str, role: str) -> int:
        return self._ids[(event_type, role)]

    def has(self, event_type: str, role: str) -> bool:
        return (event_type, role) in self._ids

    @classmethod
    def from_file(cls, path: str | Path) -> Schema:
        """Read a DuEE schema (one JSON object a line with event_type and role_list) or a
        schema.json written by `to_file`."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read schema: {e}", path) from e
        stripped = text.lstrip()
        if stripped.startswith("{") and '"roles"' in stripped[:200]:
            try:
                return cls(json.loads(text)["roles"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise InputError(f"not a gplinker schema.json: {e}", path) from e
        return cls.from_lines(text.splitlines(), path)

    @classmethod
    def from_lines(cls, lines: Iterable[str], path: str | Path = "<schema>") -> Schema:
        roles: dict[str, list[str]] = {}
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                event_type = row["event_type"]
                names = [r["role"] for r in row["role_list"]]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise InputError(
                    f"expected {{'event_type': ..., 'role_list': [{{'role': ...}}]}}: {e}", path, n
                ) from e
            if event_type in roles:
                raise InputError(f"event type {event_type!r} is listed twice", path, n)
            roles[event_type] = list(dict.fromkeys(names))
        if not roles:
            raise InputError("the schema lists no event types", path)
        return cls(roles)

    def to_json(self) -> dict:
        return {"roles": {t: list(r) for t, r in self.roles.items()}}

    def to_file(self, path: str | Path) -> None:
        Path(path).write_text(
            json.dumps(self.to_json(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
