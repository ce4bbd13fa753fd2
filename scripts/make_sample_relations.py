"""Write a small, deterministic DuIE-format relation sample: schema, train and dev files.

Templated Chinese sentences over seven DuIE predicates with one to three triples each: a
subject with two objects, two predicates on one pair, an object before its subject, a person
who is the subject of one triple and the object of another, and a few sentences with none.
Lines are DuIE 1.0's (strings, no offsets); a sentence is kept only when each string's first
occurrence is the one meant, since that is where a reader places it. Dev reuses the
templates with partly unseen fillers made of characters that occur in train.

    python scripts/make_sample_relations.py --out data/sample-relation --seed 13
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

SCHEMA = {  # predicate: (subject_type, object_type), as in DuIE's all_50_schemas
    "作者": ("图书作品", "人物"),
    "主演": ("影视作品", "人物"),
    "导演": ("影视作品", "人物"),
    "出生地": ("人物", "地点"),
    "父亲": ("人物", "人物"),
    "总部地点": ("企业", "地点"),
    "创始人": ("企业", "人物"),
}


def words(line: str) -> list[str]:
    return line.split()


# (train fillers, fillers seen only in dev, made of characters that occur in train)
PEOPLE = (
    words(
        "张伟 王芳 李娜 刘洋 陈静 杨帆 赵磊 黄晓明 周杰伦 林志玲 孙杨 马龙 丁宁 高云翔 谢娜 李晨 "
        "吴京 徐峥 王宝强 金庸 莫言 余华 韩寒 沈从文 钱钟书 刘德华 梁朝伟 张国荣 任正非 雷军 "
        "马化腾 李彦宏 刘强东 柳传志 王兴 王传福 董明珠 陈忠实 路遥 林海音"
    ),
    words("张晨 王杰 李磊 刘芳 陈娜 吴强 林明"),
)
BOOKS = (
    words(
        "三体 活着 围城 平凡的世界 白鹿原 红高粱 天龙八部 射雕英雄传 长安乱 兄弟 边城 城南旧事 "
        "人生 许三观卖血记 鹿鼎记 三重门"
    ),
    words("长城 平凡的兄弟 英雄传"),
)
FILMS = (
    words(
        "功夫 战狼 流浪地球 大话西游 让子弹飞 无间道 英雄 霸王别姬 唐人街探案 我不是药神 "
        "疯狂的石头 人在囧途 少林足球 重庆森林"
    ),
    words("战狼英雄 大话石头 少林英雄"),
)
COMPANIES = (
    words("华为 小米 腾讯 阿里巴巴 百度 京东 联想 美团 网易 字节跳动 比亚迪 格力电器"),
    words("华腾 美度 京华"),
)
PLACES = (
    words("北京 上海 深圳 杭州 广州 成都 武汉 南京 西安 重庆 香港 台北 浙江海宁 山东高密 延安"),
    words("南海 西京 东京"),
)
YEARS = words("1962年 1978年 1985年 1990年 2003年 2010年 2016年")
JOBS = words("作家 演员 歌手 导演 企业家 运动员")


KINDS = {"p": PEOPLE, "b": BOOKS, "m": FILMS, "c": COMPANIES, "l": PLACES}
# (weight, pattern, triples): [a|b] is a choice; {p1} a filler of kind p (person), b (book),
# m (film), c (company), l (place), y (year) or j (job); then "subject predicate object, ..."
TEMPLATES: list[tuple[int, str, str]] = [
    (4, "《{b}》是{p}[创作的长篇小说|的代表作|所著的一部小说|写的散文集]", "b 作者 p"),
    (3, "{p}[的成名作|于{y}出版了|写下了]《{b}》[|，广受好评|，销量过百万]", "b 作者 p"),
    (2, "《{b1}》和《{b2}》都是{p}的作品", "b1 作者 p, b2 作者 p"),
    # one subject, two objects
    (4, "[电影|喜剧片|]《{m}》由{p1}[和|、|与]{p2}主演", "m 主演 p1, m 主演 p2"),
    (3, "{p}[主演的电影|领衔主演的]《{m}》于{y}上映", "m 主演 p"),  # the object first
    (3, "《{m}》是[由|]{p}[执导的喜剧片|导演的动作片|执导的一部电影]", "m 导演 p"),
    # two predicates on one pair
    (3, "{p}[自导自演的电影|自编自导自演的]《{m}》[票房大卖|获得好评|]", "m 导演 p, m 主演 p"),
    (2, "《{m}》由{p1}执导，{p2}、{p3}等主演", "m 导演 p1, m 主演 p2, m 主演 p3"),
    (4, "{p}，{y}[出生于|生于]{l}，中国{j}", "p 出生地 l"),
    (3, "出生于{l}的{p}是一名{j}", "p 出生地 l"),
    (3, "{p1}的父亲是[|著名{j}]{p2}", "p1 父亲 p2"),
    (3, "{p2}之子{p1}{y}出生于{l}", "p1 父亲 p2, p1 出生地 l"),
    (3, "{c}[总部位于|的总部设在|公司总部在]{l}", "c 总部地点 l"),
    (3, "{c}由{p}创立于{y}，总部设在{l}", "c 创始人 p, c 总部地点 l"),
    # a person both the subject of one triple and the object of another
    (3, "{p}出生于{l}，{y}创办了{c}", "p 出生地 l, c 创始人 p"),
    (1, "{p}出席了《{m}》的首映礼", ""),
    (1, "{p}在{l}度假，{c}发布新款手机", ""),
    (1, "《{b}》于{y}再版发行", ""),
]  # fmt: skip
CHOICE, SLOT = re.compile(r"\[([^\[\]]*)\]"), re.compile(r"\{(\w+)\}")


def render(rng: random.Random, dev: bool, pattern: str, spec: str) -> dict | None:
    """One DuIE line from a template, or None when a string's first occurrence is not the
    one meant (where a reader would place it): a repeated filler, or one inside another."""

    def pick(slot: str) -> str:
        if slot in ("y", "j"):
            return rng.choice(YEARS if slot == "y" else JOBS)
        seen, unseen = KINDS[slot[0]]
        return rng.choice(unseen if dev and rng.random() < 0.05 else seen)

    while m := CHOICE.search(pattern):
        pattern = pattern[: m.start()] + rng.choice(m.group(1).split("|")) + pattern[m.end() :]
    text, spans = "", {}
    for i, piece in enumerate(SLOT.split(pattern)):
        if i % 2:  # a slot
            spans[piece] = (pick(piece), len(text))
            piece = spans[piece][0]
        text += piece
    triples = [tuple(t.split()) for t in spec.split(",") if t.strip()]
    named = {x for s, _, o in triples for x in (s, o)}
    if any(text.find(spans[x][0]) != spans[x][1] for x in named):
        return None
    spo_list = [
        {
            "predicate": p,
            "object_type": SCHEMA[p][1],
            "subject_type": SCHEMA[p][0],
            "object": spans[o][0],
            "subject": spans[s][0],
        }
        for s, p, o in triples
    ]
    return {"text": text, "spo_list": spo_list}


def make_rows(rng: random.Random, n: int, dev: bool, avoid: set[str]) -> list[dict]:
    weights = [w for w, _, _ in TEMPLATES]
    rows: list[dict] = []
    while len(rows) < n:
        row = render(rng, dev, *rng.choices(TEMPLATES, weights)[0][1:])
        if row is None or row["text"] in avoid:
            continue
        avoid.add(row["text"])
        rows.append(row)
    return rows


def write(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("data/sample-relation"))
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--n-train", type=int, default=800)
    ap.add_argument("--n-dev", type=int, default=150)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    seen: set[str] = set()
    train = make_rows(rng, args.n_train, False, seen)
    dev = make_rows(rng, args.n_dev, True, seen)
    unseen = sorted({c for r in dev for c in r["text"]} - {c for r in train for c in r["text"]})
    assert not unseen, f"dev characters missing from train: {unseen}"
    args.out.mkdir(parents=True, exist_ok=True)
    schema = [{"object_type": o, "predicate": p, "subject_type": s} for p, (s, o) in SCHEMA.items()]
    write(args.out / "all_schemas", schema)
    write(args.out / "train.json", train)
    write(args.out / "dev.json", dev)
    for name, rows in (("train", train), ("dev", dev)):
        n = sum(len(r["spo_list"]) for r in rows)
        multi = sum(len(r["spo_list"]) > 1 for r in rows)
        empty = sum(not r["spo_list"] for r in rows)
        print(f"{name}: {len(rows)} sentences, {n} triples, {multi} with 2+, {empty} with none")


if __name__ == "__main__":
    main()
