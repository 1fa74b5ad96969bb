"""Synthetic national data at scale: ``socred demo --subjects N --records M --out DIR``.

Streams Parquet files of operations (records.md) for millions of subjects and hundreds of
millions of records in bounded memory: records are generated in vectorised chunks (numpy and
pyarrow), and every field of a record — and of its subject — is a pure function of the seed and
its index (a counter-based hash), so nothing but the current chunk is ever held in memory and
any record can be regenerated on its own (the later corrections, retractions and repairs are).

What the data looks like:

* **subjects**: ~85 % persons with valid resident identity numbers (GB 11643: real division codes
  weighted by province population, dates of birth 1935-2007, MOD 11-2 check characters) and
  ~15 % organizations with valid unified social credit codes (GB 32100 / GB 11714 check
  characters; enterprises, individual businesses, social organizations, public institutions);
  synthetic Chinese names.
* **records**: every subject gets one record, the rest are spread heavy-tailed (a few subjects
  have many records). The category is drawn from the shipped catalog that serves the subject's
  region (Shanghai, Rongcheng, else national) for its kind, with relative frequencies that follow
  real volumes (parking and traffic offences and minor administrative penalties are common,
  dishonest judgment debtors rarer, national honours rare). Dates are skewed to the last year;
  judicial records carry a case number, vehicle offences a plate in ``attributes``.
* **changes** (``--changes``, a fraction of the records): corrections, retractions and credit
  repairs of earlier records, in separate files to be applied after the submissions.

Layout of ``DIR``::

    manifest.json                       what was generated, the providers and their categories,
                                        the files in the order to ingest them
    <provider>/submit-00000.parquet     submissions of one provider (at most --rows-per-file rows)
    <provider>/changes-00000.parquet    corrections, retractions and repairs (if --changes > 0)
    records/part-00000.parquet          with --projection: the records projection those operations
                                        produce (the schema of ``socred export``), for batch
                                        benchmarks without a database
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _pc
import pyarrow.parquet as pq
import yaml

from socred.demo import CATALOG_DIR, COMPANY_KINDS, COMPANY_WORDS, DOMAIN_PROVIDERS, GIVEN, SURNAMES
from socred.domain import clock
from socred.domain.catalog import Catalog, parse_catalog
from socred.domain.scoring import select_catalog

pc: Any = _pc  # pyarrow's stubs do not declare the generated compute functions

__all__ = ["CHANGES_SCHEMA", "PROJECTION_SCHEMA", "SUBMIT_SCHEMA", "ScaleSpec", "write_dataset"]

Array = np.ndarray[Any, Any]

SUBMIT_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("subject_id", pa.string()),
        ("subject_name", pa.string()),
        ("category", pa.string()),
        ("occurred_on", pa.string()),
        ("case_number", pa.string()),
        ("summary", pa.string()),
        ("attributes", pa.string()),
    ]
)
CHANGES_SCHEMA = pa.schema(
    [
        ("op", pa.string()),
        ("record_id", pa.string()),
        ("occurred_on", pa.string()),
        ("summary", pa.string()),
        ("repaired_on", pa.string()),
        ("reason", pa.string()),
    ]
)
#: The records projection as ``socred export`` writes it (service/batch.py).
PROJECTION_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("source", pa.string()),
        ("subject_id", pa.string()),
        ("kind", pa.string()),
        ("region", pa.string()),
        ("category", pa.string()),
        ("occurred_on", pa.date32()),
        ("retracted", pa.bool_()),
        ("repaired_on", pa.date32()),
    ]
)

# ---------------------------------------------------------------- reference data

# Province (GB/T 2260 first two digits): plate/court abbreviation, population in millions (2020 census).
PROVINCES: dict[str, tuple[str, float]] = {
    "11": ("京", 21.9),
    "12": ("津", 13.9),
    "13": ("冀", 74.6),
    "14": ("晋", 34.9),
    "15": ("蒙", 24.0),
    "21": ("辽", 42.6),
    "22": ("吉", 24.1),
    "23": ("黑", 31.9),
    "31": ("沪", 24.9),
    "32": ("苏", 84.7),
    "33": ("浙", 64.6),
    "34": ("皖", 61.0),
    "35": ("闽", 41.5),
    "36": ("赣", 45.2),
    "37": ("鲁", 101.5),
    "41": ("豫", 99.4),
    "42": ("鄂", 57.8),
    "43": ("湘", 66.4),
    "44": ("粤", 126.0),
    "45": ("桂", 50.1),
    "46": ("琼", 10.1),
    "50": ("渝", 32.1),
    "51": ("川", 83.7),
    "52": ("贵", 38.6),
    "53": ("云", 47.2),
    "54": ("藏", 3.6),
    "61": ("陕", 39.5),
    "62": ("甘", 25.0),
    "63": ("青", 5.9),
    "64": ("宁", 7.2),
    "65": ("新", 25.9),
}

# County-level divisions (code, city used in organization names). A province's population is
# spread evenly over its divisions here, except the named weights (millions).
DIVISIONS: tuple[tuple[str, str], ...] = (
    ("110101", "北京"), ("110102", "北京"), ("110105", "北京"), ("110106", "北京"), ("110108", "北京"),
    ("110112", "北京"), ("110114", "北京"), ("110115", "北京"),
    ("120101", "天津"), ("120104", "天津"), ("120116", "天津"),
    ("130102", "石家"), ("130104", "石家"), ("130203", "唐山"), ("130602", "保定"), ("131002", "廊坊"),
    ("140105", "太原"), ("140106", "太原"), ("140213", "大同"),
    ("150102", "呼和"), ("150203", "包头"),
    ("210102", "沈阳"), ("210202", "大连"), ("210204", "大连"),
    ("220102", "长春"), ("220202", "吉林"),
    ("230102", "哈尔"), ("230103", "哈尔"), ("230602", "大庆"),
    ("310101", "上海"), ("310104", "上海"), ("310105", "上海"), ("310106", "上海"), ("310107", "上海"),
    ("310109", "上海"), ("310110", "上海"), ("310112", "上海"), ("310113", "上海"), ("310114", "上海"),
    ("310115", "上海"), ("310116", "上海"), ("310117", "上海"), ("310118", "上海"), ("310120", "上海"),
    ("310151", "上海"),
    ("320102", "南京"), ("320106", "南京"), ("320205", "无锡"), ("320506", "苏州"), ("320508", "苏州"),
    ("320583", "昆山"),
    ("330102", "杭州"), ("330106", "杭州"), ("330110", "杭州"), ("330203", "宁波"), ("330302", "温州"),
    ("340102", "合肥"), ("340104", "合肥"), ("340202", "芜湖"),
    ("350102", "福州"), ("350203", "厦门"), ("350582", "晋江"),
    ("360102", "南昌"), ("360702", "赣州"),
    ("370102", "济南"), ("370112", "济南"), ("370202", "青岛"), ("370212", "青岛"), ("370602", "烟台"),
    ("370702", "潍坊"), ("371002", "威海"), ("371082", "荣成"),
    ("410102", "郑州"), ("410105", "郑州"), ("410302", "洛阳"), ("411302", "南阳"),
    ("420102", "武汉"), ("420106", "武汉"), ("420111", "武汉"), ("420502", "宜昌"),
    ("430102", "长沙"), ("430104", "长沙"), ("430302", "湘潭"),
    ("440103", "广州"), ("440104", "广州"), ("440106", "广州"), ("440303", "深圳"), ("440304", "深圳"),
    ("440305", "深圳"), ("440306", "深圳"), ("441900", "东莞"), ("440604", "佛山"),
    ("450102", "南宁"), ("450302", "桂林"),
    ("460105", "海口"), ("460202", "三亚"),
    ("500103", "重庆"), ("500105", "重庆"), ("500112", "重庆"), ("500101", "万州"),
    ("510104", "成都"), ("510107", "成都"), ("510116", "成都"), ("510703", "绵阳"),
    ("520102", "贵阳"), ("520302", "遵义"),
    ("530102", "昆明"), ("530103", "昆明"),
    ("540102", "拉萨"),
    ("610102", "西安"), ("610113", "西安"), ("610402", "咸阳"),
    ("620102", "兰州"),
    ("630102", "西宁"),
    ("640104", "银川"),
    ("650102", "乌鲁"), ("650104", "乌鲁"),
)  # fmt: skip
DIVISION_WEIGHTS = {"371082": 0.71}  # Rongcheng: 0.71 million inhabitants

# Relative yearly volumes of the shipped categories (unlisted codes: 1 / |points|).
FREQUENCY: dict[str, float] = {
    # everyday offences and minor penalties: most of the volume
    "TRAFFIC_VIOLATION": 20.0,
    "ILLEGAL_PARKING": 15.0,
    "ADMIN_PENALTY_MINOR": 8.0,
    "TRAFFIC_HONKING": 6.0,
    "WASTE_SORTING_VIOLATION": 5.0,
    "ADMIN_PENALTY_GENERAL": 3.0,
    "LATE_UTILITY_FEES": 3.0,
    "METRO_FARE_EVASION": 2.0,
    "BUSINESS_ABNORMAL_OPERATION": 3.0,
    # good information
    "VOLUNTEER_SERVICE": 14.0,
    "ADMIN_LICENCE_GRANTED": 10.0,
    "A_GRADE_TAXPAYER": 1.5,
    "BLOOD_DONATION": 4.0,
    "CHARITABLE_DONATION": 3.0,
    "COMMENDATION": 0.8,
    "VOLUNTEER_SERVICE_OUTSTANDING": 0.5,
    "NATIONAL_HONOUR": 0.02,
    "MODEL_WORKER_HONOUR": 0.02,
    # arrears and breaches
    "BANK_LOAN_ARREARS": 2.0,
    "TAX_ARREARS": 1.5,
    "SOCIAL_INSURANCE_ARREARS": 1.0,
    "HOUSING_FUND_ARREARS": 0.8,
    "CONTRACT_NONPERFORMANCE": 1.0,
    "CONTRACT_BREACH_JUDGMENT": 1.0,
    "RENTAL_HOUSING_VIOLATION": 0.5,
    # serious and rare: a few subjects in a thousand end up on a black list
    "DRUNK_DRIVING": 0.4,
    "UTILITY_ARREARS_JUDGMENT": 0.3,
    "ADMIN_PENALTY_SERIOUS": 0.2,
    "COUNTERFEIT_GOODS": 0.2,
    "DISHONEST_JUDGMENT_DEBTOR": 0.1,
    "UTILITY_THEFT": 0.1,
    "SERIOUS_ILLEGAL_DISHONEST_ENTERPRISE": 0.05,
    "MAJOR_TAX_VIOLATION": 0.03,
    "UTILITY_EQUIPMENT_DESTRUCTION": 0.03,
}
VEHICLE_CATEGORIES = frozenset({"TRAFFIC_HONKING", "TRAFFIC_VIOLATION", "ILLEGAL_PARKING", "DRUNK_DRIVING"})

# Unified social credit codes: (registration authority + organization type, share).
ORG_TYPES: tuple[tuple[str, float], ...] = (
    ("91", 0.70),  # market regulation: enterprise
    ("92", 0.20),  # market regulation: individual business
    ("93", 0.02),  # market regulation: farmers' cooperative
    ("51", 0.02),  # civil affairs: social organization
    ("52", 0.01),  # civil affairs: private non-enterprise unit
    ("12", 0.03),  # organs: public institution
    ("Y1", 0.02),  # other authorities
)
ORG_SHARE = 0.15
RETRACT_REASONS = ("wrongly attributed subject", "duplicate of another record", "decision revoked on review")
REPAIR_REASONS = ("obligations performed; public credit commitment made", "penalty paid and act corrected")

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_BYTES = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
_USCC_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
# GB 11714 value of each alphabet character (digits 0-9, letters A-Z -> 10-35).
_ORG_VALUE = np.array([int(ch, 36) for ch in USCC_ALPHABET], dtype=np.int64)
_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_RES_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
_RES_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
_BIRTH_FIRST = date(1935, 1, 1)
_BIRTH_DAYS = (date(2007, 12, 31) - _BIRTH_FIRST).days + 1
_EPOCH = date(1970, 1, 1)

# ---------------------------------------------------------------- counter-based randomness

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: Array) -> Array:
    """splitmix64's finaliser: a bijective, well-mixed 64-bit hash of each element."""
    z = x.astype(np.uint64, copy=True)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


class _Stream:
    """Independent pseudo-random streams keyed by (seed, purpose) and indexed by a counter."""

    def __init__(self, seed: int) -> None:
        self.seed = np.uint64(_mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0])

    def bits(self, salt: int, idx: Array) -> Array:
        key = np.uint64((salt * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) ^ self.seed
        return _mix(idx.astype(np.uint64) * np.uint64(0xD1B54A32D192ED03) + key)

    def unit(self, salt: int, idx: Array) -> Array:
        """Uniform floats in [0, 1)."""
        return (self.bits(salt, idx) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))

    def below(self, salt: int, idx: Array, n: int) -> Array:
        """Uniform integers in [0, n)."""
        return (self.bits(salt, idx) % np.uint64(n)).astype(np.int64)


def _coprime_step(n: int, start: int) -> int:
    """An odd multiplier near ``start`` that is coprime with ``n`` (an affine bijection mod n)."""
    a = start | 1
    while math.gcd(a, n) != 1:
        a += 2
    return a % n if n > 1 else 0


# ---------------------------------------------------------------- vectorised strings


def _digits(values: Array, width: int) -> Array:
    """Zero-padded decimal digits of non-negative integers as an (n, width) matrix of ASCII codes."""
    v = values.astype(np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((v[:, None] // powers[None, :]) % 10 + 48).astype(np.uint8)


def _fixed(mat: Array) -> pa.Array:
    """Rows of an (n, w) ASCII matrix as a string array."""
    n, w = mat.shape
    buf = pa.py_buffer(np.ascontiguousarray(mat, dtype=np.uint8).tobytes())
    return (
        pa.FixedSizeBinaryArray.from_buffers(pa.binary(w), n, [None, buf]).cast(pa.binary()).cast(pa.string())
    )


def _pick(values: Sequence[str], idx: Array) -> pa.Array:
    return pa.array(list(values), pa.string()).take(pa.array(idx, pa.int64()))


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _int_str(values: Array) -> pa.Array:
    return pa.array(values, pa.int64()).cast(pa.string())


def _iso(days: Array) -> pa.Array:
    """Days since 1970-01-01 as ISO date strings."""
    return pa.array(days.astype(np.int32), pa.date32()).cast(pa.string())


def _choose(cum: Array, u: Array) -> Array:
    """Index into a cumulative weight table (normalised to end at 1) for uniform ``u``."""
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)


def _cumulative(weights: Sequence[float]) -> Array:
    w = np.asarray(weights, dtype=np.float64)
    c = np.cumsum(w / w.sum())
    c[-1] = 1.0
    return c


# ---------------------------------------------------------------- the population


@dataclass(frozen=True)
class ScaleSpec:
    subjects: int
    records: int
    seed: int = 7
    today: date | None = None
    changes: float = 0.0
    projection: bool = False
    rows_per_file: int = 2_000_000
    chunk: int = 500_000


class _Population:
    """Subjects and records as pure functions of their index."""

    def __init__(self, spec: ScaleSpec, catalogs: list[Catalog]) -> None:
        self.spec = spec
        self.today = spec.today or clock.today()
        self.today_days = (self.today - _EPOCH).days
        self.rs = _Stream(spec.seed)
        self.n_subjects = max(1, spec.subjects)
        self.n_records = max(0, spec.records)
        # divisions, weighted by population
        counts: dict[str, int] = {}
        for code, _ in DIVISIONS:
            counts[code[:2]] = counts.get(code[:2], 0) + (0 if code in DIVISION_WEIGHTS else 1)
        weights = []
        for code, _ in DIVISIONS:
            prov = PROVINCES[code[:2]][1]
            fixed = DIVISION_WEIGHTS.get(code)
            weights.append(fixed if fixed is not None else (prov - _fixed_in(code[:2])) / counts[code[:2]])
        self.div_cum = _cumulative(weights)
        self.div_codes = [c for c, _ in DIVISIONS]
        self.div_city = [city for _, city in DIVISIONS]
        self.div_abbr = [PROVINCES[c[:2]][0] for c, _ in DIVISIONS]
        self.div_digits = np.array([[ord(ch) for ch in c] for c, _ in DIVISIONS], dtype=np.uint8)
        self.org_cum = _cumulative([w for _, w in ORG_TYPES])
        self.org_prefix = np.array(
            [[USCC_ALPHABET.index(ch) for ch in p] for p, _ in ORG_TYPES], dtype=np.int64
        )
        surnames = list(dict.fromkeys(SURNAMES))
        self.surnames = surnames
        self.surname_cum = _cumulative([1.0 / (r + 1) ** 0.9 for r in range(len(surnames))])
        self.given = list(dict.fromkeys(GIVEN))
        # catalogs: which one serves each division, the categories per (catalog, kind)
        self.catalogs = catalogs
        # the catalog scoring each division's persons (column 0) and organizations (column 1) today
        self.div_catalog = np.array(
            [
                [_serving(catalogs, code, kind, self.today) for kind in ("person", "organization")]
                for code in self.div_codes
            ],
            dtype=np.int64,
        )
        self.tables: list[tuple[list[str], Array]] = []
        for cat in catalogs:
            for kind in ("person", "organization"):
                cats = [c for c in cat.categories.values() if kind in c.subjects]
                codes = [c.code for c in cats]
                w = [FREQUENCY.get(c.code, 1.0 / abs(c.points)) for c in cats]
                self.tables.append((codes, _cumulative(w) if codes else np.ones(1)))
        self.all_codes = sorted({c for codes, _ in self.tables for c in codes})
        self.code_index = {c: i for i, c in enumerate(self.all_codes)}
        titles: dict[str, str] = {}
        domains: dict[str, str] = {}
        for cat in catalogs:
            for c in cat.categories.values():
                titles.setdefault(c.code, c.title)
                domains.setdefault(c.code, c.domain)
        self.titles = [titles[c] for c in self.all_codes]
        self.providers = [DOMAIN_PROVIDERS[d][0] for d in ("judicial", "government", "commercial", "social")]
        self.code_provider = np.array(
            [self.providers.index(DOMAIN_PROVIDERS[domains[c]][0]) for c in self.all_codes], dtype=np.int64
        )
        self.code_judicial = np.array([domains[c] == "judicial" for c in self.all_codes])
        self.code_vehicle = np.array([c in VEHICLE_CATEGORIES for c in self.all_codes])
        self.prefix = {p: p.split(".")[-1].upper() for p in self.providers}
        # affine bijections: persons over (birth day, sequence), organization bodies, change selection
        self.person_space = _BIRTH_DAYS * 1000
        self.person_a = _coprime_step(self.person_space, 7_919_311)
        self.org_space = 31**6
        self.org_a = _coprime_step(self.org_space, 5_003_321)
        n = max(1, self.n_records)
        self.n_changes = min(n, round(self.n_records * max(0.0, spec.changes)))
        self.change_a = _coprime_step(n, 1_000_003)
        self.change_b = int(self.rs.below(99, np.array([0]), n)[0])
        self.change_ainv = pow(self.change_a, -1, n) if n > 1 else 0

    # --- subjects

    def subject_fields(self, idx: Array) -> dict[str, Any]:
        """id, name, kind (0 person, 1 organization), division index of subjects ``idx``."""
        rs = self.rs
        n = len(idx)
        div = _choose(self.div_cum, rs.unit(1, idx))
        is_org = rs.unit(2, idx) < ORG_SHARE
        ids = np.empty((n, 18), dtype=np.uint8)
        # persons: division, date of birth, sequence (odd for men), MOD 11-2 check character
        p = (idx.astype(np.int64) * self.person_a + 12_345) % self.person_space
        born = np.datetime64(_BIRTH_FIRST.isoformat()) + (p // 1000).astype("timedelta64[D]")
        years = born.astype("datetime64[Y]").astype(np.int64) + 1970
        months = born.astype("datetime64[M]").astype(np.int64) % 12 + 1
        days = (born - born.astype("datetime64[M]")).astype(np.int64) + 1
        ids[:, 0:6] = self.div_digits[div]
        ids[:, 6:10] = _digits(years, 4)
        ids[:, 10:12] = _digits(months, 2)
        ids[:, 12:14] = _digits(days, 2)
        ids[:, 14:17] = _digits(p % 1000, 3)
        s = (ids[:, :17].astype(np.int64) - 48) @ _RES_WEIGHTS % 11
        ids[:, 17] = _RES_CHECK[s]
        # organizations: authority and type, division, GB 11714 organization code, MOD 31 check
        orgs = np.flatnonzero(is_org)
        if len(orgs):
            oidx = idx[orgs]
            v = np.empty((len(orgs), 17), dtype=np.int64)
            v[:, 0:2] = self.org_prefix[_choose(self.org_cum, rs.unit(3, oidx))]
            v[:, 2:8] = self.div_digits[div[orgs]].astype(np.int64) - 48
            body = (oidx.astype(np.int64) * self.org_a + 777) % self.org_space
            new_style = rs.unit(4, oidx) < 0.6  # codes issued since 2015 start with MA
            head = np.where(
                new_style[:, None], np.array([[21, 10]]), rs.below(5, oidx, 31 * 31)[:, None] // [31, 1] % 31
            )
            v[:, 8:10] = head
            v[:, 10:16] = body[:, None] // (31 ** np.arange(5, -1, -1, dtype=np.int64))[None, :] % 31
            c = 11 - (_ORG_VALUE[v[:, 8:16]] @ _ORG_WEIGHTS) % 11
            v[:, 16] = np.where(c == 11, 0, np.where(c == 10, USCC_ALPHABET.index("X"), c))
            check = (31 - (v @ _USCC_WEIGHTS) % 31) % 31
            ids[orgs, :17] = _USCC_BYTES[v]
            ids[orgs, 17] = _USCC_BYTES[check]
        # names
        surname = _pick(self.surnames, _choose(self.surname_cum, rs.unit(6, idx)))
        g1 = _pick(self.given, rs.below(7, idx, len(self.given)))
        two = rs.unit(8, idx) < 0.7
        g2 = _pick(["", *self.given], np.where(two, rs.below(9, idx, len(self.given)) + 1, 0))
        person_name = _join(surname, g1, g2)
        org_name = _join(
            _pick(self.div_city, div),
            _pick(COMPANY_WORDS, rs.below(10, idx, len(COMPANY_WORDS))),
            _pick(COMPANY_WORDS, rs.below(11, idx, len(COMPANY_WORDS))),
            _pick(COMPANY_KINDS, rs.below(12, idx, len(COMPANY_KINDS))),
        )
        name = pc.if_else(pa.array(is_org), org_name, person_name)
        return {"id": _fixed(ids), "name": name, "org": is_org, "div": div}

    # --- records

    def record_subjects(self, j: Array) -> Array:
        """The subject of each record: one record per subject first, then heavy-tailed."""
        n = self.n_subjects
        extra = np.minimum((n * self.rs.unit(20, j) ** 3).astype(np.int64), n - 1)
        return np.where(j < n, j, extra)

    def records(self, j: Array) -> dict[str, Any]:
        rs = self.rs
        subj_idx = self.record_subjects(j)
        s = self.subject_fields(subj_idx)
        org = s["org"].astype(np.int64)
        table = self.div_catalog[s["div"], org] * 2 + org
        code = np.zeros(len(j), dtype=np.int64)
        u = rs.unit(21, j)
        for t in np.unique(table):
            rows = np.flatnonzero(table == t)
            codes, cum = self.tables[int(t)]
            local = _choose(cum, u[rows])
            code[rows] = np.array([self.code_index[c] for c in codes], dtype=np.int64)[local]
        # occurred: mostly within the last year, a tail over three years
        age = np.minimum((-np.log1p(-rs.unit(22, j)) * 240).astype(np.int64), 3 * 365)
        occurred = self.today_days - age
        provider = self.code_provider[code]
        return {"j": j, "subject": s, "code": code, "occurred": occurred, "provider": provider}

    def record_ids(self, provider: int, j: Array) -> pa.Array:
        prefix = f"{self.prefix[self.providers[provider]]}-{self.spec.seed}-"
        return _join(prefix, _fixed(_digits(j, 10)))

    def submit_table(self, rec: dict[str, Any], rows: Array, provider: int) -> pa.Table:
        rs = self.rs
        j = rec["j"][rows]
        s = rec["subject"]
        code = rec["code"][rows]
        occurred = rec["occurred"][rows]
        div = s["div"][rows]
        take = pa.array(rows, pa.int64())
        judicial = self.code_judicial[code]
        years = (np.datetime64("1970-01-01") + occurred.astype("timedelta64[D]")).astype("datetime64[Y]")
        case = _join(
            "(",
            _int_str(years.astype(np.int64) + 1970),
            ")",
            _pick(self.div_abbr, div),
            _fixed(_digits(rs.below(30, j, 20) + 1, 2)),
            "执",
            _int_str(rs.below(31, j, 9999) + 1),
            "号",
        )
        vehicle = self.code_vehicle[code]
        letters = "ABCDEFGHJKLMNPQRSTUVWXY"
        plate = _join(
            '{"plate":"',
            _pick(self.div_abbr, div),
            _pick(list(letters), rs.below(32, j, len(letters))),
            _fixed(_digits(rs.below(33, j, 100_000), 5)),
            '"}',
        )
        null = pa.nulls(len(rows), pa.string())
        return pa.Table.from_arrays(
            [
                self.record_ids(provider, j),
                s["id"].take(take),
                s["name"].take(take),
                _pick(self.all_codes, code),
                _iso(occurred),
                pc.if_else(pa.array(judicial), case, null),
                _pick(self.titles, code),
                pc.if_else(pa.array(vehicle), plate, null),
            ],
            schema=SUBMIT_SCHEMA,
        )

    def projection_table(self, rec: dict[str, Any]) -> pa.Table:
        s = rec["subject"]
        n = len(rec["j"])
        occurred = rec["occurred"].copy()
        retracted = np.zeros(n, dtype=bool)
        repaired = np.full(n, -1, dtype=np.int64)
        if self.n_changes:
            k = (self.change_ainv * ((rec["j"] - self.change_b) % self.n_records)) % self.n_records
            hit = np.flatnonzero(k < self.n_changes)
            if len(hit):
                ch = self.change_fields(k[hit], occurred[hit])
                retracted[hit] = ch["op"] == 1
                has_rep = ch["op"] == 2
                repaired[hit[has_rep]] = ch["repaired"][has_rep]
                moved = (ch["op"] == 0) & ch["moves_date"]
                occurred[hit[moved]] = ch["new_occurred"][moved]
        region = pc.utf8_slice_codeunits(s["id"], 0, 6)
        org_region = pc.utf8_slice_codeunits(s["id"], 2, 8)
        rep = pa.array(np.where(repaired >= 0, repaired, 0).astype(np.int32), pa.date32())
        source = pa.array(self.providers, pa.string()).take(pa.array(rec["provider"], pa.int64()))
        j = rec["j"]
        rid = pc.if_else(
            pa.array(rec["provider"] == 0),
            self.record_ids(0, j),
            pc.if_else(
                pa.array(rec["provider"] == 1),
                self.record_ids(1, j),
                pc.if_else(pa.array(rec["provider"] == 2), self.record_ids(2, j), self.record_ids(3, j)),
            ),
        )
        return pa.Table.from_arrays(
            [
                rid,
                source,
                s["id"],
                pc.if_else(pa.array(s["org"]), pa.scalar("organization"), pa.scalar("person")),
                pc.if_else(pa.array(s["org"]), org_region, region),
                _pick(self.all_codes, rec["code"]),
                pa.array(occurred.astype(np.int32), pa.date32()),
                pa.array(retracted),
                pc.if_else(pa.array(repaired >= 0), rep, pa.nulls(n, pa.date32())),
            ],
            schema=PROJECTION_SCHEMA,
        )

    # --- changes

    def change_records(self, k: Array) -> Array:
        return (self.change_a * k + self.change_b) % self.n_records

    def change_fields(self, k: Array, occurred: Array) -> dict[str, Array]:
        """Change number ``k`` (of record ``change_records(k)``, which occurred on ``occurred``)."""
        rs = self.rs
        u = rs.unit(40, k)
        op = np.where(u < 0.45, 0, np.where(u < 0.75, 1, 2))  # correct, retract, repair
        span = np.maximum(self.today_days - occurred + 1, 1)
        repaired = occurred + (rs.unit(41, k) * span).astype(np.int64)
        moves = rs.unit(42, k) < 0.5
        new_occ = occurred - 1 - rs.below(43, k, 30)
        return {"op": op, "repaired": repaired, "moves_date": moves, "new_occurred": new_occ}

    def changes_table(self, k: Array) -> tuple[pa.Table, Array]:
        rs = self.rs
        j = self.change_records(k)
        rec = self.records(j)
        ch = self.change_fields(k, rec["occurred"])
        op = ch["op"]
        provider = rec["provider"]
        rid = pc.if_else(
            pa.array(provider == 0),
            self.record_ids(0, j),
            pc.if_else(
                pa.array(provider == 1),
                self.record_ids(1, j),
                pc.if_else(pa.array(provider == 2), self.record_ids(2, j), self.record_ids(3, j)),
            ),
        )
        n = len(k)
        null = pa.nulls(n, pa.string())
        is_corr = op == 0
        moves = is_corr & ch["moves_date"]
        edits_summary = is_corr & ~ch["moves_date"]
        summary = _join(_pick(self.titles, rec["code"]), "（更正 corrected）")
        reasons = pc.if_else(
            pa.array(op == 1),
            _pick(RETRACT_REASONS, rs.below(44, k, len(RETRACT_REASONS))),
            _pick(REPAIR_REASONS, rs.below(45, k, len(REPAIR_REASONS))),
        )
        table = pa.Table.from_arrays(
            [
                _pick(("correct", "retract", "repair"), op),
                rid,
                pc.if_else(pa.array(moves), _iso(ch["new_occurred"]), null),
                pc.if_else(pa.array(edits_summary), summary, null),
                pc.if_else(pa.array(op == 2), _iso(ch["repaired"]), null),
                pc.if_else(pa.array(op != 0), reasons, null),
            ],
            schema=CHANGES_SCHEMA,
        )
        return table, provider


def _fixed_in(province: str) -> float:
    return sum(w for code, w in DIVISION_WEIGHTS.items() if code[:2] == province)


def _serving(catalogs: list[Catalog], region: str, kind: str, today: date) -> int:
    """The index of the catalog that scores subjects of ``region`` and ``kind`` (scoring.select_catalog)."""
    return catalogs.index(select_catalog(catalogs, region, kind, today))


def shipped_catalogs() -> list[Catalog]:
    return [
        parse_catalog(yaml.safe_load(p.read_text(encoding="utf-8")))
        for p in sorted(CATALOG_DIR.glob("*.yaml"))
    ]


# ---------------------------------------------------------------- writing


class _Sink:
    """Parquet files of one kind for one provider, rotated every ``rows_per_file`` rows."""

    def __init__(self, directory: Path, stem: str, schema: pa.Schema, rows_per_file: int) -> None:
        self.directory = directory
        self.stem = stem
        self.schema = schema
        self.rows_per_file = rows_per_file
        self.writer: pq.ParquetWriter | None = None
        self.in_file = 0
        self.files: list[str] = []
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        offset = 0
        while offset < table.num_rows:
            if self.writer is None or self.in_file >= self.rows_per_file:
                self.close()
                self.directory.mkdir(parents=True, exist_ok=True)
                path = self.directory / f"{self.stem}-{len(self.files):05d}.parquet"
                self.files.append(str(path))
                self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
                self.in_file = 0
            n = min(table.num_rows - offset, self.rows_per_file - self.in_file)
            self.writer.write_table(table.slice(offset, n), row_group_size=256 * 1024)
            self.in_file += n
            self.rows += n
            offset += n

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def write_dataset(
    out: Path,
    spec: ScaleSpec,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Generate the operations of ``spec`` under ``out`` (emptied first); returns the manifest."""
    if spec.subjects < 1 or spec.records < 0:
        raise ValueError("--subjects must be at least 1 and --records at least 0")
    if not 0 <= spec.changes <= 1:
        raise ValueError("--changes must be a fraction between 0 and 1")
    started = time.perf_counter()
    catalogs = shipped_catalogs()
    pop = _Population(spec, catalogs)
    if out.exists():
        for child in out.iterdir():
            if child.name == "manifest.json" or (
                child.is_dir() and (child.name in pop.providers or child.name == "records")
            ):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    submits = [_Sink(out / p, "submit", SUBMIT_SCHEMA, spec.rows_per_file) for p in pop.providers]
    changes = [_Sink(out / p, "changes", CHANGES_SCHEMA, spec.rows_per_file) for p in pop.providers]
    projection = (
        _Sink(out / "records", "part", PROJECTION_SCHEMA, spec.rows_per_file * 4) if spec.projection else None
    )
    total = pop.n_records
    try:
        for start in range(0, total, spec.chunk):
            j = np.arange(start, min(total, start + spec.chunk), dtype=np.int64)
            rec = pop.records(j)
            order = np.argsort(rec["provider"], kind="stable")
            bounds = np.searchsorted(rec["provider"][order], np.arange(len(pop.providers) + 1))
            for p in range(len(pop.providers)):
                rows = order[bounds[p] : bounds[p + 1]]
                if len(rows):
                    submits[p].write(pop.submit_table(rec, rows, p))
            if projection is not None:
                projection.write(pop.projection_table(rec))
            if progress:
                progress("submit", int(j[-1]) + 1, total)
        for start in range(0, pop.n_changes, spec.chunk):
            k = np.arange(start, min(pop.n_changes, start + spec.chunk), dtype=np.int64)
            table, provider = pop.changes_table(k)
            for p in range(len(pop.providers)):
                rows = np.flatnonzero(provider == p)
                if len(rows):
                    changes[p].write(table.take(pa.array(rows, pa.int64())))
            if progress:
                progress("changes", int(k[-1]) + 1, pop.n_changes)
    finally:
        for sink in (*submits, *changes, *([projection] if projection else [])):
            sink.close()
    domains: dict[str, set[str]] = {d: set() for d in DOMAIN_PROVIDERS}
    for c in catalogs:
        for cat in c.categories.values():
            domains[cat.domain].add(cat.code)
    providers = {}
    for domain, (code, name) in DOMAIN_PROVIDERS.items():
        i = pop.providers.index(code)
        providers[code] = {
            "name": name,
            "categories": sorted(domains[domain]),
            "submits": submits[i].rows,
            "changes": changes[i].rows,
            "files": [str(Path(f).relative_to(out)) for f in submits[i].files + changes[i].files],
        }
    manifest: dict[str, Any] = {
        "subjects": pop.n_subjects if total >= pop.n_subjects else total,
        "records": total,
        "changes": pop.n_changes,
        "seed": spec.seed,
        "today": pop.today.isoformat(),
        "catalogs": [c.ref for c in catalogs],
        "providers": providers,
        "projection": [str(Path(f).relative_to(out)) for f in projection.files] if projection else [],
        "seconds": round(time.perf_counter() - started, 3),
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return manifest


def files_in_order(out: Path) -> list[tuple[str, Path]]:
    """(provider, file) pairs of a generated directory in the order to ingest them: submits first."""
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    pairs: list[tuple[str, Path]] = []
    for stage in ("submit-", "changes-"):
        for code, info in manifest["providers"].items():
            pairs.extend((code, out / f) for f in info["files"] if Path(f).name.startswith(stage))
    return pairs
