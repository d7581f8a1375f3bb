"""The demo world: a deterministic, lazily generated history of a Brazilian importer.

The importer buys products from foreign suppliers (paid in USD, EUR or CNY) and sells them to Brazilian customers
(in BRL). :func:`generate` returns a :class:`World` from which every demo source system reads:

* the ERP (:mod:`medalflow_demo.erp`) applies :meth:`World.erp_changes` for each day: inserts, updates and soft
  deletes of customers, suppliers, products and orders;
* the partner API (:mod:`medalflow_demo.partner_api`) serves :meth:`World.payment_changes`,
  :meth:`World.shipment_changes` (channel ``api``), :meth:`World.fx_rates` and the forecast methods;
* the file drops (:mod:`medalflow_demo.files`) write :meth:`World.shipment_changes` of the channels ``oceanic`` and
  ``skyfreight``.

How it stays deterministic, lazy and cheap
------------------------------------------
* Every random choice comes from labelled hashes of the seed (:func:`_derive`, :func:`_mix`), never from Python's
  salted ``hash()`` nor from the order in which things were generated, so any day can be produced on its own, in any
  process, and is byte for byte the same. Faker is re-seeded per entity for the same reason (its output is stable
  for a given Faker version).
* A day's data depends on ``seed``, ``scale`` and ``start_date`` only: ``end_date`` merely bounds the range, so a live
  demo can move the end forward without rewriting the past.
* Slowly changing state (a customer's e-mail and phone, a product's price, a supplier's contact) follows per-entity
  periodic schedules whose version at any day has a closed form, so no history is replayed.
* Orders carry the volume. Day ``k`` has ``n_k`` orders with contiguous ids whose attributes and lifecycle come from
  two per-day arrays of random 64-bit words. An order's later events (confirmation, shipping, payments, delivery...)
  are a pure function of its lifecycle word, all within :data:`MAX_LIFECYCLE_DAYS` days of placement; a bounded
  cache of "which orders of placement day ``k`` have an event on day ``k + j``" makes sequential generation cost
  O(orders of the day) and random access cost O(``MAX_LIFECYCLE_DAYS`` × orders per day), at any scale.
* :class:`World` holds per-day counters and the customer-deletion schedule (O(days)) plus bounded caches; each
  day's changes are produced as a generator.

Conventions: timestamps are naive ``datetime`` in UTC with second precision; money is :class:`~decimal.Decimal`
(4 decimals for supplier costs, 2 for BRL amounts); every change of a day has ``updated_at`` in ``[day, day + 1)``.
The initial population (suppliers, customers, products existing at go-live) is loaded by a migration on
``start_date`` between 01:00 and 05:00 with ``created_at = updated_at``, so "created in the interval" identifies
inserts for change data capture from the very first day.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
import random
import sys
import threading
import unicodedata
from array import array
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faker import Faker

DEFAULT_START_DATE = date(2026, 1, 1)  # where the CLIs' worlds begin unless told otherwise

# Sizes at scale 1.0; counts scale linearly (with floors so tiny scales still have every kind of thing).
CUSTOMERS_AT_SCALE_1 = 200
SUPPLIERS_AT_SCALE_1 = 40
PRODUCTS_AT_SCALE_1 = 300
ORDERS_PER_DAY_AT_SCALE_1 = 150
NEW_CUSTOMERS_PER_DAY_AT_SCALE_1 = 1.0
NEW_PRODUCTS_PER_DAY_AT_SCALE_1 = 0.5
CUSTOMER_DELETIONS_PER_DAY_AT_SCALE_1 = 0.25
FORECAST_PROJECTS_AT_SCALE_1 = 10

ORDER_DELETE_RATE = 0.02
ORDER_CANCEL_RATE = 72 / 1024  # ~7%, compared against 10 random bits
FX_HISTORY_DAYS = 45  # FX rates exist this many days before start_date, so "as of" lookups work on day one
FORECAST_MONTHS = 12
# The longest lifecycle: confirm 2 + ship 4 + sea transit 14 + customs 2 + last mile 4 = 26 days after placement.
MAX_LIFECYCLE_DAYS = 26
MIN_SCALE, MAX_SCALE = 0.01, 10_000.0

SEGMENTS = ("retail", "wholesale", "corporate")
CURRENCIES = ("USD", "EUR", "CNY")
ORDER_STATUSES = ("placed", "confirmed", "shipped", "delivered", "cancelled")
SHIPMENT_STATUSES = ("booked", "in_transit", "at_port", "customs", "delivered")
SHIPMENT_CHANNELS = ("api", "oceanic", "skyfreight")
PAYMENT_METHODS = ("pix", "credit_card", "boleto", "ted", "swift")
PAYMENT_STATUSES = ("pending", "settled", "refunded", "cancelled")
FORECAST_SCENARIOS = ("optimistic", "base", "pessimistic")
ERP_TABLES = ("suppliers", "customers", "products", "orders")  # in foreign-key dependency order
ERP_KEYS = {"suppliers": "supplier_id", "customers": "customer_id", "products": "product_id", "orders": "order_id"}

# Nominal rates used to price the catalogue (the FX feed walks around the BRL ones).
_UNITS_PER_USD = {"USD": 1.0, "EUR": 0.92, "CNY": 7.2}
_BRL_PER_USD = 5.0
_FX_ANCHORS = {"USD": 5.0, "EUR": 5.5, "CNY": 0.7}
_FX_DAILY_VOLATILITY = {"USD": 0.009, "EUR": 0.008, "CNY": 0.008}
# Fixed-date national holidays (month, day): no FX publication. Movable ones (Carnival, Good Friday) are left out.
_BRAZILIAN_FIXED_HOLIDAYS = frozenset(
    {(1, 1), (4, 21), (5, 1), (9, 7), (10, 12), (11, 2), (11, 15), (11, 20), (12, 25)}
)

_SEGMENT_DISCOUNT = {"retail": Decimal("0"), "wholesale": Decimal("0.12"), "corporate": Decimal("0.06")}
_QUANTITY_RANGE = {"retail": (1, 4), "wholesale": (20, 200), "corporate": (5, 60)}
# Weekday order volume (Monday first), relative; normalised so the weekly mean is 1.
_WEEKDAY_VOLUME = (1.1, 1.15, 1.15, 1.1, 1.05, 0.55, 0.4)
_WEEKDAY_FACTOR = tuple(value * 7 / sum(_WEEKDAY_VOLUME) for value in _WEEKDAY_VOLUME)

_CITIES = (  # (city, state, weight)
    ("São Paulo", "SP", 30), ("Rio de Janeiro", "RJ", 12), ("Belo Horizonte", "MG", 6), ("Curitiba", "PR", 6),
    ("Porto Alegre", "RS", 5), ("Campinas", "SP", 5), ("Brasília", "DF", 5), ("Salvador", "BA", 4),
    ("Recife", "PE", 4), ("Fortaleza", "CE", 4), ("Goiânia", "GO", 3), ("Florianópolis", "SC", 3),
    ("Santos", "SP", 3), ("Manaus", "AM", 2), ("Joinville", "SC", 2), ("Vitória", "ES", 2), ("Belém", "PA", 2),
    ("Ribeirão Preto", "SP", 2),
)  # fmt: skip
_EMAIL_DOMAINS = (
    ("gmail.com", 40), ("hotmail.com", 15), ("outlook.com", 12), ("yahoo.com.br", 10), ("uol.com.br", 8),
    ("bol.com.br", 5), ("terra.com.br", 5), ("icloud.com", 5),
)  # fmt: skip
_COMPANY_MAILBOXES = ("contato", "compras", "financeiro", "comercial", "suprimentos")
_NAME_STOPWORDS = frozenset(
    {"dr", "dra", "sr", "sra", "srta", "da", "de", "do", "das", "dos", "e", "ltda", "s/a", "sa"}
)

_SUPPLIER_COUNTRIES = {"USD": ("US",), "EUR": ("DE", "IT", "ES", "NL"), "CNY": ("CN",)}
_SUPPLIER_PLACES = {
    "CN": ("Shenzhen", "Ningbo", "Guangzhou", "Yiwu", "Dongguan", "Suzhou", "Xiamen", "Qingdao"),
    "US": ("Pacific", "Lone Star", "Great Lakes", "Bay Area", "Atlantic", "Midwest"),
    "DE": ("Rhein", "Bayern", "Hanse", "Schwarzwald"),
    "IT": ("Lombarda", "Adriatica", "Toscana"),
    "ES": ("Ibérica", "Levante", "Cantábrica"),
    "NL": ("Holland", "Delta", "Maas"),
}
_SUPPLIER_SUFFIXES = {
    "CN": ("Co., Ltd.",), "US": ("Inc.", "LLC", "Corp."), "DE": ("GmbH",), "IT": ("S.p.A.", "S.r.l."),
    "ES": ("S.L.",), "NL": ("B.V.",),
}  # fmt: skip
_SUPPLIER_TLDS = {"CN": "com.cn", "US": "com", "DE": "de", "IT": "it", "ES": "es", "NL": "nl"}
_SUPPLIER_WORDS = ("Precision", "Global", "Bright", "United", "Star", "Prime", "Golden", "Smart")
_SUPPLIER_TRADES = ("Electronics", "Machinery", "Textiles", "Tools", "Components", "Industrial", "Trading")
_SUPPLIER_MAILBOXES = ("sales", "export", "trade", "info", "orders")

_CATEGORIES = {  # category: (SKU prefix, USD cost range, product nouns)
    "electronics": ("ELE", (3.0, 120.0), (
        "Caixa de Som Bluetooth", "Carregador USB-C", "Painel LED", "Tomada Inteligente", "Power Bank",
        "Mouse sem Fio", "Fone de Ouvido")),
    "machine_parts": ("MAC", (5.0, 400.0), (
        "Rolamento de Esferas", "Válvula Hidráulica", "Motorredutor", "Correia de Transmissão", "Sensor de Pressão",
        "Acoplamento Elástico")),
    "textiles": ("TEX", (1.5, 30.0), (
        "Rolo de Tecido de Algodão", "Fio de Poliéster", "Rolo de Denim", "Tecido de Linho", "Malha de Viscose")),
    "home_goods": ("HOM", (2.0, 60.0), (
        "Jogo de Panelas Cerâmicas", "Chaleira Inox", "Pote de Vidro Hermético", "Tábua de Bambu", "Jogo de Facas")),
    "tools": ("TOO", (8.0, 150.0), (
        "Furadeira sem Fio", "Jogo de Soquetes", "Esmerilhadeira Angular", "Nível a Laser",
        "Parafusadeira de Impacto")),
    "auto_parts": ("AUT", (2.0, 200.0), (
        "Pastilha de Freio", "Vela de Ignição", "Filtro de Óleo", "Alternador", "Farol Dianteiro", "Amortecedor")),
}  # fmt: skip
_CATEGORY_NAMES = tuple(_CATEGORIES)
_PRODUCT_QUALIFIERS = ("Pro", "Max", "Plus", "Eco", "Ultra", "Compact", "Industrial")

_API_CARRIERS = ("Atlas Maritime", "Cruzeiro do Sul Logística", "Blue Anchor Lines")
_CHANNEL_CARRIER = {"oceanic": "Oceanic Container Lines", "skyfreight": "SkyFreight Air Cargo"}
_SEA_ORIGINS = {
    "CN": ("CNSHA", "CNNGB", "CNSZX", "CNTAO"), "US": ("USHOU", "USNYC", "USSAV"), "DE": ("DEHAM", "DEBRV"),
    "IT": ("ITGOA",), "ES": ("ESVLC",), "NL": ("NLRTM",),
}  # fmt: skip
_AIR_ORIGINS = {"CN": ("PVG", "CAN", "SZX"), "US": ("MIA", "JFK"), "DE": ("FRA",), "IT": ("MXP",), "ES": ("MAD",),
                "NL": ("AMS",)}  # fmt: skip
_SEA_DESTINATIONS = ("BRSSZ",) * 9 + ("BRPNG", "BRPNG", "BRPNG", "BRITJ", "BRITJ", "BRRIO", "BRRIO")
_AIR_DESTINATIONS = ("GRU",) * 10 + ("VCP",) * 6

_PROJECT_THEMES = ("Expansão Varejo", "Importação Direta", "Canal B2B", "Linha Premium", "Reposição de Estoque",
                   "Novos Fornecedores Ásia", "Marca Própria", "E-commerce")  # fmt: skip
_PROJECT_REGIONS = ("Sul", "Sudeste", "Nordeste", "Centro-Oeste", "Norte")
_MONTH_SEASONALITY = (0.85, 0.85, 0.95, 0.95, 1.0, 1.0, 1.0, 1.05, 1.05, 1.1, 1.25, 1.3)

# Order lifecycle events. Within one day, events happen in this order (their sort key).
_PLACED, _CONFIRMED, _INBOUND_SETTLED, _SHIPPED, _OUTBOUND_SETTLED = 0, 1, 2, 3, 4
_AT_PORT, _CUSTOMS, _DELIVERED, _CANCELLED, _DELETED = 5, 6, 7, 8, 9
_ORDER_STATUS_AFTER = {_PLACED: "placed", _CONFIRMED: "confirmed", _SHIPPED: "shipped", _DELIVERED: "delivered",
                       _CANCELLED: "cancelled"}  # fmt: skip
_ORDER_ROW_EVENTS = frozenset({*_ORDER_STATUS_AFTER, _DELETED})
_SHIPMENT_STATUS_AFTER = {_CONFIRMED: "booked", _SHIPPED: "in_transit", _AT_PORT: "at_port", _CUSTOMS: "customs",
                          _DELIVERED: "delivered"}  # fmt: skip
_CONFIRM_DELAYS = (0, 1, 1, 2)
# What each consumer needs to look at, as bit masks over events (see World._build_order_event_index).
_ERP_EVENTS = sum(1 << event for event in _ORDER_ROW_EVENTS)
_PAYMENT_EVENTS = sum(1 << event for event in (_CONFIRMED, _INBOUND_SETTLED, _CANCELLED, _SHIPPED, _OUTBOUND_SETTLED))
_SHIPMENT_EVENTS = sum(1 << event for event in _SHIPMENT_STATUS_AFTER)
_EVENT_BITS, _CHANNEL_BITS = 10, 2

_MASK64 = (1 << 64) - 1
_TWO_POW_53 = float(1 << 53)
_Q4 = Decimal("0.0001")
_Q2 = Decimal("0.01")
_SECONDS_PER_DAY = 86_400


def _mix(value: int) -> int:
    """SplitMix64: a fast, well-distributed 64-bit hash of an integer (used per entity in hot loops)."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def _derive(seed: int, *labels: str | int) -> int:
    """A 64-bit key for a named random stream; stable across processes (unlike ``hash()``) and Python versions."""
    text = "\x1f".join(str(part) for part in (seed, *labels))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _unit(value: int) -> float:
    """A float in [0, 1) from the top 53 bits of a 64-bit hash."""
    return (value >> 11) / _TWO_POW_53


def _pick(value: int, options: tuple[Any, ...]) -> Any:
    return options[value % len(options)]


def _weighted_pick(value: int, options: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    """Pick from tuples whose last item is an integer weight."""
    ticket = value % sum(option[-1] for option in options)
    for option in options:
        ticket -= option[-1]
        if ticket < 0:
            return option
    raise AssertionError("unreachable")


def _to_decimal(value: float, quantum: Decimal) -> Decimal:
    return Decimal(value).quantize(quantum, rounding=ROUND_HALF_EVEN)


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean < 30:  # Knuth's method: exact and cheap for small means
        limit, count, product = math.exp(-mean), 0, rng.random()
        while product > limit:
            count += 1
            product *= rng.random()
        return count
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))


def _ascii_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    cleaned = "".join(char if char.isalnum() else " " for char in folded)
    return [word for word in cleaned.split() if word not in _NAME_STOPWORDS]


def _random_words(seed: int, count: int) -> array:
    """``count`` random 64-bit words from one seeded stream (independent of the machine's byte order)."""
    words = array("Q")
    words.frombytes(random.Random(seed).randbytes(8 * count))
    if sys.byteorder == "big":
        words.byteswap()
    return words


def is_fx_publication_day(day: date) -> bool:
    """FX rates are published on business days only: not on weekends nor on fixed-date Brazilian holidays."""
    return day.weekday() < 5 and (day.month, day.day) not in _BRAZILIAN_FIXED_HOLIDAYS


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """What determines the demo world. ``end_date`` is exclusive and only bounds the range."""

    seed: int = 42
    scale: float = 1.0
    start_date: date
    end_date: date

    def __post_init__(self) -> None:
        if not MIN_SCALE <= self.scale <= MAX_SCALE:
            raise ValueError(f"scale must be within [{MIN_SCALE}, {MAX_SCALE}], got {self.scale}")
        if self.end_date <= self.start_date:
            raise ValueError(f"end_date {self.end_date} must be after start_date {self.start_date}")


@dataclass(frozen=True, slots=True)
class Change:
    """One change of an ERP row: the full row image after the change (soft deletes are images with ``deleted_at``)."""

    table: str  # one of ERP_TABLES
    op: str  # "insert", "update" or "delete"
    row: dict[str, Any]

    @property
    def key(self) -> int:
        return self.row[ERP_KEYS[self.table]]


@dataclass(frozen=True, slots=True)
class _Periodic:
    """Changes every ``interval`` days (on days where ``(day + phase) % interval == 0``), after creation."""

    interval: int
    phase: int

    @classmethod
    def from_hash(cls, value: int, shortest: int, longest: int) -> _Periodic:
        interval = shortest + value % (longest - shortest + 1)
        return cls(interval, (value >> 24) % interval)

    def hits(self, day: int, created_day: int) -> bool:
        return day > created_day and (day + self.phase) % self.interval == 0

    def count(self, created_day: int, through_day: int) -> int:
        """How many changes happened in (created_day, through_day]: the entity's version at the end of that day."""
        if through_day <= created_day:
            return 0
        return (through_day + self.phase) // self.interval - (created_day + self.phase) // self.interval


@dataclass(frozen=True, slots=True)
class _Supplier:
    supplier_id: int
    name: str
    country: str
    currency: str
    email_domain: str
    contact: _Periodic


@dataclass(frozen=True, slots=True)
class _Customer:
    customer_id: int
    name: str
    tax_id: str
    segment: str
    city: str
    state: str
    created_day: int
    created_secs: int
    email_stem: tuple[str, str]  # person: (first, last) name words; company: ("", domain)
    email_schedule: _Periodic
    phone_schedule: _Periodic


@dataclass(frozen=True, slots=True)
class _Product:
    product_id: int
    sku: str
    name: str
    category: str
    supplier_id: int
    currency: str
    usd_cost: float
    markup: float
    created_day: int
    created_secs: int
    price_schedule: _Periodic


@dataclass(frozen=True, slots=True)
class _OrderBatch:
    """The random words behind one placement day's orders."""

    first_order_id: int
    attributes: array
    lifecycles: array
    delete_delays: dict[int, int]  # order index -> days from placement to soft delete


@dataclass(frozen=True, slots=True)
class _OrderPlan:
    """Everything about one order, including every future event: (day offset, second of day, event)."""

    order_id: int
    placed_day: int
    customer_id: int
    product_id: int
    supplier_id: int
    quantity: int
    unit_cost: Decimal
    currency: str
    sale_amount_brl: Decimal
    inbound_method: str
    channel: str
    carrier: str
    origin_port: str
    destination_port: str
    eta_day: int | None
    events: tuple[tuple[int, int, int], ...]


def _channel(lifecycle: int) -> str:
    roll = (lifecycle >> 14) & 0xFF
    return "api" if roll < 154 else "oceanic" if roll < 218 else "skyfreight"


def _inbound_method(lifecycle: int) -> str:
    roll = (lifecycle >> 29) & 0xFF
    return "pix" if roll < 102 else "credit_card" if roll < 166 else "boleto" if roll < 230 else "ted"


def _settle_delay(method: str, lifecycle: int) -> int:
    bits = (lifecycle >> 37) & 7
    return {"pix": 0, "credit_card": bits & 1, "boleto": 1 + bits % 3, "ted": 1 + (bits & 1)}[method]


def _lifecycle(lifecycle: int, delete_delay: int | None, placed_secs: int) -> list[tuple[int, int, int]]:
    """An order's events as (days after placement, second of that day, event), in chronological order.

    The bits of the 64-bit ``lifecycle`` word decide the path (fields at fixed bit offsets so each is independent).
    """
    marks = [(0, _PLACED)]
    if delete_delay is not None:  # entered by mistake: soft-deleted before anything else happens
        marks.append((delete_delay, _DELETED))
    else:
        confirm = _CONFIRM_DELAYS[(lifecycle >> 10) & 3]
        settle = confirm + _settle_delay(_inbound_method(lifecycle), lifecycle)
        if (lifecycle & 0x3FF) < ORDER_CANCEL_RATE * 1024:
            if (lifecycle >> 42) & 1:  # cancelled after confirmation: the customer's payment is refunded/voided
                cancel = confirm + 1 + ((lifecycle >> 43) & 3) % 3
                marks.append((confirm, _CONFIRMED))
                if settle < cancel:
                    marks.append((settle, _INBOUND_SETTLED))
            else:
                cancel = 1 + ((lifecycle >> 43) & 3) % 3
            marks.append((cancel, _CANCELLED))
        else:
            shipped = confirm + 1 + ((lifecycle >> 12) & 3)
            transit_bits = (lifecycle >> 22) & 0xF
            transit = 1 + transit_bits % 3 if _channel(lifecycle) == "skyfreight" else 7 + transit_bits % 8
            at_port = shipped + transit
            customs = at_port + 1 + ((lifecycle >> 26) & 1)
            delivered = customs + 1 + ((lifecycle >> 27) & 3)
            outbound_settled = shipped + 1 + ((lifecycle >> 40) & 3) % 3
            marks += [(confirm, _CONFIRMED), (settle, _INBOUND_SETTLED), (shipped, _SHIPPED),
                      (outbound_settled, _OUTBOUND_SETTLED), (at_port, _AT_PORT), (customs, _CUSTOMS),
                      (delivered, _DELIVERED)]  # fmt: skip
    marks.sort()
    events: list[tuple[int, int, int]] = []
    noise = _mix(lifecycle)
    previous_day, previous_secs = -1, 0
    for position, (day, event) in enumerate(marks):
        if position and position % 4 == 0:
            noise = _mix(noise)
        bits = (noise >> (16 * (position % 4))) & 0xFFFF
        if event == _PLACED:
            secs = placed_secs
        elif day == previous_day:  # a follow-up the same day: minutes to an hour and a half later
            secs = previous_secs + 300 + bits % 5100
        else:  # office hours
            secs = 28_800 + bits % 36_000
        still_today = 0
        while position + still_today + 1 < len(marks) and marks[position + still_today + 1][0] == day:
            still_today += 1
        secs = min(secs, _SECONDS_PER_DAY - 1 - still_today)  # strictly increasing and inside the day
        events.append((day, secs, event))
        previous_day, previous_secs = day, secs
    return events


class World:
    """The demo world for one :class:`DemoConfig`. Cheap to build; data is produced per day, on demand.

    Thread-safe: the partner API calls it from several worker threads.
    """

    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self._seed = config.seed
        self._days = (config.end_date - config.start_date).days
        scale = config.scale
        self.supplier_count = max(3, round(SUPPLIERS_AT_SCALE_1 * scale))
        self.initial_customer_count = max(10, round(CUSTOMERS_AT_SCALE_1 * scale))
        self.initial_product_count = max(10, round(PRODUCTS_AT_SCALE_1 * scale))
        self.forecast_project_count = max(3, round(FORECAST_PROJECTS_AT_SCALE_1 * math.sqrt(scale)))
        self._key = {
            name: _derive(self._seed, name)
            for name in ("supplier", "customer", "customer-email", "customer-phone", "customer-typo", "product",
                         "product-price", "project")
        }  # fmt: skip

        # Per-day counters: totals[k] = entities created before day k (the initial population counts as before
        # day 0: it is migrated at 01:00-05:00, before any order), so ids created on day k are
        # totals[k] + 1 .. totals[k + 1]. O(days) and nothing else is held.
        self._customer_totals = [self.initial_customer_count]
        self._product_totals = [self.initial_product_count]
        self._order_first_ids = [1]
        for day in range(self._days):
            rng = random.Random(_derive(self._seed, "daily-counts", day))
            weekday = (config.start_date + timedelta(days=day)).weekday()
            orders = max(1, _poisson(rng, ORDERS_PER_DAY_AT_SCALE_1 * scale * _WEEKDAY_FACTOR[weekday]))
            self._customer_totals.append(
                self._customer_totals[-1] + _poisson(rng, NEW_CUSTOMERS_PER_DAY_AT_SCALE_1 * scale)
            )
            self._product_totals.append(
                self._product_totals[-1] + _poisson(rng, NEW_PRODUCTS_PER_DAY_AT_SCALE_1 * scale)
            )
            self._order_first_ids.append(self._order_first_ids[-1] + orders)
        self._customer_deleted_day = self._schedule_customer_deletions()

        self._faker: Faker | None = None
        self._faker_lock = threading.Lock()
        self._fx_lock = threading.Lock()
        self._fx_series: dict[int, tuple[Decimal, ...]] = {}
        self._fx_levels: list[float] = []
        self._fx_next_day = -FX_HISTORY_DAYS
        self._fx_rng = random.Random(_derive(self._seed, "fx"))
        # Bounded caches, per instance (functools caches on methods would keep every World alive).
        window = MAX_LIFECYCLE_DAYS + 8
        self._supplier = functools.lru_cache(maxsize=65_536)(self._build_supplier)
        self._customer = functools.lru_cache(maxsize=65_536)(self._build_customer)
        self._customer_phone = functools.lru_cache(maxsize=65_536)(self._build_customer_phone)
        self._product = functools.lru_cache(maxsize=131_072)(self._build_product)
        self._product_price = functools.lru_cache(maxsize=131_072)(self._build_product_price)
        self._order_batch = functools.lru_cache(maxsize=window)(self._build_order_batch)
        self._order_event_index = functools.lru_cache(maxsize=window)(self._build_order_event_index)

    def __repr__(self) -> str:
        return f"World({self.config!r})"

    # ----------------------------------------------------------------------------------------------------- days

    @property
    def start_date(self) -> date:
        return self.config.start_date

    @property
    def end_date(self) -> date:
        return self.config.end_date

    def days(self, start: date | None = None, end: date | None = None) -> Iterator[date]:
        """The days in ``[start, end)``, clipped to the world's range (default: all of it)."""
        first = max(start or self.start_date, self.start_date)
        last = min(end or self.end_date, self.end_date)
        for offset in range((last - first).days):
            yield first + timedelta(days=offset)

    def _offset(self, day: date) -> int:
        if isinstance(day, datetime):
            day = day.date()
        offset = (day - self.start_date).days
        if not 0 <= offset < self._days:
            raise ValueError(f"{day} is outside the demo world [{self.start_date}, {self.end_date})")
        return offset

    def _timestamp(self, offset: int, secs: int) -> datetime:
        return datetime.combine(self.start_date, time()) + timedelta(days=offset, seconds=secs)

    def order_count(self, day: date) -> int:
        """How many orders are placed on ``day``."""
        offset = self._offset(day)
        return self._order_first_ids[offset + 1] - self._order_first_ids[offset]

    def last_order_id_through(self, day: date) -> int:
        """The highest order id placed on or before ``day`` (order ids are contiguous from 1)."""
        return self._order_first_ids[self._offset(day) + 1] - 1

    def order_placed_on(self, order_id: int) -> date:
        """The day an order was placed."""
        offset = bisect.bisect_right(self._order_first_ids, order_id) - 1
        if order_id < 1 or offset >= self._days:
            raise ValueError(f"order {order_id} does not exist in {self!r}")
        return self.start_date + timedelta(days=offset)

    # ------------------------------------------------------------------------------------------------ ERP

    def erp_changes(self, day: date) -> Iterator[Change]:
        """The ERP's changes of ``day``, lazily, tables in foreign-key order (suppliers, customers, products, orders).

        Changes of one row come in chronological order; a row may change several times in a day.
        """
        offset = self._offset(day)
        yield from self._supplier_changes(offset)
        yield from self._customer_changes(offset)
        yield from self._product_changes(offset)
        yield from self._order_changes(offset)

    # Suppliers: all migrated at go-live; their contact e-mail changes now and then.

    def _build_supplier(self, supplier_id: int) -> _Supplier:
        value = _mix(self._key["supplier"] + supplier_id)
        # The first three cover every currency, so even the smallest world pays in all of them.
        currency = (
            CURRENCIES[supplier_id - 1]
            if supplier_id <= 3
            else _pick(value, ("CNY",) * 5 + ("USD",) * 3 + ("EUR",) * 2)
        )
        value = _mix(value)
        country = _pick(value, _SUPPLIER_COUNTRIES[currency])
        place = _pick(value >> 8, _SUPPLIER_PLACES[country])
        word = _pick(value >> 16, _SUPPLIER_WORDS)
        trade = _pick(value >> 24, _SUPPLIER_TRADES)
        suffix = _pick(value >> 32, _SUPPLIER_SUFFIXES[country])
        domain = "".join(_ascii_words(f"{place} {word}")) + "." + _SUPPLIER_TLDS[country]
        contact = _Periodic.from_hash(_mix(value), 120, 480)
        return _Supplier(supplier_id, f"{place} {word} {trade} {suffix}", country, currency, domain, contact)

    def _supplier_row(self, supplier: _Supplier, day: int, updated_at: datetime) -> dict[str, Any]:
        version = supplier.contact.count(0, day)
        mailbox = _pick(_mix(supplier.supplier_id * 131 + version), _SUPPLIER_MAILBOXES)
        email = f"{mailbox}@{supplier.email_domain}" if version == 0 else f"{mailbox}{version}@{supplier.email_domain}"
        return {
            "supplier_id": supplier.supplier_id,
            "name": supplier.name,
            "country": supplier.country,
            "currency": supplier.currency,
            "contact_email": email,
            "created_at": self._timestamp(
                0, self._migration_secs("suppliers", supplier.supplier_id, self.supplier_count)
            ),
            "updated_at": updated_at,
            "deleted_at": None,
        }

    @staticmethod
    def _migration_secs(table: str, entity_id: int, count: int) -> int:
        """Go-live migration on start_date: suppliers 01:00-01:30, customers 01:30-03:00, products 03:00-05:00."""
        window_start, window_length = {
            "suppliers": (3600, 1800),
            "customers": (5400, 5400),
            "products": (10_800, 7200),
        }[table]
        return window_start + (entity_id - 1) * window_length // count

    def _supplier_changes(self, day: int) -> Iterator[Change]:
        for supplier_id in range(1, self.supplier_count + 1):
            supplier = self._supplier(supplier_id)
            if day == 0:
                migrated_at = self._timestamp(0, self._migration_secs("suppliers", supplier_id, self.supplier_count))
                yield Change("suppliers", "insert", self._supplier_row(supplier, 0, migrated_at))
            elif supplier.contact.hits(day, 0):
                secs = 28_800 + _mix(supplier.supplier_id * 977 + day) % 32_400
                yield Change("suppliers", "update", self._supplier_row(supplier, day, self._timestamp(day, secs)))

    # Customers: a population migrated at go-live, new ones every day, e-mail/phone changes, rare soft deletes.

    def _customer_created_day(self, customer_id: int) -> int:
        return max(0, bisect.bisect_left(self._customer_totals, customer_id) - 1)

    def _customer_segment(self, customer_id: int) -> str:
        roll = _mix(self._key["customer"] + customer_id) % 100
        return "retail" if roll < 60 else "wholesale" if roll < 85 else "corporate"

    def _email_schedule(self, customer_id: int) -> _Periodic:
        return _Periodic.from_hash(_mix(self._key["customer-email"] + customer_id), 90, 360)

    def _phone_schedule(self, customer_id: int) -> _Periodic:
        return _Periodic.from_hash(_mix(self._key["customer-phone"] + customer_id), 120, 540)

    def _customer_deleted_by(self, customer_id: int, day: int) -> bool:
        deleted_day = self._customer_deleted_day.get(customer_id)
        return deleted_day is not None and deleted_day <= day

    def _schedule_customer_deletions(self) -> dict[int, int]:
        """Which customers are soft-deleted on which day (LGPD requests, duplicates): a few per week at scale 1."""
        deleted: dict[int, int] = {}
        for day in range(self._days):
            rng = random.Random(_derive(self._seed, "customer-deletions", day))
            existing = self._customer_totals[day]
            for _ in range(_poisson(rng, CUSTOMER_DELETIONS_PER_DAY_AT_SCALE_1 * self.config.scale)):
                candidate = rng.randint(1, existing)
                for _probe in range(existing):
                    if candidate not in deleted:
                        deleted[candidate] = day
                        break
                    candidate = candidate % existing + 1
        return deleted

    @contextmanager
    def _seeded_faker(self, *labels: str | int) -> Generator[Faker]:
        """Faker re-seeded for one entity, so its output does not depend on what was generated before."""
        with self._faker_lock:
            if self._faker is None:
                from faker import Faker

                self._faker = Faker("pt_BR")
            self._faker.seed_instance(_derive(self._seed, *labels))
            yield self._faker

    def _build_customer(self, customer_id: int) -> _Customer:
        segment = self._customer_segment(customer_id)
        value = _mix(self._key["customer"] + customer_id)
        city, state, _weight = _weighted_pick(value >> 8, _CITIES)
        with self._seeded_faker("customer", customer_id) as fake:
            if segment == "retail":
                name, tax_id = fake.name(), fake.cpf()
            else:
                name, tax_id = fake.company(), fake.cnpj()
        words = _ascii_words(name) or ["cliente", str(customer_id)]
        if segment == "retail":
            stem = (words[0], words[-1] if len(words) > 1 else str(customer_id))
        else:
            stem = ("", "".join(words[:2]) + ".com.br")
        created_day = self._customer_created_day(customer_id)
        if customer_id <= self.initial_customer_count:
            created_secs = self._migration_secs("customers", customer_id, self.initial_customer_count)
        else:
            created_secs = 28_800 + _mix(value) % 43_200
        return _Customer(
            customer_id=customer_id,
            name=name,
            tax_id=tax_id,
            segment=segment,
            city=city,
            state=state,
            created_day=created_day,
            created_secs=created_secs,
            email_stem=stem,
            email_schedule=self._email_schedule(customer_id),
            phone_schedule=self._phone_schedule(customer_id),
        )

    def _customer_email(self, customer: _Customer, version: int) -> str:
        value = _mix(self._key["customer-email"] ^ (customer.customer_id << 16) ^ version)
        first, last = customer.email_stem
        if not first:  # a company: a role mailbox at its own domain
            mailbox = _COMPANY_MAILBOXES[version % len(_COMPANY_MAILBOXES)]
            cycle = version // len(_COMPANY_MAILBOXES)
            return f"{mailbox}@{last}" if cycle == 0 else f"{mailbox}{cycle + 1}@{last}"
        domain = _weighted_pick(value >> 8, _EMAIL_DOMAINS)[0]
        number = 10 + (value >> 32) % 90
        local = (f"{first}.{last}", f"{first}.{last}{number}", f"{first}{last}", f"{first}_{last}{number}",
                 f"{first[0]}{last}{number}")[0 if version == 0 else 1 + value % 4]  # fmt: skip
        email = f"{local}@{domain}"
        if version and email == self._customer_email(customer, version - 1):  # a change must change something
            email = f"{local}{version}@{domain}"
        return email

    def _build_customer_phone(self, customer_id: int, version: int) -> str:
        with self._seeded_faker("customer-phone", customer_id, version) as fake:
            phone = fake.phone_number()
        if version and phone == self._customer_phone(customer_id, version - 1):
            with self._seeded_faker("customer-phone-again", customer_id, version) as fake:
                phone = fake.cellphone_number()
        return phone

    def _customer_row(
        self, customer: _Customer, day: int, updated_at: datetime, *, deleted: bool = False, email: str | None = None
    ) -> dict[str, Any]:
        email_version = customer.email_schedule.count(customer.created_day, day)
        phone_version = customer.phone_schedule.count(customer.created_day, day)
        return {
            "customer_id": customer.customer_id,
            "name": customer.name,
            "email": email or self._customer_email(customer, email_version),
            "tax_id": customer.tax_id,
            "phone": self._customer_phone(customer.customer_id, phone_version),
            "city": customer.city,
            "state": customer.state,
            "segment": customer.segment,
            "created_at": self._timestamp(customer.created_day, customer.created_secs),
            "updated_at": updated_at,
            "deleted_at": updated_at if deleted else None,
        }

    def _double_edited_customer(self, day: int) -> int | None:
        """The customer whose e-mail is mistyped and corrected the same day: every day has a row changed twice."""
        existing = self._customer_totals[day]
        candidate = 1 + _mix(self._key["customer-typo"] + day) % existing
        for _probe in range(existing):
            if not self._customer_deleted_by(candidate, day):
                return candidate
            candidate = candidate % existing + 1
        return None

    def _customer_changes(self, day: int) -> Iterator[Change]:
        if day == 0:
            for customer_id in range(1, self.initial_customer_count + 1):
                customer = self._customer(customer_id)
                created_at = self._timestamp(0, customer.created_secs)
                yield Change("customers", "insert", self._customer_row(customer, 0, created_at))
        for customer_id in range(self._customer_totals[day] + 1, self._customer_totals[day + 1] + 1):
            customer = self._customer(customer_id)
            created_at = self._timestamp(day, customer.created_secs)
            yield Change("customers", "insert", self._customer_row(customer, day, created_at))
        for customer_id in range(1, self._customer_totals[day] + 1):
            deleted_day = self._customer_deleted_day.get(customer_id)
            if deleted_day is not None and deleted_day < day:
                continue
            value = _mix(self._key["customer"] ^ (customer_id << 20) ^ day)
            if deleted_day == day:
                customer = self._customer(customer_id)
                deleted_at = self._timestamp(day, 36_000 + value % 25_200)
                yield Change("customers", "delete", self._customer_row(customer, day, deleted_at, deleted=True))
                continue
            # Schedules come from hashes alone: deciding who changes today never builds (Faker) profiles.
            created_day = self._customer_created_day(customer_id)
            if self._email_schedule(customer_id).hits(day, created_day) or self._phone_schedule(customer_id).hits(
                day, created_day
            ):
                customer = self._customer(customer_id)
                updated_at = self._timestamp(day, 28_800 + value % 32_400)
                yield Change("customers", "update", self._customer_row(customer, day, updated_at))
        double_edited = self._double_edited_customer(day)
        if double_edited is not None:  # after every other change of the day (those end by 17:00)
            customer = self._customer(double_edited)
            value = _mix(self._key["customer-typo"] ^ day)
            correct = self._customer_email(customer, customer.email_schedule.count(customer.created_day, day))
            local, _, domain = correct.partition("@")
            letters = [index for index, char in enumerate(local) if char.isalpha()] or [0]
            position = letters[value % len(letters)]
            mistyped = f"{local[: position + 1]}{local[position:]}@{domain}"  # a doubled letter
            typo_at = self._timestamp(day, 64_800 + value % 3600)  # 18:00-19:00
            fixed_at = typo_at + timedelta(seconds=600 + (value >> 16) % 3000)
            yield Change("customers", "update", self._customer_row(customer, day, typo_at, email=mistyped))
            yield Change("customers", "update", self._customer_row(customer, day, fixed_at))

    # Products: a catalogue migrated at go-live, new products now and then, periodic price changes.

    def _build_product(self, product_id: int) -> _Product:
        value = _mix(self._key["product"] + product_id)
        category = _pick(value, _CATEGORY_NAMES)
        prefix, (low, high), nouns = _CATEGORIES[category]
        value = _mix(value)
        model = f"{chr(65 + value % 26)}{chr(65 + (value >> 5) % 26)}-{100 + (value >> 10) % 900}"
        name = f"{_pick(value >> 20, nouns)} {_pick(value >> 28, _PRODUCT_QUALIFIERS)} {model}"
        value = _mix(value)
        supplier_id = 1 + value % self.supplier_count
        usd_cost = low * (high / low) ** _unit(_mix(value))  # log-uniform: many cheap items, few expensive ones
        markup = 1.6 + _unit(_mix(value + 1))
        created_day = self._product_created_day(product_id)
        if product_id <= self.initial_product_count:
            created_secs = self._migration_secs("products", product_id, self.initial_product_count)
        else:
            created_secs = 28_800 + (value >> 8) % 36_000
        return _Product(
            product_id=product_id,
            sku=f"{prefix}-{product_id:06d}",
            name=name,
            category=category,
            supplier_id=supplier_id,
            currency=self._supplier(supplier_id).currency,
            usd_cost=usd_cost,
            markup=markup,
            created_day=created_day,
            created_secs=created_secs,
            price_schedule=self._price_schedule(product_id),
        )

    def _product_created_day(self, product_id: int) -> int:
        return max(0, bisect.bisect_left(self._product_totals, product_id) - 1)

    def _price_schedule(self, product_id: int) -> _Periodic:
        return _Periodic.from_hash(_mix(self._key["product-price"] + product_id), 30, 120)

    def _build_product_price(self, product_id: int, version: int) -> tuple[Decimal, Decimal]:
        """(unit cost in the supplier's currency, list price in BRL) after ``version`` price changes."""
        product = self._product(product_id)
        factor = 1.0
        for change in range(1, version + 1):  # mostly increases: -3% .. +8%
            step = 0.97 + 0.11 * _unit(_mix(self._key["product-price"] ^ (product_id << 12) ^ change))
            factor *= step if abs(step - 1) >= 0.005 else step + 0.01  # a price change must change the price
        usd_cost = product.usd_cost * factor
        unit_cost = _to_decimal(usd_cost * _UNITS_PER_USD[product.currency], _Q4)
        list_price = _to_decimal(usd_cost * _BRL_PER_USD * product.markup, _Q2)
        return unit_cost, list_price

    def _product_price_on(self, product: _Product, day: int) -> tuple[Decimal, Decimal]:
        return self._product_price(product.product_id, product.price_schedule.count(product.created_day, day))

    def _product_row(self, product: _Product, day: int, updated_at: datetime) -> dict[str, Any]:
        unit_cost, list_price = self._product_price_on(product, day)
        return {
            "product_id": product.product_id,
            "sku": product.sku,
            "name": product.name,
            "category": product.category,
            "supplier_id": product.supplier_id,
            "unit_cost": unit_cost,
            "list_price_brl": list_price,
            "created_at": self._timestamp(product.created_day, product.created_secs),
            "updated_at": updated_at,
            "deleted_at": None,
        }

    def _product_changes(self, day: int) -> Iterator[Change]:
        if day == 0:
            for product_id in range(1, self.initial_product_count + 1):
                product = self._product(product_id)
                yield Change(
                    "products", "insert", self._product_row(product, 0, self._timestamp(0, product.created_secs))
                )
        for product_id in range(self._product_totals[day] + 1, self._product_totals[day + 1] + 1):
            product = self._product(product_id)
            yield Change(
                "products", "insert", self._product_row(product, day, self._timestamp(day, product.created_secs))
            )
        for product_id in range(1, self._product_totals[day] + 1):
            if self._price_schedule(product_id).hits(day, self._product_created_day(product_id)):
                product = self._product(product_id)
                secs = 28_800 + _mix(self._key["product"] ^ (product_id << 20) ^ day) % 32_400
                yield Change("products", "update", self._product_row(product, day, self._timestamp(day, secs)))

    # Orders: the volume. Each order's whole life is planned from two random words.

    def _build_order_batch(self, day: int) -> _OrderBatch:
        first, count = self._order_first_ids[day], self._order_first_ids[day + 1] - self._order_first_ids[day]
        words = _random_words(_derive(self._seed, "orders", day), 2 * count)
        rng = random.Random(_derive(self._seed, "order-deletions", day))
        deleted = rng.sample(range(count), max(1, round(ORDER_DELETE_RATE * count)))
        # The first one is deleted the same day, so every day has at least one soft delete.
        delays = {index: 0 if position == 0 else rng.randrange(3) for position, index in enumerate(deleted)}
        return _OrderBatch(first, words[:count], words[count:], delays)

    @staticmethod
    def _placed_secs(attributes: int) -> int:
        return 21_600 + (attributes >> 48) % 50_400  # 06:00-20:00

    def _build_order_event_index(self, day: int) -> dict[int, array]:
        """For the orders placed on ``day``: days after placement -> one entry per order with events then.

        An entry packs the order's position in its batch, its shipment channel and the set of its events that day
        (``position << 12 | channel << 10 | event mask``), so consumers skip orders irrelevant to them without
        decoding them.
        """
        batch = self._order_batch(day)
        index: dict[int, array] = {}
        for position, (attributes, lifecycle) in enumerate(zip(batch.attributes, batch.lifecycles, strict=True)):
            events = _lifecycle(lifecycle, batch.delete_delays.get(position), self._placed_secs(attributes))
            masks: dict[int, int] = {}
            for offset, _secs, event in events:
                masks[offset] = masks.get(offset, 0) | (1 << event)
            prefix = (position << _CHANNEL_BITS | SHIPMENT_CHANNELS.index(_channel(lifecycle))) << _EVENT_BITS
            for offset, mask in masks.items():
                index.setdefault(offset, array("Q")).append(prefix | mask)
        return index

    def _pick_customer(self, day: int, roll: float) -> int:
        """Older customers buy more (the square skews towards low ids); never one deleted by that day."""
        existing = self._customer_totals[day]
        candidate = 1 + int(existing * roll * roll)
        for _probe in range(existing):
            if not self._customer_deleted_by(candidate, day):
                return candidate
            candidate = candidate % existing + 1
        return candidate

    def _order_plan(self, day: int, position: int) -> _OrderPlan:
        batch = self._order_batch(day)
        attributes, lifecycle = batch.attributes[position], batch.lifecycles[position]
        customer_id = self._pick_customer(day, (attributes & 0xFFFFF) / 0x100000)
        product_roll = ((attributes >> 20) & 0xFFFFF) / 0x100000
        product = self._product(1 + int(self._product_totals[day] * product_roll * product_roll))
        segment = self._customer_segment(customer_id)
        low, high = _QUANTITY_RANGE[segment]
        quantity = low + ((attributes >> 40) & 0xFF) % (high - low + 1)
        unit_cost, list_price = self._product_price_on(product, day)
        sale_amount = (list_price * quantity * (1 - _SEGMENT_DISCOUNT[segment])).quantize(_Q2)
        relative_events = _lifecycle(lifecycle, batch.delete_delays.get(position), self._placed_secs(attributes))
        events = tuple((day + offset, secs, event) for offset, secs, event in relative_events)
        channel = _channel(lifecycle)
        country = self._supplier(product.supplier_id).country
        by_air = channel == "skyfreight"
        origin = _pick((lifecycle >> 56) & 0xF, (_AIR_ORIGINS if by_air else _SEA_ORIGINS)[country])
        destination = _pick((lifecycle >> 52) & 0xF, _AIR_DESTINATIONS if by_air else _SEA_DESTINATIONS)
        delivered = [event_day for event_day, _secs, event in events if event == _DELIVERED]
        eta_day = delivered[0] + ((lifecycle >> 47) & 7) % 6 - 2 if delivered else None  # some arrive late, some early
        return _OrderPlan(
            order_id=batch.first_order_id + position,
            placed_day=day,
            customer_id=customer_id,
            product_id=product.product_id,
            supplier_id=product.supplier_id,
            quantity=quantity,
            unit_cost=unit_cost,
            currency=product.currency,
            sale_amount_brl=sale_amount,
            inbound_method=_inbound_method(lifecycle),
            channel=channel,
            carrier=_pick((lifecycle >> 50) & 3, _API_CARRIERS) if channel == "api" else _CHANNEL_CARRIER[channel],
            origin_port=origin,
            destination_port=destination,
            eta_day=eta_day,
            events=events,
        )

    def _orders_with_events_on(self, day: int, events: int, channel: str | None = None) -> Iterator[_OrderPlan]:
        """Plans of the orders with one of ``events`` (a bit mask) on ``day``, by placement day then order id."""
        channel_code = None if channel is None else SHIPMENT_CHANNELS.index(channel)
        for placed_day in range(max(0, day - MAX_LIFECYCLE_DAYS), day + 1):
            for entry in self._order_event_index(placed_day).get(day - placed_day, ()):
                if not entry & events:
                    continue
                if channel_code is not None and (entry >> _EVENT_BITS) & 3 != channel_code:
                    continue
                yield self._order_plan(placed_day, entry >> (_EVENT_BITS + _CHANNEL_BITS))

    def _order_row(self, plan: _OrderPlan, status: str, updated_at: datetime, deleted_at: datetime | None) -> dict:
        placed_day, placed_secs, _ = plan.events[0]
        return {
            "order_id": plan.order_id,
            "customer_id": plan.customer_id,
            "product_id": plan.product_id,
            "supplier_id": plan.supplier_id,
            "quantity": plan.quantity,
            "unit_cost": plan.unit_cost,
            "currency": plan.currency,
            "sale_amount_brl": plan.sale_amount_brl,
            "order_date": self.start_date + timedelta(days=placed_day),
            "status": status,
            "created_at": self._timestamp(placed_day, placed_secs),
            "updated_at": updated_at,
            "deleted_at": deleted_at,
        }

    def _order_changes(self, day: int) -> Iterator[Change]:
        for plan in self._orders_with_events_on(day, _ERP_EVENTS):
            status = "placed"
            for event_day, secs, event in plan.events:
                if event_day > day:
                    break
                status = _ORDER_STATUS_AFTER.get(event, status)
                if event_day == day and event in _ORDER_ROW_EVENTS:
                    at = self._timestamp(event_day, secs)
                    deleted = event == _DELETED
                    op = "insert" if event == _PLACED else "delete" if deleted else "update"
                    yield Change("orders", op, self._order_row(plan, status, at, at if deleted else None))

    # --------------------------------------------------------------------------------------------- partner API

    def payment_changes(self, day: date) -> list[dict[str, Any]]:
        """Payment records changed on ``day`` (each change is a full record; a payment appears once per change).

        ``inbound``: the customer pays the order in BRL (created at confirmation, settled by pix/card/boleto/TED,
        refunded or cancelled if the order is cancelled). ``outbound``: the importer pays the supplier in the
        supplier's currency by SWIFT (created when the goods ship, settled 1-3 days later).
        Ids: ``order_id * 10 + 1`` (inbound) and ``order_id * 10 + 2`` (outbound).
        """
        offset = self._offset(day)
        records: list[dict[str, Any]] = []
        for plan in self._orders_with_events_on(offset, _PAYMENT_EVENTS):
            inbound_status, inbound_paid_at, outbound_paid_at = None, None, None
            for event_day, secs, event in plan.events:
                if event_day > offset:
                    break
                at = self._timestamp(event_day, secs)
                changed = None
                if event == _CONFIRMED:
                    inbound_status = "pending"
                    changed = "inbound"
                elif event == _INBOUND_SETTLED:
                    inbound_status, inbound_paid_at = "settled", at
                    changed = "inbound"
                elif event == _CANCELLED and inbound_status is not None:
                    inbound_status = "refunded" if inbound_status == "settled" else "cancelled"
                    changed = "inbound"
                elif event == _SHIPPED:
                    changed = "outbound"
                elif event == _OUTBOUND_SETTLED:
                    outbound_paid_at = at
                    changed = "outbound"
                if event_day != offset or changed is None:
                    continue
                if changed == "inbound":
                    records.append(self._payment(plan, "inbound", inbound_status, inbound_paid_at, at))
                else:
                    status = "pending" if outbound_paid_at is None else "settled"
                    records.append(self._payment(plan, "outbound", status, outbound_paid_at, at))
        return records

    @staticmethod
    def _payment(plan: _OrderPlan, direction: str, status: str, paid_at: datetime | None, at: datetime) -> dict:
        inbound = direction == "inbound"
        return {
            "payment_id": plan.order_id * 10 + (1 if inbound else 2),
            "order_id": plan.order_id,
            "direction": direction,
            "amount": plan.sale_amount_brl if inbound else (plan.unit_cost * plan.quantity).quantize(_Q2),
            "currency": "BRL" if inbound else plan.currency,
            "method": plan.inbound_method if inbound else "swift",
            "status": status,
            "paid_at": paid_at,
            "updated_at": at,
        }

    def shipment_changes(self, day: date, channel: str = "api") -> list[dict[str, Any]]:
        """Shipment records changed on ``day`` for one channel (``api``, ``oceanic`` or ``skyfreight``).

        Every delivered-or-on-its-way order has exactly one shipment (id ``order_id * 10 + 5``), handled by exactly
        one channel; it appears again each day its status moves: booked -> in_transit -> at_port -> customs ->
        delivered. ``eta`` is the date promised at booking; ``shipped_at``/``delivered_at`` are set when they happen.
        """
        if channel not in SHIPMENT_CHANNELS:
            raise ValueError(f"unknown shipment channel {channel!r}; expected one of {SHIPMENT_CHANNELS}")
        offset = self._offset(day)
        records: list[dict[str, Any]] = []
        for plan in self._orders_with_events_on(offset, _SHIPMENT_EVENTS, channel):
            if plan.eta_day is None:  # cancelled after confirmation: never booked
                continue
            shipped_at = delivered_at = None
            for event_day, secs, event in plan.events:
                if event_day > offset:
                    break
                status = _SHIPMENT_STATUS_AFTER.get(event)
                if status is None:
                    continue
                at = self._timestamp(event_day, secs)
                shipped_at = at if event == _SHIPPED else shipped_at
                delivered_at = at if event == _DELIVERED else delivered_at
                if event_day == offset:
                    records.append({
                        "shipment_id": plan.order_id * 10 + 5,
                        "order_id": plan.order_id,
                        "carrier": plan.carrier,
                        "status": status,
                        "origin_port": plan.origin_port,
                        "destination_port": plan.destination_port,
                        "shipped_at": shipped_at,
                        "eta": self.start_date + timedelta(days=plan.eta_day),
                        "delivered_at": delivered_at,
                        "updated_at": at,
                    })  # fmt: skip
        return records

    def fx_rates(self, day: date) -> list[dict[str, Any]]:
        """BRL per unit of USD, EUR and CNY published on ``day`` (PTAX-like, 4 decimals, at about 16:00 UTC).

        Published on business days only (:func:`is_fx_publication_day`), so weekends and holidays have no rate and an
        order of such a day needs the latest rate *as of* its date. Available from ``FX_HISTORY_DAYS`` before
        ``start_date``.
        """
        offset = (day - self.start_date).days
        if not -FX_HISTORY_DAYS <= offset < self._days:
            raise ValueError(f"no FX rates for {day}: they exist from {FX_HISTORY_DAYS} days before {self.start_date}")
        if not is_fx_publication_day(day):
            return []
        rates = self._fx_rates_through(offset)[offset]
        published_at = self._timestamp(offset, 57_600 + _mix(self._seed ^ offset) % 600)
        return [
            {
                "rate_date": day,
                "base_currency": currency,
                "quote_currency": "BRL",
                "rate": rate,
                "published_at": published_at,
            }
            for currency, rate in zip(CURRENCIES, rates, strict=True)
        ]

    def _fx_rates_through(self, offset: int) -> dict[int, tuple[Decimal, ...]]:
        """The rate walk, extended sequentially (it is a random walk: each day depends on the previous)."""
        with self._fx_lock:
            if not self._fx_levels:
                self._fx_levels = [math.log(_FX_ANCHORS[currency]) for currency in CURRENCIES]
            while self._fx_next_day <= offset:
                day = self._fx_next_day
                if is_fx_publication_day(self.start_date + timedelta(days=day)):
                    for position, currency in enumerate(CURRENCIES):
                        anchor = math.log(_FX_ANCHORS[currency])
                        level = self._fx_levels[position]
                        # Mean-reverting in log space: realistic day-to-day noise, no drift to absurd levels.
                        level += 0.02 * (anchor - level) + _FX_DAILY_VOLATILITY[currency] * self._fx_rng.gauss(0, 1)
                        self._fx_levels[position] = level
                    self._fx_series[day] = tuple(_to_decimal(math.exp(level), _Q4) for level in self._fx_levels)
                self._fx_next_day += 1
            return self._fx_series

    # ------------------------------------------------------------------------------------------------ forecast

    def forecast_projects(self) -> list[dict[str, Any]]:
        """The planning projects (about 10 at scale 1), ordered by id."""
        projects = []
        for project_id in range(1, self.forecast_project_count + 1):
            value = _mix(self._key["project"] + project_id)
            with self._seeded_faker("project-owner", project_id) as fake:
                owner = fake.name()
            year = self.start_date.year
            projects.append({
                "project_id": project_id,
                "name": f"{_pick(value, _PROJECT_THEMES)} {_pick(value >> 8, _PROJECT_REGIONS)} {year}",
                "owner": owner,
                "created_at": self._timestamp(-10 - (value >> 16) % 180, 32_400 + (value >> 32) % 28_800),
            })  # fmt: skip
        return projects

    def has_forecast_project(self, project_id: int) -> bool:
        return 1 <= project_id <= self.forecast_project_count

    def _forecast_months(self) -> list[date]:
        first = self.start_date.replace(day=1)
        return [
            date(first.year + (first.month - 1 + n) // 12, (first.month - 1 + n) % 12 + 1, 1)
            for n in range(FORECAST_MONTHS)
        ]

    def forecast_baseline(self, project_id: int) -> list[dict[str, Any]]:
        """Monthly baseline revenue of a project in BRL, for the 12 months from ``start_date``'s month."""
        self._require_project(project_id)
        size = 80_000 * (1 + 18 * _unit(_mix(self._key["project"] ^ (project_id << 8))))
        rows = []
        for position, month in enumerate(self._forecast_months()):
            noise = 0.9 + 0.2 * _unit(_mix(self._key["project"] ^ (project_id << 16) ^ position))
            amount = _to_decimal(size * _MONTH_SEASONALITY[month.month - 1] * noise, _Q2)
            rows.append({"project_id": project_id, "month": month, "amount_brl": amount})
        return rows

    def forecast_scenarios(self, project_id: int) -> list[dict[str, Any]]:
        """Optimistic, base and pessimistic monthly revenue of a project in BRL, around its baseline."""
        ranges = {"optimistic": (1.08, 1.25), "base": (0.97, 1.03), "pessimistic": (0.70, 0.92)}
        rows = []
        for scenario in FORECAST_SCENARIOS:
            low, high = ranges[scenario]
            for position, baseline in enumerate(self.forecast_baseline(project_id)):
                roll = _unit(_mix(self._key["project"] ^ (project_id << 24) ^ (position << 4) ^ len(rows)))
                amount = (baseline["amount_brl"] * Decimal(low + (high - low) * roll)).quantize(_Q2)
                rows.append(
                    {"project_id": project_id, "scenario": scenario, "month": baseline["month"], "amount_brl": amount}
                )
        return rows

    def _require_project(self, project_id: int) -> None:
        if not self.has_forecast_project(project_id):
            raise KeyError(f"no forecast project {project_id}")


def generate(config: DemoConfig) -> World:
    """The demo world for ``config``: cheap (O(days)); every day's data is generated lazily and deterministically."""
    return World(config)
