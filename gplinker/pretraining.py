"""Masked-language-model pretraining of a random-init encoder on unlabeled text, before
GPLinker training (`pretrain.minutes`). BERT's recipe: 15 % of the real tokens are chosen;
of those 80 % become [MASK], 10 % a random token, 10 % stay; the loss is cross-entropy on
the chosen ones, through a head whose output matrix is the word embedding (tied)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedTokenizerFast

from gplinker.data.collate import bucketed_batches
from gplinker.progress import progress_bar

logger = logging.getLogger(__name__)
WARMUP_STEPS = 100
MAX_GRAD_NORM = 1.0
IGNORE = -100  # label of a token that is not predicted


def mask_tokens(
    input_ids: Tensor,
    never: Tensor,
    mask_id: int,
    vocab_size: int,
    p: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """(inputs, labels): each token not in `never` (special tokens, padding) is chosen with
    probability p; a chosen token becomes [MASK] (80 %), a uniformly random token (10 %) or
    stays (10 %), and its label is its id; every other label is IGNORE."""
    chosen = torch.bernoulli(torch.full(input_ids.shape, p), generator=generator).bool() & ~never
    labels = torch.where(chosen, input_ids, IGNORE)
    r = torch.rand(input_ids.shape, generator=generator)
    inputs = torch.where(chosen & (r < 0.8), mask_id, input_ids)
    swap = chosen & (r >= 0.8) & (r < 0.9)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    return torch.where(swap, random_ids, inputs), labels


class MLMHead(nn.Module):
    """hidden -> dense + GELU + LayerNorm -> logits over the vocabulary, tied to the input
    embedding (the BERT head), so pretraining shapes the embedding GPLinker then uses."""

    def __init__(self, embedding: nn.Embedding, hidden_size: int):
        super().__init__()
        self.transform = nn.Sequential(
            nn.Linear(hidden_size, hidden_size), nn.GELU(), nn.LayerNorm(hidden_size)
        )
        self.embedding = embedding
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    def forward(self, hidden: Tensor) -> Tensor:
        return self.transform(hidden) @ self.embedding.weight.T + self.bias


def pretrain_mlm(
    encoder: nn.Module,
    tokenizer: PreTrainedTokenizerFast,
    texts: Sequence[str],
    *,
    minutes: float,
    max_length: int,
    batch_size: int,
    lr: float,
    mask_prob: float,
    seed: int,
    device: torch.device,
) -> dict[str, float]:
    """Train `encoder` as a masked LM on `texts` for `minutes` of wall clock (whole passes
    in a seeded order, stopped mid-pass when time is up). Returns steps, texts seen, the
    mean loss of the last 100 steps and minutes spent."""
    started = time.monotonic()
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    head = MLMHead(encoder.get_input_embeddings(), encoder.config.hidden_size).to(device)
    params = list(encoder.parameters()) + [
        p for n, p in head.named_parameters() if "embedding" not in n
    ]
    optimizer = torch.optim.AdamW(params, lr=lr)
    # BERT's recipe warms up and clips: a random post-LN encoder at full lr from step 1 can
    # diverge. The run is timed, so the warmup counts steps and the rate then stays flat.
    warmup = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / WARMUP_STEPS)
    )
    generator = torch.Generator().manual_seed(seed)
    rng = random.Random(f"{seed}/mlm")
    encoder.train()
    steps, seen, recent = 0, 0, []
    bar = progress_bar(desc="masked LM", unit=" steps", leave=False)
    while time.monotonic() - started < 60 * minutes:
        for idx in bucketed_batches([len(x) for x in ids], batch_size, 50, rng):
            input_ids, attention = _pad([ids[i] for i in idx], tokenizer.pad_token_id)
            never = torch.isin(input_ids, special) | ~attention.bool()
            inputs, labels = mask_tokens(
                input_ids, never, tokenizer.mask_token_id, len(tokenizer), mask_prob, generator
            )
            chosen = labels != IGNORE
            if not chosen.any():
                continue
            hidden = encoder(input_ids=inputs.to(device), attention_mask=attention.to(device))[0]
            logits = head(hidden[chosen.to(device)])
            loss = F.cross_entropy(logits.float(), labels[chosen].to(device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            optimizer.step()
            warmup.step()
            optimizer.zero_grad(set_to_none=True)
            steps, seen = steps + 1, seen + len(idx)
            recent = [*recent[-99:], loss.item()]
            bar.update()
            bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}")
            if time.monotonic() - started >= 60 * minutes:
                break
    bar.close()
    stats = {
        "steps": steps,
        "texts_seen": seen,
        "loss": sum(recent) / max(len(recent), 1),
        "minutes": (time.monotonic() - started) / 60,
    }
    logger.info(
        "masked LM: %d steps, %d texts (%.1f passes over %d), loss %.3f, %.1f minutes",
        steps,
        seen,
        seen / max(len(ids), 1),
        len(ids),
        stats["loss"],
        stats["minutes"],
    )
    return stats


def _pad(rows: list[list[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """[B, longest] ids and attention mask: each batch padded to its own longest text."""
    longest = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), longest), dtype=torch.long)
    for b, row in enumerate(rows):
        input_ids[b, : len(row)] = torch.tensor(row)
        attention[b, : len(row)] = 1
    return input_ids, attention
