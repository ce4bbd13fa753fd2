"""Scores -> candidate spans -> link graph -> maximal cliques -> Events (SPEC §7).

An untrained model marks tens of thousands of spans positive (SPEC §10), so the work is
bounded: at most `max_candidates` spans per sentence (the highest scores), at most
`max_events_per_type` cliques per event type, and at most MAX_EVENTS_PER_TEXT events per
text over all its windows, merged in time linear in the windows. Each bound logs a warning
when it bites.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import networkx as nx
import torch
from torch import Tensor

from gplinker.data.alignment import Encoded
from gplinker.modeling.global_pointer import Factored
from gplinker.schema import TRIGGER, Argument, Event, Schema

logger = logging.getLogger(__name__)
SEARCHED_PER_EVENT = 16  # cliques looked at per event kept: bounds the trigger-less ones
MAX_EVENTS_PER_TEXT = 4096  # events one text may yield, over all its windows


def decode(
    argu: Tensor,
    head_link: Tensor,
    tail_link: Tensor,
    offsets: Sequence[tuple[int, int]],
    text: str,
    schema: Schema,
    *,
    threshold: float = 0.0,
    max_candidates: int = 256,
    max_events_per_type: int = 64,
) -> list[Event]:
    """Events of one sentence, sorted by (event_type, sorted arguments).

    argu is [H, L, L] with H = len(schema.labels); head_link and tail_link are [L, L] or
    [1, L, L]. offsets[i] = (char_start, char_end) of token i in `text`; a token with
    start == end ([CLS], [SEP], padding) is never a span head or tail, and positions past
    len(offsets) count as padding.
    """
    cand, scores = _dense_candidates(argu, schema, threshold)
    decoded = decode_candidates(
        cand,
        scores,
        head_link,
        tail_link,
        offsets,
        text,
        schema,
        threshold=threshold,
        max_candidates=max_candidates,
        max_events_per_type=max_events_per_type,
    )
    return decoded.events


@dataclass(frozen=True)
class Decoded:
    """One sentence decoded: its events, and per event type with a kept candidate a
    trigger-less Event holding the arguments of every clique of that type's graph, cliques
    without a trigger included. Every node of a graph lies in some maximal clique, so these
    are the kept argument candidates themselves: what the reference's argument F1 counts
    (metrics.py, "argument_reference")."""

    events: list[Event]
    clique_arguments: list[Event]


def decode_candidates(
    cand: Tensor,
    scores: Tensor,
    head_link: Tensor,
    tail_link: Tensor,
    offsets: Sequence[tuple[int, int]],
    text: str,
    schema: Schema,
    *,
    threshold: float = 0.0,
    max_candidates: int = 256,
    max_events_per_type: int = 64,
) -> Decoded:
    """decode() from the argument cells scored above the threshold: cand [N, 3] rows
    (label, h, t) sorted, scores [N]. How the cells were found (dense scores, or
    `factored_candidates` without them) does not change the events."""
    seq_len = head_link.shape[-1]
    head_link, tail_link = _square(head_link, seq_len), _square(tail_link, seq_len)
    if len(offsets) > seq_len:
        raise ValueError(f"{len(offsets)} offsets for {seq_len} token positions")
    if max_candidates < 1 or max_events_per_type < 1:
        raise ValueError("max_candidates and max_events_per_type should be at least 1")

    # per-token char offsets; missing positions get (0, 0), i.e. invalid
    spans = torch.zeros(seq_len, 2, dtype=torch.long)  # [L, 2]
    if offsets:
        spans[: len(offsets)] = torch.tensor([tuple(o) for o in offsets], dtype=torch.long)
    valid = spans[:, 0] < spans[:, 1]  # [L]

    # (a) candidates: real tokens, h <= t, a non-degenerate span inside the text (d)
    heads, tails = cand[:, 1], cand[:, 2]
    char_start, char_end = spans[heads, 0], spans[tails, 1]  # [N]
    ok = valid[heads] & valid[tails] & (heads <= tails)
    ok &= (char_start < char_end) & (char_start >= 0) & (char_end <= len(text))
    cand, scores, char_start, char_end = cand[ok], scores[ok], char_start[ok], char_end[ok]
    if len(cand) > max_candidates:
        keep = top_k(scores, max_candidates, what="candidate spans")
        cand, char_start, char_end = cand[keep], char_start[keep], char_end[keep]

    type_of, is_trigger = _label_tables(schema)
    labels, heads, tails = cand[:, 0], cand[:, 1], cand[:, 2]
    cand_type = type_of[labels]
    arguments = [
        Argument(schema.labels[lab][1], text[s:e], s)
        for lab, s, e in zip(labels.tolist(), char_start.tolist(), char_end.tolist(), strict=True)
    ]

    events: list[Event] = []
    capped: list[str] = []
    # only event types with a trigger candidate: without one every clique would be dropped
    for k in cand_type[is_trigger[labels]].unique().tolist():
        event_type = schema.event_types[k]
        idx = (cand_type == k).nonzero().squeeze(1)  # [n], ascending
        # (b) links between all pairs of this type's candidates, by tensor indexing
        h, t = heads[idx], tails[idx]  # [n]
        h_lo, h_hi = torch.minimum(h[:, None], h[None, :]), torch.maximum(h[:, None], h[None, :])
        t_lo, t_hi = torch.minimum(t[:, None], t[None, :]), torch.maximum(t[:, None], t[None, :])
        linked = (head_link[h_lo, h_hi] > threshold) & (tail_link[t_lo, t_hi] > threshold)  # [n, n]
        adj: list[set[int]] = [set() for _ in range(len(idx))]
        for i, j in linked.fill_diagonal_(False).nonzero().tolist():
            adj[i].add(j)
        # (c) + (e): the maximal cliques that hold a trigger node
        cliques: list[frozenset[int]] = []
        triggers = is_trigger[labels[idx]].nonzero().squeeze(1).tolist()
        for clique in _cliques_through(adj, triggers, SEARCHED_PER_EVENT * max_events_per_type):
            cliques.append(clique)
            if len(cliques) >= max_events_per_type:
                break
        if len(cliques) >= max_events_per_type:
            capped.append(event_type)
        members = idx.tolist()
        events.extend(
            Event(event_type, frozenset(arguments[members[i]] for i in clique))
            for clique in cliques
        )
    if capped:
        logger.warning(
            "decode: stopped at %d cliques for event types %s", max_events_per_type, capped
        )
    by_type: dict[int, set[Argument]] = {}
    for k, arg in zip(cand_type.tolist(), arguments, strict=True):
        if arg.role != TRIGGER:
            by_type.setdefault(k, set()).add(arg)
    clique_arguments = [
        Event(schema.event_types[k], frozenset(args)) for k, args in sorted(by_type.items())
    ]
    return Decoded(_finalise(events), clique_arguments)


def top_k(scores: Tensor, k: int, *, what: str) -> Tensor:
    """Indices (ascending) of the k highest of `scores` [N]: everything above the k-th best,
    then ties at it in index order, so the kept set is deterministic; topk, not a full sort
    of ~10^5 scores. Logs a warning when it drops anything (an untrained or weak model)."""
    if len(scores) <= k:
        return torch.arange(len(scores))
    kth = scores.topk(k).values[-1]
    above = scores > kth
    ties = (scores == kth).nonzero().squeeze(1)[: k - int(above.sum())]
    logger.warning(
        "decode: %d %s scored above the threshold; kept the %d highest, dropped %d "
        "(an untrained or weak model?)",
        len(scores),
        what,
        k,
        len(scores) - k,
    )
    return torch.cat([above.nonzero().squeeze(1), ties]).sort().values


def cells_above(scores: Tensor | Factored, threshold: float = 0.0) -> list[tuple[Tensor, Tensor]]:
    """Per sentence of a batch, the (label, h, t) cells scored above the threshold, sorted,
    [N, 3], and their scores [N]: from dense [B, H, L, L] scores (masked cells hold NEG),
    or from Factored EGP scores without building them."""
    if isinstance(scores, Factored):
        return factored_candidates(scores, threshold)
    dense = scores.detach().to("cpu", torch.float32)
    found = []
    for b in range(dense.shape[0]):
        cand = (dense[b] > threshold).nonzero()  # row-major: sorted by (label, h, t)
        found.append((cand, dense[b][cand[:, 0], cand[:, 1], cand[:, 2]]))
    return found


def factored_candidates(scores: Factored, threshold: float = 0.0) -> list[tuple[Tensor, Tensor]]:
    """Per sentence, the (label, h, t) cells of EGP scores above the threshold, sorted, and
    their scores, without the [B, H, L, L] tensor. s_α(i,j) = qk[i,j] + col[j,α] + row[i,α]
    is at most qk[i,j] + max_α col[j,α] + max_α row[i,α]: only the (i, j) cells whose bound
    passes are scored for every label. A trained model leaves few; an untrained one, at
    worst, all, which is the dense cost."""
    qk, col, row, mask = (
        x.detach().cpu() for x in (scores.qk, scores.col, scores.row, scores.mask)
    )
    qk, col, row = qk.float(), col.float(), row.float()
    bound = qk + col.amax(2)[:, None, :] + row.amax(2)[:, :, None]  # [B, L, L]
    b, i, j = ((bound > threshold) & mask).nonzero().unbind(1)  # cells in (b, i, j) order
    cell_scores = qk[b, i, j][:, None] + col[b, j] + row[b, i]  # [K, H]
    cell, label = (cell_scores > threshold).nonzero().unbind(1)
    found = cell_scores[cell, label]
    B, L, H = qk.shape[0], qk.shape[1], col.shape[2]
    # (label, h, t) order within each sentence, as nonzero() of the dense scores gives it
    key = ((b[cell] * H + label) * L + i[cell]) * L + j[cell]
    order = key.argsort()
    b, cand, found = b[cell][order], torch.stack([label, i[cell], j[cell]], 1)[order], found[order]
    counts = torch.bincount(b, minlength=B).tolist()
    return list(zip(cand.split(counts), found.split(counts), strict=True))


def decode_batch(
    argu: Tensor | Factored,
    head_link: Tensor | Factored,
    tail_link: Tensor | Factored,
    offsets: Sequence[Sequence[tuple[int, int]]],
    texts: Sequence[str],
    schema: Schema,
    **kwargs: float | int,
) -> list[list[Event]]:
    """decode() per sentence: argu [B, H, L, L], links [B, 1, L, L], or the Factored EGP
    scores (then argu's candidates come from `factored_candidates`, and the one-label links
    are made dense); offsets[b] may be shorter than L (padding). kwargs go to decode()."""
    found = decode_sentences(argu, head_link, tail_link, offsets, texts, schema, **kwargs)
    return [d.events for d in found]


def decode_sentences(
    argu: Tensor | Factored,
    head_link: Tensor | Factored,
    tail_link: Tensor | Factored,
    offsets: Sequence[Sequence[tuple[int, int]]],
    texts: Sequence[str],
    schema: Schema,
    **kwargs: float | int,
) -> list[Decoded]:
    """decode_batch, with each sentence's clique arguments beside its events."""
    batch = argu.qk.shape[0] if isinstance(argu, Factored) else argu.shape[0]
    if not len(offsets) == len(texts) == batch:
        raise ValueError(
            f"batch of {batch} score maps, {len(offsets)} offset lists, {len(texts)} texts"
        )
    # one device transfer for the whole batch, not one per sentence
    head_link, tail_link = (
        (x.dense() if isinstance(x, Factored) else x).detach().to("cpu", torch.float32)
        for x in (head_link, tail_link)
    )
    threshold = float(kwargs.get("threshold", 0.0))
    if isinstance(argu, Factored):
        found = factored_candidates(argu, threshold)
    else:
        dense = argu.detach().to("cpu", torch.float32)
        found = [_dense_candidates(dense[b], schema, threshold) for b in range(batch)]
    return [
        decode_candidates(
            cand, scores, head_link[b], tail_link[b], offsets[b], texts[b], schema, **kwargs
        )
        for b, (cand, scores) in enumerate(found)
    ]


def _dense_candidates(argu: Tensor, schema: Schema, threshold: float) -> tuple[Tensor, Tensor]:
    """The (label, h, t) cells of argu [H, L, L] above the threshold, sorted, and their
    scores."""
    n_labels, seq_len = len(schema.labels), argu.shape[-1]
    if argu.shape != (n_labels, seq_len, seq_len):
        raise ValueError(f"argu should be [{n_labels}, L, L], got {list(argu.shape)}")
    argu = argu.detach().to("cpu", torch.float32)
    # nonzero() is row-major: candidates sorted by (label, h, t)
    cand = (argu > threshold).nonzero()  # [N, 3]: label, h, t
    return cand, argu[cand[:, 0], cand[:, 1], cand[:, 2]]


@functools.lru_cache(maxsize=8)
def _label_tables(schema: Schema) -> tuple[Tensor, Tensor]:
    """Per label: its event type's index, and whether it is the trigger role."""
    types = {t: k for k, t in enumerate(schema.event_types)}
    type_of = torch.tensor([types[t] for t, _ in schema.labels])
    is_trigger = torch.tensor([r == TRIGGER for _, r in schema.labels])
    return type_of, is_trigger


def merge_windows(
    events: Sequence[Sequence[Event]],
    windows: Sequence[Encoded],
    *,
    max_events: int = MAX_EVENTS_PER_TEXT,
) -> list[Event]:
    """Events of one text from the events decoded in each of its windows (in text order).

    Offsets are absolute, so events need no shifting. An event cut by a window edge is seen
    in parts: a part from a later window joins an earlier event of the same type and
    trigger when both agree on the arguments their windows share. Duplicates and events
    contained in another (one window saw less of it) then go, as in decode().

    Time is linear in the number of windows: a part is compared only with the events of
    its type and trigger (a trigger lies in the few windows that overlap it), and the
    subset drop only with events holding its rarest argument. A text yields at most
    `max_events` events (the first in text order; a warning says so), as the decoder
    bounds each window.
    """
    if len(windows) == 1:
        return _bounded(list(events[0]), max_events)
    merged: list[tuple[Event, list[Encoded]]] = []
    by_trigger: dict[tuple[str, Argument], list[int]] = {}  # (type, trigger) -> in merged
    for window, found in zip(windows, events, strict=True):
        for ev in found:
            key = (ev.event_type, ev.trigger)
            group = by_trigger.setdefault(key, []) if ev.trigger is not None else []
            for k in group:
                other, seen_by = merged[k]
                if _same_event(other, seen_by, ev, window):
                    union = Event(ev.event_type, other.arguments | ev.arguments)
                    merged[k] = (union, [*seen_by, window])  # same type, same first trigger
                    break
            else:
                group.append(len(merged))
                merged.append((ev, [window]))
    return _bounded(_finalise([ev for ev, _ in merged]), max_events)


def _bounded(events: list[Event], max_events: int) -> list[Event]:
    """The first max_events events in text order (earliest first element), with a warning."""
    if len(events) <= max_events:
        return events
    logger.warning(
        "decode: a text yielded %d events; kept the first %d in text order",
        len(events),
        max_events,
    )
    first = sorted(events, key=lambda ev: min((a.start, a.role, a.text) for a in ev.arguments))
    kept = set(first[:max_events])
    return [ev for ev in events if ev in kept]


def _same_event(old: Event, seen_by: Sequence[Encoded], new: Event, window: Encoded) -> bool:
    if old.event_type != new.event_type or old.trigger is None or old.trigger != new.trigger:
        return False
    shared_old = {a for a in old.arguments if window.sees(a.start, a.end)}
    shared_new = {a for a in new.arguments if any(w.sees(a.start, a.end) for w in seen_by)}
    return shared_old == shared_new


def _cliques_through(
    adj: Sequence[set[int]], through: Sequence[int], limit: int
) -> Iterator[frozenset[int]]:
    """The maximal cliques of a graph (adj[i] = neighbours of node i) that hold a node of
    `through`, each once, from one networkx search of the whole graph; at most `limit`
    cliques are looked at (those without such a node count too), so a flood of trigger-less
    cliques stays bounded. One search per trigger (find_cliques(nodes=[t])) instead redid
    the work for every trigger of a shared clique: 28 s for one clique of 384 candidates
    with 61 triggers, against 0.3 s now."""
    graph = nx.Graph()
    graph.add_nodes_from(range(len(adj)))
    graph.add_edges_from((i, j) for i, near in enumerate(adj) for j in near if i < j)
    wanted = set(through)
    for searched, clique in enumerate(nx.find_cliques(graph), 1):
        if wanted.intersection(clique):
            yield frozenset(clique)
        if searched >= limit:
            logger.warning("decode: stopped after looking at %d cliques of one event type", limit)
            return


def _square(link: Tensor, seq_len: int) -> Tensor:
    if link.shape[-2:] != (seq_len, seq_len) or link.numel() != seq_len * seq_len:
        raise ValueError(f"a link map should be [L, L] or [1, L, L], got {list(link.shape)}")
    return link.detach().to("cpu", torch.float32).reshape(seq_len, seq_len)  # [L, L]


def _finalise(events: list[Event]) -> list[Event]:
    """(e) drop duplicates and events whose arguments are a proper subset of another event of
    the same type; (f) sort. A superset holds every argument of the subset, so each event
    is compared only with the events that hold its rarest argument: linear, not quadratic,
    in the number of events."""
    unique = list(dict.fromkeys(events))
    holders: dict[tuple[str, Argument], list[Event]] = {}
    for ev in unique:
        for a in ev.arguments:
            holders.setdefault((ev.event_type, a), []).append(ev)
    typed = {ev.event_type for ev in unique if ev.arguments}

    def contained(ev: Event) -> bool:
        if not ev.arguments:  # the empty set is inside any event of its type
            return ev.event_type in typed
        rarest = min((holders[(ev.event_type, a)] for a in ev.arguments), key=len)
        return any(ev.arguments < other.arguments for other in rarest)

    kept = [ev for ev in unique if not contained(ev)]
    return sorted(kept, key=lambda ev: (ev.event_type, sorted(ev.arguments)))
