"""Example -> sparse (h, t) label lists (SPEC §2). Never a dense [H, L, L] tensor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

from gplinker.data.alignment import Encoded, char_span_to_tokens, token_boundaries
from gplinker.schema import Example, Schema

# a window's targets for every pointer head: head name -> sorted (label, h, t) cells
HeadLabels = dict[str, tuple[tuple[int, int, int], ...]]


@dataclass(frozen=True, slots=True)
class SparseLabels:
    """Token-level targets of one text; indices refer to Encoded positions ([CLS] = 0)."""

    argu: tuple[tuple[int, int, int], ...]  # (label, h, t)
    head_link: tuple[tuple[int, int], ...]  # (min(h1, h2), max(h1, h2))
    tail_link: tuple[tuple[int, int], ...]  # (min(t1, t2), max(t1, t2))

    def by_head(self) -> HeadLabels:
        """The event task's three heads: argu, head_link, tail_link (one label each link)."""
        return {
            "argu": self.argu,
            "head_link": tuple((0, i, j) for i, j in self.head_link),
            "tail_link": tuple((0, i, j) for i, j in self.tail_link),
        }


@dataclass(slots=True)
class DropReport:
    """Gold spans that cannot be labels, counted instead of dropped silently (SPEC §10)."""

    spans: int = 0
    off_boundary: int = 0  # start or end falls inside a token, or on a dropped space
    truncated: int = 0  # lies (partly) beyond max_length
    not_found: int = 0  # a string the text does not hold (files without offsets: DuIE)
    examples: list[str] = field(default_factory=list)  # where, for the first few

    def add(self, other: DropReport) -> None:
        self.spans += other.spans
        self.off_boundary += other.off_boundary
        self.truncated += other.truncated
        self.not_found += other.not_found
        self.examples.extend(other.examples[: max(0, 5 - len(self.examples))])

    @property
    def dropped(self) -> int:
        return self.off_boundary + self.truncated + self.not_found


def build_labels(ex: Example, enc: Encoded, schema: Schema) -> tuple[SparseLabels, DropReport]:
    """Labels of a text seen through one window (cut at max_length)."""
    labels, report = build_window_labels(ex, [enc], schema)
    return labels[0], report


def build_window_labels(
    ex: Example, windows: Sequence[Encoded], schema: Schema
) -> tuple[list[SparseLabels], DropReport]:
    """Labels for each window of one text. A span is labelled in every window that sees it
    whole; links join the spans of one event that share a window. The report counts each
    gold span once: truncated if no window sees it whole, off-boundary if one does but its
    ends fall inside tokens."""
    report = DropReport()
    per_window = [(enc, token_boundaries(enc), set(), set(), set()) for enc in windows]
    for event in ex.events:
        spans: list[list[tuple[int, int]]] = [[] for _ in windows]
        for a in sorted(event.arguments):
            report.spans += 1
            seen = labelled = False
            for w, (enc, boundaries, argu, _, _) in enumerate(per_window):
                if not enc.sees(a.start, a.end):
                    continue
                seen = True
                span = char_span_to_tokens(enc, a.start, a.end, boundaries)
                if span is not None:
                    labelled = True
                    argu.add((schema.label_id(event.event_type, a.role), *span))
                    spans[w].append(span)
            if not labelled:
                if seen:
                    report.off_boundary += 1
                else:
                    report.truncated += 1
                if len(report.examples) < 5:
                    report.examples.append(f"{ex.where} {a.role}={a.text!r}@{a.start}")
        for (_, _, _, heads, tails), window_spans in zip(per_window, spans, strict=True):
            for (h1, t1), (h2, t2) in combinations(window_spans, 2):
                heads.add((min(h1, h2), max(h1, h2)))
                tails.add((min(t1, t2), max(t1, t2)))
    labels = [
        SparseLabels(tuple(sorted(argu)), tuple(sorted(heads)), tuple(sorted(tails)))
        for _, _, argu, heads, tails in per_window
    ]
    return labels, report
