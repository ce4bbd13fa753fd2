"""Would flat decoding help a model of flat entities? Scores a trained entity model's dev
predictions twice: as the decoder gives them (every span scored > 0, nested ones too) and
flat (greedily, the highest-scoring spans first, a span overlapping a kept one dropped).

    python scripts/flat_entities.py runs/cluener-tiny/best ../shared/data/cluener/dev.json

Prints entity P / R / F1 and the count of predictions of each; docs/results.md quotes it.
"""

from __future__ import annotations

import argparse

import torch

from gplinker import GPLinker
from gplinker.data.alignment import encode_windows
from gplinker.data.collate import collate
from gplinker.data.reader import read_lines
from gplinker.decoding import cells_above
from gplinker.tasks.entity import Entity


def scored_entities(model: GPLinker, texts: list[str], batch: int = 64) -> list[list]:
    """Per text (its first window), every (score, Entity) the decoder would consider."""
    windows = encode_windows(texts, model.tokenizer, model.max_length, model.window_overlap)
    found: list[list] = []
    with torch.inference_mode():
        for b in range(0, len(texts), batch):
            ws = [w[0] for w in windows[b : b + batch]]
            enc = collate([(w, None) for w in ws])
            out = model.model(enc.input_ids, enc.attention_mask, factored=True)
            for k, (cand, scores) in enumerate(cells_above(out["entity"])):
                offsets, text = ws[k].offsets, texts[b + k]
                row = []
                for (label, h, t), s in zip(cand.tolist(), scores.tolist(), strict=True):
                    real = all(h < len(offsets) and offsets[i][0] < offsets[i][1] for i in (h, t))
                    if real and t < len(offsets) and h <= t:
                        start, end = offsets[h][0], offsets[t][1]
                        row.append((s, Entity(model.schema.types[label], text[start:end], start)))
                found.append(row)
    return found


def flat(row: list) -> list[Entity]:
    kept: list[Entity] = []
    for _, e in sorted(row, key=lambda x: -x[0]):
        if all(e.end <= o.start or o.end <= e.start for o in kept):
            kept.append(e)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("dev")
    args = parser.parse_args()
    model = GPLinker.from_pretrained(args.model, device="cpu")
    gold = model.task.read_scored(args.dev, None)
    ids = list(gold)
    texts = [x.text for x in read_lines(args.dev, parse=model.task.parse(None))]
    rows = scored_entities(model, texts)
    for name, pick in (("as decoded", lambda r: sorted({e for _, e in r})), ("flat", flat)):
        pred = {i: pick(r) for i, r in zip(ids, rows, strict=True)}
        m = model.task.evaluate(pred, gold)["entity"]
        print(
            f"{name:>10}: P {m.precision:.4f} R {m.recall:.4f} F1 {m.f1:.4f} ({m.n_pred} predicted)"
        )


if __name__ == "__main__":
    main()
