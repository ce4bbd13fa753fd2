"""Fast-tokenizer offsets and char <-> token alignment.

Offsets are kept as absolute character positions in the full text; special tokens carry
(0, 0), so "start == end" marks a position that can never be a span head or tail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerFast

SPECIAL = (0, 0)


@dataclass(frozen=True, slots=True)
class Encoded:
    """One tokenized text: [CLS] tokens [SEP], with each token's char span."""

    input_ids: list[int]
    offsets: list[tuple[int, int]]
    n_cut: int = 0  # tokens lost to max_length

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def covered_chars(self) -> int:
        """Chars [0, covered_chars) lie inside the kept tokens."""
        return max((e for s, e in self.offsets if e > s), default=0)


def encode_batch(
    texts: Sequence[str], tokenizer: PreTrainedTokenizerFast, max_length: int
) -> list[Encoded]:
    """Tokenize many texts in one call of the Rust tokenizer; cut each to max_length."""
    if not texts:
        return []
    enc = tokenizer(
        list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False
    )
    keep = max_length - 2
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    out = []
    for ids, offs in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        out.append(
            Encoded(
                input_ids=[cls_id, *ids[:keep], sep_id],
                offsets=[SPECIAL, *(tuple(o) for o in offs[:keep]), SPECIAL],
                n_cut=max(0, len(ids) - keep),
            )
        )
    return out


def encode(text: str, tokenizer: PreTrainedTokenizerFast, max_length: int) -> Encoded:
    return encode_batch([text], tokenizer, max_length)[0]


Boundaries = tuple[dict[int, int], dict[int, int]]


def token_boundaries(enc: Encoded) -> Boundaries:
    """(char start -> token, char end -> token) over real tokens; build once per text."""
    real = [(i, s, e) for i, (s, e) in enumerate(enc.offsets) if e > s]
    return {s: i for i, s, _ in real}, {e: i for i, _, e in real}


def char_span_to_tokens(
    enc: Encoded, start: int, end: int, boundaries: Boundaries | None = None
) -> tuple[int, int] | None:
    """Token (head, tail) whose chars are exactly [start, end), or None if the span
    does not start and end on token boundaries (or was cut)."""
    starts, ends = boundaries or token_boundaries(enc)
    h, t = starts.get(start), ends.get(end)
    if h is None or t is None or t < h:
        return None
    return h, t


def tokens_to_char_span(enc: Encoded, h: int, t: int) -> tuple[int, int]:
    return enc.offsets[h][0], enc.offsets[t][1]
