"""Write a small, deterministic NER sample: schema.json, train.json, dev.json and README.md.

Templated Chinese sentences over six entity types in the `entities` format (CMeEE's:
exclusive end offsets, with the mention), with what an entity model has to get right:
nested entities (北京大学 org ⊃ 北京 loc; 北京大学校长 pos ⊃ 北京大学; 华为手机 pro ⊃ 华为
com), several entities per sentence, a mention repeated, and a few sentences with none.
Dev reuses the templates with partly unseen names made of characters that occur in train.

    python scripts/make_sample_entities.py --out data/sample-entity --seed 13
"""

from __future__ import annotations

import argparse
import json
import random
import string
from pathlib import Path

SCHEMA = {  # CMeEE's schema.json shape: code -> description
    "per": "人名",
    "loc": "地名，如城市",
    "org": "组织机构，如大学、医院、政府部门；常以地名开头",
    "com": "公司",
    "pro": "产品，以公司名开头",
    "pos": "职位，以机构或公司名开头",
}
# (train fillers, fillers seen only in dev): new words made of characters that occur in
# train, since a vocabulary built from the training texts has no entry for any other
PLACES = (
    ["北京", "上海", "广州", "深圳", "杭州", "南京", "武汉", "成都", "西安", "重庆", "天津",
     "苏州", "长沙", "青岛", "厦门"],
    ["青州", "海京", "南都"],
)  # fmt: skip
COMPANIES = (
    ["华为", "小米", "腾讯", "阿里巴巴", "百度", "京东", "联想", "比亚迪", "格力", "海尔",
     "美的", "网易"],
    ["华联", "美度", "京为"],
)  # fmt: skip
PEOPLE = (
    ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄晓明", "周杰", "林静", "郭涛",
     "孙杨", "马龙", "丁宁", "何洁", "高峰", "谢娜", "李晨", "王磊", "陈晨"],
    ["张洁", "王晨", "李峰", "刘静"],
)  # fmt: skip
ORG_KINDS = {  # an organisation named after a place: its suffix, and its positions
    "大学": ["校长", "副校长", "教授"],
    "人民医院": ["院长", "主任医师"],
    "图书馆": ["馆长"],
    "博物馆": ["馆长", "副馆长"],
    "体育局": ["局长"],
}
NAMED_ORGS = {"清华大学": ["校长", "教授"], "复旦大学": ["校长"], "中科院": ["院长", "院士"]}
COMPANY_POSITIONS = ["总裁", "董事长", "副总裁", "创始人", "首席执行官"]
PRODUCTS = ["手机", "电视", "笔记本电脑", "空调", "冰箱", "汽车", "音箱", "平板", "手表"]
WORDS = {  # slots that are no entity
    "price": ["1999", "2999", "4999", "899", "12000", "6500"],
    "year": ["2015", "2018", "2020", "1998", "2003"],
    "when": ["今天", "明天", "周末", "上午", "下午", "昨天", "傍晚", "早上"],
    "weather": ["天气晴朗", "天气不错", "下了一场雨", "风很大", "有点冷", "阳光很好"],
    "activity": ["适合外出散步", "大家都在家休息", "适合去公园", "路上行人很少",
                 "孩子们在外面玩", "我们一起去爬山"],
}  # fmt: skip
# (weight, template): {slot}s are filled by the Sentence method of that name, or from WORDS
TEMPLATES = [
    (3, "{per}出生于{loc}，{year}年毕业于{university}。"),
    (3, "{pos}{per}在{loc}出席了{org}举办的论坛。"),
    (3, "{com}在{loc}发布了新款{its_product}，售价{price}元。"),
    (2, "{per}花{price}元买了一台{product}。"),
    (2, "据{org}消息，{per}将于下月访问{loc}。"),
    (2, "{per}和{per}都在{com}{loc}分公司工作。"),
    (3, "{com}总部位于{loc}，{pos}{per}表示将加大投入。"),
    (2, "{org}与{com}签署战略合作协议。"),
    (2, "{pos}{per}在{loc}会见了{pos}{per}。"),
    (2, "{com}表示，{it}今年将推出{its_product}和{its_product}。"),
    (1, "{when}{weather}，{activity}。"),
]


class Sentence:
    """Text built slot by slot, with the (start, end, type) of every entity in it."""

    def __init__(self, rng: random.Random, dev: bool):
        self.rng, self.dev = rng, dev
        self.text, self.entities, self.used = "", set(), set()
        self.company = ""

    def fill(self, template: str) -> Sentence:
        for literal, slot, _, _ in string.Formatter().parse(template):
            self.add(literal)
            if slot in WORDS:
                self.add(self.rng.choice(WORDS[slot]))
            elif slot:
                getattr(self, slot)()
        return self

    def add(self, piece: str, label: str | None = None, start: int | None = None) -> None:
        """Append a piece; with a label, mark it (from `start` on, for a nesting span)."""
        start = len(self.text) if start is None else start
        self.text += piece
        if label:
            self.entities.add((start, len(self.text), label))

    def pick(self, pair: tuple[list[str], list[str]]) -> str:
        """A filler not used yet in this sentence; in dev, now and then an unseen one."""
        seen, unseen = pair
        pool = unseen if self.dev and self.rng.random() < 0.03 else seen
        word = self.rng.choice([x for x in pool if x not in self.used] or seen)
        self.used.add(word)
        return word

    def per(self) -> None:
        self.add(self.pick(PEOPLE), "per")

    def loc(self) -> None:
        self.add(self.pick(PLACES), "loc")

    def com(self) -> None:
        self.company = self.pick(COMPANIES)
        self.add(self.company, "com")

    def it(self) -> None:
        self.add(self.company, "com")  # the same company named again

    def org(self, university: bool = False) -> list[str]:
        """An organisation, a place inside it when named after one; its positions."""
        start = len(self.text)
        if self.rng.random() < 0.3:
            name = self.rng.choice([o for o in NAMED_ORGS if o.endswith("大学") or not university])
            self.add(name, "org")
            return NAMED_ORGS[name]
        self.loc()
        kind = "大学" if university else self.rng.choice(list(ORG_KINDS))
        self.add(kind, "org", start)
        return ORG_KINDS[kind]

    def university(self) -> None:
        self.org(university=True)

    def pos(self) -> None:
        """A position of an organisation or a company (北京大学校长, 华为总裁)."""
        start = len(self.text)
        if self.rng.random() < 0.5:
            positions = self.org()
        else:
            self.com()
            positions = COMPANY_POSITIONS
        self.add(self.rng.choice(positions), "pos", start)

    def product(self) -> None:
        start = len(self.text)
        self.com()
        self.add(self.rng.choice(PRODUCTS), "pro", start)

    def its_product(self) -> None:
        """A product of the sentence's company, not named before in the sentence."""
        start = len(self.text)
        self.it()
        kind = self.rng.choice([p for p in PRODUCTS if p not in self.used])
        self.used.add(kind)
        self.add(kind, "pro", start)


def make_rows(rng: random.Random, n: int, split: str, avoid: set[str]) -> list[dict]:
    weights = [w for w, _ in TEMPLATES]
    rows: list[dict] = []
    while len(rows) < n:
        template = rng.choices([t for _, t in TEMPLATES], weights)[0]
        s = Sentence(rng, dev=split == "dev").fill(template)
        if s.text in avoid or not 8 <= len(s.text) <= 60:
            continue
        avoid.add(s.text)
        entities = [
            {"entity": s.text[a:b], "start_offset": a, "end_offset": b, "label": label}
            for a, b, label in sorted(s.entities)
        ]
        rows.append({"id": f"{split}-{len(rows):04d}", "text": s.text, "entities": entities})
    return rows


def write(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            # compact separators keep the committed files small
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")


def summary(name: str, rows: list[dict]) -> str:
    def inside(row: dict) -> int:  # spans lying strictly inside another span
        spans = {(e["start_offset"], e["end_offset"]) for e in row["entities"]}
        return sum(any(a != b and b[0] <= a[0] and a[1] <= b[1] for b in spans) for a in spans)

    n = sum(len(r["entities"]) for r in rows)
    empty = sum(not r["entities"] for r in rows)
    nested = sum(map(inside, rows))
    return (
        f"{name}: {len(rows)} sentences, {n} entities ({nested} inside another), {empty} with none"
    )


README = """Synthetic NER sample (not real text) in the `entities` format, CMeEE's: exclusive end
offsets, with the mention. The {n} types are in `schema.json`, in CMeEE's shape (code ->
description): {types}. Templated and deterministic: nested entities (an
organisation holding a place, a position holding its organisation or company, a product
holding its company), several entities a sentence, a company named twice, a few sentences
with none; dev reuses the templates with partly unseen names made of train characters.

{counts}
Made by `python scripts/make_sample_entities.py --out {out} --seed {seed}`.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("data/sample-entity"))
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--n-train", type=int, default=800)
    ap.add_argument("--n-dev", type=int, default=150)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    seen: set[str] = set()
    train = make_rows(rng, args.n_train, "train", seen)
    dev = make_rows(rng, args.n_dev, "dev", seen)
    unseen = sorted({c for r in dev for c in r["text"]} - {c for r in train for c in r["text"]})
    assert not unseen, f"dev characters missing from train: {unseen}"
    args.out.mkdir(parents=True, exist_ok=True)
    schema = json.dumps(SCHEMA, ensure_ascii=False, indent=4)
    (args.out / "schema.json").write_text(schema + "\n", encoding="utf-8")
    write(args.out / "train.json", train)
    write(args.out / "dev.json", dev)
    counts = [summary("train", train), summary("dev", dev)]
    readme = README.format(
        n=len(SCHEMA),
        types=", ".join(SCHEMA),
        counts="".join(f"- {line}\n" for line in counts),
        out=args.out,
        seed=args.seed,
    )
    (args.out / "README.md").write_text(readme, encoding="utf-8")
    print("\n".join(counts))


if __name__ == "__main__":
    main()
