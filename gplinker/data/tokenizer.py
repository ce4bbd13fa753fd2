"""Fast tokenizers: load one by name or folder, or build a small BERT-style WordPiece one.

The built tokenizer is for tests and the sample recipe: every Chinese character is its own
token (BertNormalizer pads CJK characters with spaces), while runs of digits or Latin letters
form multi-character WordPiece tokens such as "2019" or "Google" (and "AT", "&", "T" for
"AT&T", whose punctuation the pre-tokenizer splits off), as in bert-base-chinese.

BERT's pre-tokenizer keeps letters and digits that touch as one word: `Oracle2019年` gives
`oracle2019` (one [UNK] in bert-base-chinese), so no span can start or end between them.
`split_digits` adds the `tokenizers` Digits pre-tokenizer after it: `oracle`, `2019`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from gplinker.errors import GPLinkerError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4, in this order


def build_wordpiece_tokenizer(
    texts: Iterable[str], vocab_size: int = 3000, *, split_digits: bool = False
) -> PreTrainedTokenizerFast:
    """Build a BERT-style WordPiece tokenizer from texts; same texts, same ids. split_digits:
    digit runs are words of their own (see the module's docstring).

    The vocabulary is the special tokens (ids 0..4), every character as a word start and as a
    "##" continuation, then whole words (digit runs, Latin words) by frequency up to
    vocab_size; the characters are kept even past vocab_size. We count instead of using
    `tokenizers.trainers.WordPieceTrainer` because that one breaks count ties in hash-map
    order: six runs on the sample texts gave four different vocabularies.
    """
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    pre_tokenizer = _pre_tokenizer(pre_tokenizers.BertPreTokenizer(), split_digits)
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    starts = sorted({w[0] for w in counts})
    continuations = sorted({"##" + ch for w in counts for ch in w[1:]})
    words = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))
    tokens = [*SPECIAL_TOKENS, *starts, *continuations]
    tokens += words[: max(0, vocab_size - len(tokens))]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}

    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.add_special_tokens(list(SPECIAL_TOKENS))  # never split "[SEP]" typed in a text
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def _pre_tokenizer(base: pre_tokenizers.PreTokenizer, split_digits: bool) -> Any:
    if not split_digits:
        return base
    return pre_tokenizers.Sequence([base, pre_tokenizers.Digits(individual_digits=False)])


def with_split_digits(tokenizer: PreTrainedTokenizerFast) -> PreTrainedTokenizerFast:
    """The tokenizer with digit runs split from the letters they touch; the vocabulary is
    unchanged. It comes back as a plain PreTrainedTokenizerFast of its tokenizer.json, as
    cut_vocabulary's does: a BertTokenizer folder would rebuild BERT's pre-tokenizer when
    loaded and lose the split, so a model folder would predict unlike it was trained."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    if spec.get("pre_tokenizer") is None:
        raise GPLinkerError("split_digits needs a tokenizer with a pre-tokenizer (BERT-style)")
    backend = Tokenizer.from_str(json.dumps(spec))
    backend.pre_tokenizer = _pre_tokenizer(backend.pre_tokenizer, True)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=tokenizer.model_max_length,
        **{name: getattr(tokenizer, name) for name in _SPECIAL_ATTRIBUTES},
    )


def load_tokenizer(name_or_path: str | Path) -> PreTrainedTokenizerFast:
    """Load a fast tokenizer (character offsets are needed) from a folder or the hub.

    Built-in tokenizer classes only: an `auto_map` in the folder's tokenizer_config.json or
    config.json is never imported. trust_remote_code=False is explicit because left unset,
    transformers asks on stdin whether to run such code (and `predict --input -` reads stdin).
    """
    name = str(name_or_path)
    try:
        tok: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(
            name, use_fast=True, trust_remote_code=False
        )
    except (OSError, ValueError) as e:
        if not Path(name).is_dir():
            raise GPLinkerError(
                f"tokenizer {name!r} is not on this machine and the hub is unreachable; "
                "give a local folder"
            ) from e
        one_line = " ".join(str(e).split())  # the CLI prints one `error:` line
        raise GPLinkerError(f"cannot load tokenizer from {name!r}: {one_line}") from e
    if not isinstance(tok, PreTrainedTokenizerFast) or not tok.is_fast:
        raise GPLinkerError(
            f"tokenizer {name!r} is a slow ({type(tok).__name__}) tokenizer; a fast one is "
            "needed for character offsets (give a folder with tokenizer.json)"
        )
    return tok


def cut_vocabulary(
    tokenizer: PreTrainedTokenizerFast, texts: Iterable[str], min_count: int = 1
) -> PreTrainedTokenizerFast:
    """The same WordPiece tokenizer with only the tokens that occur in `texts` (at least
    `min_count` times) and the special tokens, renumbered from 0 in their old order.

    A random-init encoder then carries no embedding rows that training never touches:
    bert-base-chinese has 21128 tokens, the DuEE training texts use about 6k. A text made of
    kept tokens tokenizes exactly as before (same tokens, same offsets); elsewhere WordPiece
    falls back to shorter kept pieces or [UNK], with offsets still into the text.
    """
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    if spec["model"]["type"] != "WordPiece":
        raise GPLinkerError(
            f"a vocabulary cut needs a WordPiece tokenizer, not {spec['model']['type']}"
        )
    counts: Counter[int] = Counter()
    for enc in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        counts.update(enc)
    specials = {t["id"] for t in spec["added_tokens"]}
    old = spec["model"]["vocab"]  # token -> id
    kept = sorted(i for i in old.values() if i in specials or counts[i] >= min_count)
    new_id = {old_id: new for new, old_id in enumerate(kept)}
    spec["model"]["vocab"] = {t: new_id[i] for t, i in old.items() if i in new_id}
    for added in spec["added_tokens"]:
        added["id"] = new_id[added["id"]]
    for special in (spec.get("post_processor") or {}).get("special_tokens", {}).values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        model_max_length=tokenizer.model_max_length,
        **{name: getattr(tokenizer, name) for name in _SPECIAL_ATTRIBUTES},
    )


_SPECIAL_ATTRIBUTES = ("unk_token", "pad_token", "cls_token", "sep_token", "mask_token")
