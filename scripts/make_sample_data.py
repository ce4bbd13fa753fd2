"""Write a small, deterministic DuEE-format sample: schema, train and dev files.

Templated Chinese news sentences over five DuEE event types, with the cases a GPLinker model
has to get right: two events in one sentence (of the same type or not), an argument or a
time shared by two events, nested spans (a seller inside the traded item, a year inside the
contest name), the same company named long and short, varied phrasing and word order, and a
few sentences with no event. Dev reuses the templates with partly unseen fillers.

    python scripts/make_sample_data.py --out data/sample --seed 13
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TRIGGER = "触发词"
LAYOFF, DEAL, MARRY, WIN, JAIL = (
    "组织关系-裁员",
    "财经/交易-出售/收购",
    "人生-结婚",
    "竞赛行为-夺冠",
    "司法行为-入狱",
)
SCHEMA = {  # a subset of DuEE 1.0, with its role lists
    LAYOFF: ["时间", "裁员方", "裁员人数"],
    DEAL: ["时间", "出售方", "交易物", "出售价格", "收购方"],
    MARRY: ["时间", "结婚双方"],
    WIN: ["时间", "冠军", "夺冠赛事"],
    JAIL: ["时间", "入狱者", "刑期"],
}

# (train fillers, fillers seen only in dev). Dev-only fillers are new words made of
# characters that occur in train: a vocabulary built from the training texts (the sample
# config's tokenizer) has no entry for a character it never saw.
COMPANIES = (
    [
        "华为",
        "雀巢",
        "IBM",
        "Google",
        "AT&T",
        "Intel",
        "Oracle",
        "阿里巴巴",
        "腾讯",
        "小米",
        "百度",
        "京东",
        "联想",
        "福特",
        "丰田",
        "索尼",
        "美团",
        "通用汽车",
        "HP",
        "SAP",
    ],
    ["华米", "京腾", "联通", "米联"],
)
UNITS = (
    ["云计算业务", "手机业务", "芯片部门", "全部股份", "中国区业务", "电视业务"],
    ["芯片业务", "云计算部门"],
)
PEOPLE = (
    [
        "张伟",
        "王芳",
        "李娜",
        "刘洋",
        "陈静",
        "杨帆",
        "赵磊",
        "黄晓明",
        "周杰伦",
        "林志玲",
        "郭晶晶",
        "霍启刚",
        "孙杨",
        "马龙",
        "丁宁",
        "何雯娜",
        "高云翔",
        "谢娜",
        "张杰",
        "李晨",
    ],
    ["张晨", "王杰", "李磊", "刘芳", "陈娜"],
)
CHAMPIONS = (
    ["中国女排", "皇家马德里", "勇士队", "湖人队", "拜仁慕尼黑", "恒大", "国米"],
    ["中国男排", "马德里"],
)
CONTESTS = (
    ["世界杯", "欧冠", "NBA总决赛", "澳网", "温网", "法网", "全英赛", "中超联赛", "世锦赛"],
    ["中国杯", "世界联赛"],
)
TIMES = (
    ["2019年3月", "2020年", "3月15日", "上周", "昨日", "今年6月", "2018年底", "本月初"],
    ["2018年6月", "上月初"],
)
YEARS = (["2017年", "2018年", "2019年", "2020年"], ["2021年"])
CROWDS = (
    ["300人", "500人", "1200人", "4000人", "1.2万人", "800名员工", "2000名员工"],
    ["350人", "1500名员工"],
)
PRICES = (
    ["12亿美元", "1.5亿美元", "20亿元", "300万美元", "4.5亿欧元", "87亿元"],
    ["25亿美元", "300万欧元"],
)
TERMS = (["10年", "3年", "18个月", "有期徒刑5年", "无期徒刑", "7年"], ["有期徒刑8年", "15个月"])
CRIMES = ["受贿", "诈骗", "逃税", "贪污", "行贿"]
NEWS = ["据报道，", "突发！", "消息称，", "", "", ""]
AFTERMATH = ["股价应声下跌", "引发外界关注", "员工人心惶惶", "市场一片哗然", "网友纷纷点赞"]


@dataclass(frozen=True)
class Span:
    text: str
    start: int


@dataclass
class Sentence:
    """Text built piece by piece, remembering where each piece starts."""

    parts: list[str] = field(default_factory=list)
    size: int = 0
    events: list[dict] = field(default_factory=list)

    def add(self, piece: str) -> Span:
        span = Span(piece, self.size)
        self.parts.append(piece)
        self.size += len(piece)
        return span

    def event(self, event_type: str, trigger: Span, *args: tuple[str, Span]) -> None:
        assert all(role in SCHEMA[event_type] for role, _ in args), (event_type, args)
        self.events.append(
            {
                "event_type": event_type,
                "trigger": trigger.text,
                "trigger_start_index": trigger.start,
                "arguments": [
                    {"role": role, "argument": s.text, "argument_start_index": s.start}
                    for role, s in args
                ],
            }
        )

    @property
    def text(self) -> str:
        return "".join(self.parts)


def joined(a: Span, b: Span) -> Span:
    """The span covering two adjacent pieces (a nested argument's parent)."""
    assert a.start + len(a.text) == b.start
    return Span(a.text + b.text, a.start)


class Fillers:
    """Draws fillers: train sees only the first list of each pair; dev also the second."""

    def __init__(self, rng: random.Random, dev: bool):
        self.rng, self.dev = rng, dev

    def pick(self, pair: tuple[list[str], list[str]], exclude: tuple[str, ...] = ()) -> str:
        seen, unseen = pair
        pool = unseen if self.dev and self.rng.random() < 0.03 else seen
        return self.rng.choice([x for x in pool if x not in exclude] or seen)

    def one(self, words: list[str]) -> str:
        return self.rng.choice(words)


Template = Callable[[Sentence, Fillers], None]


# ---- one event ---------------------------------------------------------------------------
def layoff_a(s: Sentence, f: Fillers) -> None:
    s.add(f.one(NEWS))
    t = s.add(f.pick(TIMES))
    s.add("，")
    c = s.add(f.pick(COMPANIES))
    s.add(f.one(["宣布", "计划", "将"]))
    tr = s.add(f.one(["裁员", "裁撤", "减员"]))
    n = s.add(f.pick(CROWDS))
    s.event(LAYOFF, tr, ("时间", t), ("裁员方", c), ("裁员人数", n))


def layoff_b(s: Sentence, f: Fillers) -> None:
    c = s.add(f.pick(COMPANIES))
    s.add(f.one(["再度", "大规模", "突然", ""]))
    tr = s.add(f.one(["裁员", "解雇", "裁掉"]))
    n = s.add(f.pick(CROWDS))
    s.add("，" + f.one(AFTERMATH))
    s.event(LAYOFF, tr, ("裁员方", c), ("裁员人数", n))


def layoff_c(s: Sentence, f: Fillers) -> None:
    n = s.add(f.pick(CROWDS))
    s.add("将被")
    tr = s.add(f.one(["裁员", "解雇"]))
    s.add("！")
    c = s.add(f.pick(COMPANIES) + "公司")
    t = s.add(f.pick(TIMES))
    s.add("宣布重组计划")
    s.event(LAYOFF, tr, ("时间", t), ("裁员方", c), ("裁员人数", n))


def layoff_d(s: Sentence, f: Fillers) -> None:
    s.add("受业绩拖累，")
    c = s.add(f.pick(COMPANIES))
    s.add("或将")
    tr = s.add("裁员")
    s.add("，涉及约")
    n = s.add(f.pick(CROWDS))
    s.event(LAYOFF, tr, ("裁员方", c), ("裁员人数", n))


def deal_a(s: Sentence, f: Fillers) -> None:
    b = s.add(f.pick(COMPANIES))
    s.add("以")
    p = s.add(f.pick(PRICES))
    tr = s.add(f.one(["收购", "并购", "买下"]))
    i = s.add(f.pick(COMPANIES, exclude=(b.text,)))
    s.event(DEAL, tr, ("收购方", b), ("出售价格", p), ("交易物", i))


def deal_b(s: Sentence, f: Fillers) -> None:
    t = s.add(f.pick(TIMES))
    s.add("，")
    b = s.add(f.pick(COMPANIES))
    s.add("宣布")
    tr = s.add(f.one(["收购", "拿下"]))
    seller = s.add(f.pick(COMPANIES, exclude=(b.text,)))
    i = joined(seller, s.add(f.pick(UNITS)))  # nested: the seller starts the traded item
    s.add("，交易金额达")
    p = s.add(f.pick(PRICES))
    s.event(
        DEAL, tr, ("时间", t), ("收购方", b), ("出售方", seller), ("交易物", i), ("出售价格", p)
    )


def deal_c(s: Sentence, f: Fillers) -> None:
    i = s.add(f.pick(COMPANIES))
    s.add("被")
    b = s.add(f.pick(COMPANIES, exclude=(i.text,)))
    tr = s.add(f.one(["收购", "并购"]))
    s.add("，作价")
    p = s.add(f.pick(PRICES))
    s.event(DEAL, tr, ("交易物", i), ("收购方", b), ("出售价格", p))


def deal_d(s: Sentence, f: Fillers) -> None:
    seller = s.add(f.pick(COMPANIES))
    s.add("将")
    i = s.add(f.pick(UNITS))
    tr = s.add("出售")
    s.add("给")
    b = s.add(f.pick(COMPANIES, exclude=(seller.text,)))
    s.event(DEAL, tr, ("出售方", seller), ("交易物", i), ("收购方", b))


def marry_a(s: Sentence, f: Fillers) -> None:
    s.add(f.one(["据报道，", "娱乐圈喜讯：", "记者获悉，"]))
    a = s.add(f.pick(PEOPLE))
    s.add(f.one(["与", "和"]))
    b = s.add(f.pick(PEOPLE, exclude=(a.text,)))
    t = s.add(f.pick(TIMES))
    tr = s.add(f.one(["结婚", "完婚", "大婚"]))
    s.event(MARRY, tr, ("结婚双方", a), ("结婚双方", b), ("时间", t))


def marry_b(s: Sentence, f: Fillers) -> None:
    s.add(f.one(["恭喜！", "官宣！", ""]))
    a = s.add(f.pick(PEOPLE))
    b = s.add(f.pick(PEOPLE, exclude=(a.text,)))  # two names side by side
    tr = s.add(f.one(["领证", "结婚"]))
    s.add("了，" + f.one(AFTERMATH))
    s.event(MARRY, tr, ("结婚双方", a), ("结婚双方", b))


def marry_c(s: Sentence, f: Fillers) -> None:
    a = s.add(f.pick(PEOPLE))
    s.add("自曝")
    t = s.add(f.pick(TIMES))
    s.add("已与圈外男友")
    tr = s.add("结婚")
    s.event(MARRY, tr, ("结婚双方", a), ("时间", t))


def win_a(s: Sentence, f: Fillers) -> None:
    c = s.add(f.pick(CHAMPIONS))
    s.add("在")
    y = s.add(f.pick(YEARS))
    m = joined(y, s.add(f.pick(CONTESTS)))  # nested: the year starts the contest's name
    s.add("中")
    tr = s.add(f.one(["夺冠", "称雄", "折桂"]))
    s.event(WIN, tr, ("冠军", c), ("夺冠赛事", m), ("时间", y))


def win_b(s: Sentence, f: Fillers) -> None:
    t = s.add(f.pick(TIMES))
    s.add("，")
    c = s.add(f.pick(PEOPLE))
    tr = s.add(f.one(["问鼎", "夺得"]))
    m = s.add(f.pick(CONTESTS))
    s.add("冠军" if tr.text == "夺得" else "")
    s.event(WIN, tr, ("时间", t), ("冠军", c), ("夺冠赛事", m))


def win_c(s: Sentence, f: Fillers) -> None:
    m = s.add(f.pick(CONTESTS))
    s.add("落幕，")
    c = s.add(f.pick(CHAMPIONS))
    s.add("击败")
    s.add(f.pick(CHAMPIONS, exclude=(c.text,)))  # the loser is no argument
    tr = s.add("夺冠")
    s.event(WIN, tr, ("夺冠赛事", m), ("冠军", c))


def jail_a(s: Sentence, f: Fillers) -> None:
    p = s.add(f.pick(PEOPLE))
    s.add("因" + f.one(CRIMES))
    tr = s.add(f.one(["入狱", "获刑"]))
    k = s.add(f.pick(TERMS))
    s.add("，" + f.one(["目前仍在服刑", "案件细节曝光", "令人唏嘘", "法院已作出终审判决"]))
    s.event(JAIL, tr, ("入狱者", p), ("刑期", k))


def jail_b(s: Sentence, f: Fillers) -> None:
    s.add(f.one(NEWS))
    t = s.add(f.pick(TIMES))
    s.add("，前")
    s.add(f.pick(COMPANIES) + "高管")  # a company that is no argument
    p = s.add(f.pick(PEOPLE))
    tr = s.add("被判")
    k = s.add(f.pick(TERMS))
    s.event(JAIL, tr, ("时间", t), ("入狱者", p), ("刑期", k))


# ---- two events ----------------------------------------------------------------------------
def layoff_and_buy(s: Sentence, f: Fillers) -> None:
    """One company both lays off and buys; the time belongs to both events."""
    c = s.add(f.pick(COMPANIES))
    t = s.add(f.pick(TIMES))
    tr1 = s.add("裁员")
    n = s.add(f.pick(CROWDS))
    s.add("，同时以")
    p = s.add(f.pick(PRICES))
    tr2 = s.add("收购")
    i = s.add(f.pick(COMPANIES, exclude=(c.text,)))
    s.event(LAYOFF, tr1, ("裁员方", c), ("时间", t), ("裁员人数", n))
    s.event(DEAL, tr2, ("收购方", c), ("时间", t), ("出售价格", p), ("交易物", i))


def bought_then_cut(s: Sentence, f: Fillers) -> None:
    """The company bought is the one that then lays off."""
    b = s.add(f.pick(COMPANIES))
    tr1 = s.add(f.one(["收购", "并购"]))
    i = s.add(f.pick(COMPANIES, exclude=(b.text,)))
    s.add("后，")
    c = s.add(i.text)
    s.add("随即")
    tr2 = s.add("裁员")
    n = s.add(f.pick(CROWDS))
    s.event(DEAL, tr1, ("收购方", b), ("交易物", i))
    s.event(LAYOFF, tr2, ("裁员方", c), ("裁员人数", n))


def long_and_short_name(s: Sentence, f: Fillers) -> None:
    """The same company as 'X公司' in one event and 'X' in the other."""
    name = f.pick(COMPANIES)
    c1 = s.add(name + "公司")
    tr1 = s.add("裁员")
    n = s.add(f.pick(CROWDS))
    s.add("，")
    c2 = s.add(name)
    s.add("此前刚")
    tr2 = s.add("买下")
    i = s.add(f.pick(COMPANIES, exclude=(name,)))
    s.event(LAYOFF, tr1, ("裁员方", c1), ("裁员人数", n))
    s.event(DEAL, tr2, ("收购方", c2), ("交易物", i))


def two_weddings(s: Sentence, f: Fillers) -> None:
    """Two events of the same type sharing the time."""
    t = s.add(f.pick(TIMES))
    s.add("，")
    a = s.add(f.pick(PEOPLE))
    s.add("与")
    b = s.add(f.pick(PEOPLE, exclude=(a.text,)))
    tr1 = s.add("结婚")
    s.add("，")
    c = s.add(f.pick(PEOPLE, exclude=(a.text, b.text)))
    s.add("和")
    d = s.add(f.pick(PEOPLE, exclude=(a.text, b.text, c.text)))
    s.add("也宣布")
    tr2 = s.add("完婚")
    s.event(MARRY, tr1, ("时间", t), ("结婚双方", a), ("结婚双方", b))
    s.event(MARRY, tr2, ("时间", t), ("结婚双方", c), ("结婚双方", d))


def two_titles(s: Sentence, f: Fillers) -> None:
    """Two events of the same type, same trigger word, nothing shared."""
    a = s.add(f.pick(CHAMPIONS))
    s.add("在")
    m1 = s.add(f.pick(CONTESTS))
    tr1 = s.add("夺冠")
    s.add("，")
    b = s.add(f.pick(CHAMPIONS, exclude=(a.text,)))
    s.add("则在")
    m2 = s.add(f.pick(CONTESTS, exclude=(m1.text,)))
    tr2 = s.add("夺冠")
    s.event(WIN, tr1, ("冠军", a), ("夺冠赛事", m1))
    s.event(WIN, tr2, ("冠军", b), ("夺冠赛事", m2))


def married_then_jailed(s: Sentence, f: Fillers) -> None:
    """One person, the sentence's subject, in two events of different types."""
    a = s.add(f.pick(PEOPLE))
    t = s.add(f.pick(YEARS))
    s.add("与")
    b = s.add(f.pick(PEOPLE, exclude=(a.text,)))
    tr1 = s.add("结婚")
    s.add("，次年因" + f.one(CRIMES))
    tr2 = s.add("入狱")
    k = s.add(f.pick(TERMS))
    s.event(MARRY, tr1, ("结婚双方", a), ("结婚双方", b), ("时间", t))
    s.event(JAIL, tr2, ("入狱者", a), ("刑期", k))


def two_deals(s: Sentence, f: Fillers) -> None:
    """Two deals with one time."""
    t = s.add(f.pick(TIMES))
    s.add("，")
    b1 = s.add(f.pick(COMPANIES))
    tr1 = s.add("收购")
    i1 = s.add(f.pick(COMPANIES, exclude=(b1.text,)))
    s.add("，")
    b2 = s.add(f.pick(COMPANIES, exclude=(b1.text, i1.text)))
    tr2 = s.add("并购")
    i2 = s.add(f.pick(COMPANIES, exclude=(b1.text, i1.text, b2.text)))
    s.event(DEAL, tr1, ("时间", t), ("收购方", b1), ("交易物", i1))
    s.event(DEAL, tr2, ("时间", t), ("收购方", b2), ("交易物", i2))


# ---- no event --------------------------------------------------------------------------------
def no_event(s: Sentence, f: Fillers) -> None:
    s.add(
        f.one(
            [
                f"{f.pick(COMPANIES)}发布{f.pick(YEARS)}财报，营收增长{f.one(['3', '12', '25'])}%",
                f"{f.pick(PEOPLE)}出席{f.pick(CONTESTS)}开幕式",
                f"{f.pick(COMPANIES)}否认{f.pick(TIMES)}将推出新手机",
                f"{f.pick(PEOPLE)}与{f.pick(PEOPLE)}同台演出，{f.one(AFTERMATH)}",
            ]
        )
    )


TEMPLATES: list[tuple[int, Template]] = [
    (4, layoff_a), (4, layoff_b), (3, layoff_c), (3, layoff_d),
    (4, deal_a), (4, deal_b), (3, deal_c), (3, deal_d),
    (4, marry_a), (3, marry_b), (2, marry_c),
    (4, win_a), (3, win_b), (3, win_c),
    (4, jail_a), (3, jail_b),
    (3, layoff_and_buy), (3, bought_then_cut), (3, long_and_short_name), (3, two_weddings),
    (3, two_titles), (3, married_then_jailed), (3, two_deals),
    (3, no_event),
]  # fmt: skip


def check(row: dict) -> None:
    text = row["text"]
    assert 10 <= len(text) <= 60, text
    for ev in row["event_list"]:
        spans = [(ev["trigger"], ev["trigger_start_index"])] + [
            (a["argument"], a["argument_start_index"]) for a in ev["arguments"]
        ]
        for span, start in spans:
            assert text[start : start + len(span)] == span, (text, span, start)


def make_rows(rng: random.Random, n: int, split: str, avoid: set[str]) -> list[dict]:
    fillers = Fillers(rng, dev=split == "dev")
    weights = [w for w, _ in TEMPLATES]
    rows: list[dict] = []
    while len(rows) < n:
        s = Sentence()
        rng.choices([t for _, t in TEMPLATES], weights)[0](s, fillers)
        if s.text in avoid or not 10 <= len(s.text) <= 60:
            continue
        avoid.add(s.text)
        row = {"id": f"{split}-{len(rows):04d}", "text": s.text, "event_list": s.events}
        check(row)
        rows.append(row)
    return rows


def write(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            # compact separators keep the committed files small
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("data/sample"))
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--n-train", type=int, default=1200)
    ap.add_argument("--n-dev", type=int, default=150)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    seen: set[str] = set()
    train = make_rows(rng, args.n_train, "train", seen)
    dev = make_rows(rng, args.n_dev, "dev", seen)
    train_chars = {c for r in train for c in r["text"]}
    unseen = sorted({c for r in dev for c in r["text"]} - train_chars)
    assert not unseen, f"dev characters missing from train: {unseen}"
    args.out.mkdir(parents=True, exist_ok=True)
    write(
        args.out / "duee_event_schema.json",
        [
            {"event_type": t, "role_list": [{"role": r} for r in roles], "class": t.split("-")[0]}
            for t, roles in SCHEMA.items()
        ],
    )
    write(args.out / "train.json", train)
    write(args.out / "dev.json", dev)
    for name, rows in (("train", train), ("dev", dev)):
        n_events = sum(len(r["event_list"]) for r in rows)
        multi = sum(len(r["event_list"]) > 1 for r in rows)
        empty = sum(not r["event_list"] for r in rows)
        print(
            f"{name}: {len(rows)} sentences, {n_events} events, {multi} with 2+ events, "
            f"{empty} with none"
        )


if __name__ == "__main__":
    main()
