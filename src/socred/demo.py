"""A generated demo population: shipped catalogs, one provider per domain, subjects and records.

Everything is derived from a seed, so the same seed gives the same population.
Identifiers are valid (check characters computed), names are synthetic.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from socred.domain import clock
from socred.domain.catalog import Catalog
from socred.domain.ids import org_code_check_char, resident_check_char, uscc_check_char
from socred.domain.scoring import select_catalog

if TYPE_CHECKING:
    from socred.service.platform import Platform

CATALOG_DIR = Path(__file__).parent / "catalogs"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

# Household-registration / registration-authority divisions used by the demo (GB/T 2260).
REGIONS = {
    "310101": "上海市黄浦区",
    "310104": "上海市徐汇区",
    "310115": "上海市浦东新区",
    "310114": "上海市嘉定区",
    "371082": "山东省荣成市",
    "110105": "北京市朝阳区",
    "440305": "深圳市南山区",
    "330106": "杭州市西湖区",
}
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍鹏辉玲建国建华志强丹红梅晨阳宇航思远嘉怡子涵浩然"
COMPANY_WORDS = [
    "华信",
    "东方",
    "瑞丰",
    "恒通",
    "金桥",
    "海润",
    "鼎盛",
    "安达",
    "新程",
    "蓝海",
    "博远",
    "中和",
    "长青",
    "天佑",
    "合众",
    "宏图",
    "万达",
    "兴业",
    "远航",
    "星河",
]
COMPANY_KINDS = [
    "科技有限公司",
    "贸易有限公司",
    "建设工程有限公司",
    "物流有限公司",
    "餐饮管理有限公司",
    "置业有限公司",
    "电子商务有限公司",
    "环保科技股份有限公司",
]
DOMAIN_PROVIDERS = {
    "judicial": ("demo.court", "人民法院执行局 People's Court enforcement bureau"),
    "government": ("demo.tax", "税务局 Tax bureau"),
    "commercial": ("demo.samr", "市场监督管理局 Market regulation administration"),
    "social": ("demo.civil", "公安交警与民政 Traffic police and civil affairs"),
}


def person_id(rng: random.Random, region: str) -> str:
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
    body = f"{region}{born:%Y%m%d}{rng.randrange(0, 1000):03d}"
    return body + resident_check_char(body)


def org_id(rng: random.Random, region: str) -> str:
    body8 = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
    org = body8 + org_code_check_char(body8)
    if any(c not in USCC_ALPHABET for c in org):
        return org_id(rng, region)
    first17 = "91" + region + org
    return first17 + uscc_check_char(first17)


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def company_name(rng: random.Random, region: str) -> str:
    city = REGIONS[region][:2].removesuffix("市")
    return f"{city}{rng.choice(COMPANY_WORDS)}{rng.choice(COMPANY_WORDS)}{rng.choice(COMPANY_KINDS)}"


def load_shipped_catalogs(platform: Platform) -> list[str]:
    refs = []
    for path in sorted(CATALOG_DIR.glob("*.yaml")):
        refs.append(platform.load_catalog_file(path))
    return refs


def _catalog_for(catalogs: list[Catalog], region: str, kind: str, today: date) -> Catalog:
    return select_catalog(catalogs, region, kind, today)


def generate_operations(
    catalogs: list[Catalog], subjects: int, records: int, seed: int, today: date
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(provider code, operation)`` pairs for a synthetic population."""
    rng = random.Random(seed)
    regions = list(REGIONS)
    people: list[tuple[str, str, str]] = []
    for i in range(subjects):
        region = rng.choice(regions)
        if i % 4 == 3:
            people.append((org_id(rng, region), company_name(rng, region), "organization"))
        else:
            people.append((person_id(rng, region), person_name(rng), "person"))
    by_kind: dict[tuple[str, str], list[Any]] = {}
    for n in range(records):
        sid, name, kind = people[rng.randrange(len(people)) if n >= len(people) else n]
        region = sid[:6] if kind == "person" else sid[2:8]
        cat = _catalog_for(catalogs, region, kind, today)
        key = (cat.ref, kind)
        if key not in by_kind:
            by_kind[key] = [c for c in cat.categories.values() if kind in c.subjects]
        choices = by_kind[key]
        if not choices:
            continue
        negative = [c for c in choices if c.points < 0]
        positive = [c for c in choices if c.points > 0]
        pool = negative if (rng.random() < 0.6 and negative) or not positive else positive
        category = rng.choice(pool)
        occurred = today - timedelta(days=rng.randrange(0, 900))
        provider = DOMAIN_PROVIDERS[category.domain][0]
        op: dict[str, Any] = {
            "record_id": f"{provider.split('.')[1].upper()}-{seed}-{n:08d}",
            "subject_id": sid,
            "subject_name": name,
            "category": category.code,
            "occurred_on": occurred.isoformat(),
            "case_number": f"({occurred.year})沪{rng.randrange(1, 99):02d}执{rng.randrange(1, 9999)}号"
            if category.domain == "judicial"
            else None,
            "summary": category.title,
        }
        if category.code.startswith("TRAFFIC"):
            op["attributes"] = {"plate": f"沪A{rng.randrange(10000, 99999)}"}
        yield provider, {k: v for k, v in op.items() if v is not None}


def populate(platform: Platform, subjects: int = 2000, records: int = 8000, seed: int = 7) -> dict[str, Any]:
    platform.init()
    refs = load_shipped_catalogs(platform)
    catalogs = platform.catalogs()
    from socred.store import repo

    with platform.engine.connect() as conn:
        existing = {p.code for p in repo.list_providers(conn)}
    domains: dict[str, set[str]] = {d: set() for d in DOMAIN_PROVIDERS}
    for c in catalogs:
        for cat in c.categories.values():
            domains[cat.domain].add(cat.code)
    keys: dict[str, str] = {}
    for domain, (code, name) in DOMAIN_PROVIDERS.items():
        if code not in existing and domains[domain]:
            keys[code] = platform.add_provider(code, name, sorted(domains[domain]))
    today = clock.today()
    per_provider: dict[str, list[dict[str, Any]]] = {}
    for provider, op in generate_operations(catalogs, subjects, records, seed, today):
        per_provider.setdefault(provider, []).append(op)
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    for provider, ops in per_provider.items():
        s = platform.ingest(provider, ((i + 1, op) for i, op in enumerate(ops)), today=today)
        totals["accepted"] += s.accepted
        totals["duplicates"] += s.duplicates
        totals["rejected"] += s.rejected
    return {
        "catalogs": refs,
        "providers": sorted(DOMAIN_PROVIDERS[d][0] for d in DOMAIN_PROVIDERS),
        "new_provider_keys": keys,
        **totals,
    }
