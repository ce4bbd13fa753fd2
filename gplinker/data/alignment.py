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
    """One window of a tokenized text: [CLS] tokens [SEP], with each token's char span.

    A text that fits is one window with skipped == n_cut == 0.
    """

    input_ids: list[int]
    offsets: list[tuple[int, int]]
    n_cut: int = 0  # the text's tokens after this window (lost to max_length without windows)
    skipped: int = 0  # the text's tokens before this window

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def covered_chars(self) -> int:
        """Chars [0, covered_chars) lie inside or before the kept tokens."""
        return max((e for s, e in self.offsets if e > s), default=0)

    def sees(self, start: int, end: int) -> bool:
        """Whether chars [start, end) lie whole inside this window (nothing of them cut)."""
        if self.skipped and start < min((s for s, e in self.offsets if e > s), default=0):
            return False
        return not (self.n_cut and end > self.covered_chars)


def encode_windows(
    texts: Sequence[str],
    tokenizer: PreTrainedTokenizerFast,
    max_length: int,
    overlap: int | None = None,
) -> list[list[Encoded]]:
    """Tokenize many texts in one call of the Rust tokenizer; the windows of each text.

    overlap None: one window per text, cut at max_length. Otherwise a longer text is
    covered by windows of max_length tokens, consecutive ones sharing at least `overlap`
    tokens, the last one ending with the text, so no token is lost.
    """
    if not texts:
        return []
    keep = max_length - 2
    if overlap is not None and not 0 <= overlap < keep:
        raise ValueError(f"window overlap must be in [0, {keep}), got {overlap}")
    enc = tokenizer(
        list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False
    )
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    out = []
    for ids, offs in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        n = len(ids)
        starts = [0]
        if overlap is not None and n > keep:
            starts = [*range(0, n - keep, keep - overlap), n - keep]
        out.append(
            [
                Encoded(
                    input_ids=[cls_id, *ids[a : a + keep], sep_id],
                    offsets=[SPECIAL, *(tuple(o) for o in offs[a : a + keep]), SPECIAL],
                    n_cut=max(0, n - a - keep),
                    skipped=a,
                )
                for a in starts
            ]
        )
    return out


def encode_batch(
    texts: Sequence[str], tokenizer: PreTrainedTokenizerFast, max_length: int
) -> list[Encoded]:
    """One window per text, cut to max_length."""
    return [windows[0] for windows in encode_windows(texts, tokenizer, max_length)]


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
