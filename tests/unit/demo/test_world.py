"""The demo world: deterministic, lazy, and realistic enough that the pipeline's hard cases really occur."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest

from medalflow_demo.world import (
    CURRENCIES,
    ERP_TABLES,
    MAX_LIFECYCLE_DAYS,
    SHIPMENT_CHANNELS,
    DemoConfig,
    World,
    generate,
    is_fx_publication_day,
)

START = date(2026, 1, 1)
END = date(2026, 3, 1)
TOOLS_DIR = Path(__file__).resolve().parents[3] / "tools"


def _serialise(value: object) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def world_digest(world: World, days: list[date]) -> str:
    """A digest of everything the world produces for these days (all source systems)."""
    digest = hashlib.sha256()
    for day in days:
        for change in world.erp_changes(day):
            digest.update(_serialise([change.table, change.op, change.row]).encode())
        digest.update(_serialise(world.payment_changes(day)).encode())
        for channel in SHIPMENT_CHANNELS:
            digest.update(_serialise(world.shipment_changes(day, channel)).encode())
        digest.update(_serialise(world.fx_rates(day)).encode())
    for project in world.forecast_projects():
        digest.update(_serialise([project, world.forecast_baseline(project["project_id"])]).encode())
        digest.update(_serialise(world.forecast_scenarios(project["project_id"])).encode())
    return digest.hexdigest()


DIGEST_DAYS = [START, START + timedelta(days=1), date(2026, 1, 20), date(2026, 2, 3)]


@pytest.fixture(scope="module")
def world() -> World:
    return generate(DemoConfig(seed=42, scale=1.0, start_date=START, end_date=END))


@pytest.fixture(scope="module")
def erp_days(world: World) -> dict[date, list]:
    """The ERP changes of the first 45 days (enough for orders placed early to finish their lifecycle)."""
    return {day: list(world.erp_changes(day)) for day in world.days(START, START + timedelta(days=45))}


def test_same_config_gives_identical_data(world: World) -> None:
    again = generate(DemoConfig(seed=42, scale=1.0, start_date=START, end_date=END))
    assert world_digest(again, DIGEST_DAYS) == world_digest(world, DIGEST_DAYS)


def test_other_seed_gives_other_data(world: World) -> None:
    other = generate(DemoConfig(seed=7, scale=1.0, start_date=START, end_date=END))
    assert world_digest(other, DIGEST_DAYS[:2]) != world_digest(world, DIGEST_DAYS[:2])


def test_data_does_not_depend_on_the_process(world: World) -> None:
    """Another interpreter, with another string-hash salt, produces the same bytes."""
    helper = (
        "import sys\n"
        f"sys.path.insert(0, {str(TOOLS_DIR)!r})\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from datetime import date\n"
        "from medalflow_demo.world import DemoConfig, generate\n"
        "from test_world import world_digest, DIGEST_DAYS\n"
        f"world = generate(DemoConfig(seed=42, scale=1.0, start_date=date({START:%Y, %-m, %-d}), "
        f"end_date=date({END:%Y, %-m, %-d})))\n"
        "print(world_digest(world, DIGEST_DAYS))\n"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", helper], capture_output=True, text=True, check=True, env=environment, timeout=120
    )
    assert result.stdout.strip() == world_digest(world, DIGEST_DAYS)


def test_a_day_alone_equals_the_same_day_after_its_predecessors(world: World) -> None:
    day = date(2026, 2, 10)
    alone = generate(DemoConfig(seed=42, scale=1.0, start_date=START, end_date=END))
    assert world_digest(alone, [day]) == world_digest(world, [day])


def test_the_end_date_does_not_change_history() -> None:
    short = generate(DemoConfig(seed=42, scale=1.0, start_date=START, end_date=date(2026, 1, 20)))
    long = generate(DemoConfig(seed=42, scale=1.0, start_date=START, end_date=date(2027, 1, 1)))
    days = [START, date(2026, 1, 19)]
    assert world_digest(short, days) == world_digest(long, days)


def test_config_is_validated(world: World) -> None:
    with pytest.raises(ValueError, match="end_date"):
        DemoConfig(start_date=START, end_date=START)
    with pytest.raises(ValueError, match="scale"):
        DemoConfig(scale=0, start_date=START, end_date=END)
    with pytest.raises(ValueError, match="outside"):
        list(world.erp_changes(END))
    with pytest.raises(ValueError, match="outside"):
        list(world.erp_changes(START - timedelta(days=1)))


def test_every_day_has_inserts_updates_and_soft_deletes(erp_days: dict[date, list]) -> None:
    for day, changes in erp_days.items():
        ops = Counter(change.op for change in changes)
        assert min(ops["insert"], ops["update"], ops["delete"]) > 0, (day, ops)
        tables = Counter(change.table for change in changes if change.op != "insert")
        assert min(tables["orders"], tables["customers"]) > 0, (day, tables)


def test_the_initial_population_is_migrated_on_the_first_day(world: World, erp_days: dict[date, list]) -> None:
    first = Counter((change.table, change.op) for change in erp_days[START])
    assert first["suppliers", "insert"] == world.supplier_count == 40
    assert first["customers", "insert"] >= world.initial_customer_count == 200
    assert first["products", "insert"] >= world.initial_product_count == 300
    assert 100 <= first["orders", "insert"] <= 250


def test_changes_are_stamped_inside_their_day_and_consistent(erp_days: dict[date, list]) -> None:
    for day, changes in erp_days.items():
        midnight = datetime.combine(day, datetime.min.time())
        for change in changes:
            row = change.row
            assert midnight <= row["updated_at"] < midnight + timedelta(days=1), change
            assert row["created_at"] <= row["updated_at"], change
            # What change data capture derives from a row (created or deleted in the interval) agrees with the op.
            if change.op == "insert":
                assert row["created_at"] >= midnight, change
            assert (change.op == "delete") == (row["deleted_at"] == row["updated_at"]), change


def test_changes_of_a_row_come_in_time_order_and_some_rows_change_twice_a_day(erp_days: dict[date, list]) -> None:
    for day, changes in erp_days.items():
        last_seen: dict[tuple[str, int], datetime] = {}
        customers_changed: Counter[int] = Counter()
        for change in changes:
            key = (change.table, change.key)
            assert last_seen.get(key, datetime.min) < change.row["updated_at"], change
            last_seen[key] = change.row["updated_at"]
            if change.table == "customers":
                customers_changed[change.key] += 1
        assert max(customers_changed.values()) >= 2, day
        assert [change.table for change in changes] == sorted(
            (change.table for change in changes), key=ERP_TABLES.index
        ), "tables must come in foreign-key order"


def test_updates_change_something(erp_days: dict[date, list]) -> None:
    previous: dict[tuple[str, int], dict] = {}
    changed_fields: Counter[str] = Counter()
    for changes in erp_days.values():
        for change in changes:
            key = (change.table, change.key)
            if change.op == "update":
                before = previous[key]
                differences = {
                    name for name, value in change.row.items() if before[name] != value and name != "updated_at"
                }
                assert differences, change
                changed_fields.update(f"{change.table}.{name}" for name in differences)
            previous[key] = change.row
    for expected in ("customers.email", "customers.phone", "products.unit_cost", "products.list_price_brl"):
        assert changed_fields[expected] > 0, expected
    assert changed_fields["orders.status"] > 1000


def test_orders_reference_what_exists_when_they_are_placed(erp_days: dict[date, list]) -> None:
    rows: dict[str, dict[int, dict]] = defaultdict(dict)
    order_inserts = 0
    for changes in erp_days.values():
        for change in changes:
            row = change.row
            if change.table == "orders" and change.op == "insert":
                order_inserts += 1
                customer = rows["customers"][row["customer_id"]]
                product = rows["products"][row["product_id"]]
                supplier = rows["suppliers"][row["supplier_id"]]
                assert customer["deleted_at"] is None
                assert customer["created_at"] < row["created_at"]
                assert product["created_at"] < row["created_at"]
                assert product["supplier_id"] == row["supplier_id"]
                assert row["currency"] == supplier["currency"]
                assert row["unit_cost"] == product["unit_cost"], "orders are costed at the product's current price"
                assert row["order_date"] == row["created_at"].date()
                assert row["quantity"] > 0
                assert row["sale_amount_brl"] > 0
            rows[change.table][change.key] = row
    assert order_inserts > 5000


def test_orders_move_through_their_lifecycle(erp_days: dict[date, list], world: World) -> None:
    allowed = {
        "placed": {"confirmed", "cancelled"},
        "confirmed": {"shipped", "cancelled"},
        "shipped": {"delivered"},
    }
    status: dict[int, str] = {}
    deleted: set[int] = set()
    for changes in erp_days.values():
        for change in changes:
            if change.table != "orders":
                continue
            row = change.row
            if change.op == "insert":
                assert row["status"] == "placed"
                assert row["order_id"] not in status
            elif change.op == "delete":
                assert row["order_id"] not in deleted
                deleted.add(row["order_id"])
            else:
                assert row["order_id"] not in deleted, "a soft-deleted order does not change any more"
                assert row["status"] in allowed[status[row["order_id"]]], change
            status[row["order_id"]] = row["status"]
    placed_early = [
        order_id for order_id in status if order_id <= world.last_order_id_through(START + timedelta(days=10))
    ]
    outcomes = Counter(status[order_id] for order_id in placed_early if order_id not in deleted)
    # Orders placed in the first 10 days have all finished within MAX_LIFECYCLE_DAYS: delivered or cancelled.
    assert MAX_LIFECYCLE_DAYS < 45 - 10
    assert set(outcomes) == {"delivered", "cancelled"}
    assert 0.03 < outcomes["cancelled"] / sum(outcomes.values()) < 0.12
    assert 0.01 < len(deleted) / len(status) < 0.04


def test_customers_and_products_appear_over_time_and_some_customers_are_deleted(erp_days: dict[date, list]) -> None:
    later = [change for day, changes in erp_days.items() if day > START for change in changes]
    kinds = Counter((change.table, change.op) for change in later)
    assert kinds["customers", "insert"] > 10
    assert kinds["products", "insert"] > 5
    assert 3 <= kinds["customers", "delete"] <= 30
    assert kinds["products", "delete"] == kinds["suppliers", "delete"] == 0


def test_tax_ids_and_segments_look_brazilian(erp_days: dict[date, list]) -> None:
    customers = [change.row for change in erp_days[START] if change.table == "customers"]
    for customer in customers:
        if customer["segment"] == "retail":
            assert len(customer["tax_id"]) == 14
            assert customer["tax_id"][3] == "."
        else:
            assert len(customer["tax_id"]) == 18
            assert "/" in customer["tax_id"]
        assert "@" in customer["email"]
        assert len(customer["state"]) == 2
    assert {customer["segment"] for customer in customers} == {"retail", "wholesale", "corporate"}


def test_payments_reference_orders_already_placed(world: World) -> None:
    seen_orders = 0
    for day in world.days(START, START + timedelta(days=30)):
        payments = world.payment_changes(day)
        assert payments, day
        midnight = datetime.combine(day, datetime.min.time())
        for payment in payments:
            assert 1 <= payment["order_id"] <= world.last_order_id_through(day)
            assert world.order_placed_on(payment["order_id"]) <= day
            assert midnight <= payment["updated_at"] < midnight + timedelta(days=1)
            assert payment["payment_id"] == payment["order_id"] * 10 + (1 if payment["direction"] == "inbound" else 2)
            if payment["direction"] == "inbound":
                assert payment["currency"] == "BRL"
            else:
                assert payment["currency"] in CURRENCIES
                assert payment["method"] == "swift"
            assert (payment["paid_at"] is not None) == (payment["status"] in ("settled", "refunded"))
            seen_orders += 1
    assert seen_orders > 1000


def test_payment_amounts_match_the_orders(world: World, erp_days: dict[date, list]) -> None:
    orders = {change.key: change.row for changes in erp_days.values() for change in changes if change.table == "orders"}
    payments = [
        payment for day in world.days(START, START + timedelta(days=20)) for payment in world.payment_changes(day)
    ]
    statuses = Counter(payment["status"] for payment in payments)
    assert statuses["pending"]
    assert statuses["settled"]
    assert statuses["refunded"] + statuses["cancelled"]
    for payment in payments:
        order = orders[payment["order_id"]]
        if payment["direction"] == "inbound":
            assert payment["amount"] == order["sale_amount_brl"]
        else:
            assert payment["amount"] == (order["unit_cost"] * order["quantity"]).quantize(payment["amount"])
            assert payment["currency"] == order["currency"]


def test_each_shipment_belongs_to_one_channel_and_progresses(world: World, erp_days: dict[date, list]) -> None:
    order = ["booked", "in_transit", "at_port", "customs", "delivered"]
    owners: dict[int, str] = {}
    history: dict[int, list[str]] = defaultdict(list)
    for day in world.days(START, START + timedelta(days=45)):
        for channel in SHIPMENT_CHANNELS:
            for shipment in world.shipment_changes(day, channel):
                assert owners.setdefault(shipment["shipment_id"], channel) == channel
                assert shipment["shipment_id"] == shipment["order_id"] * 10 + 5
                history[shipment["shipment_id"]].append(shipment["status"])
                assert (shipment["shipped_at"] is None) == (shipment["status"] == "booked")
                assert (shipment["delivered_at"] is None) == (shipment["status"] != "delivered")
    assert set(Counter(owners.values())) == set(SHIPMENT_CHANNELS)
    for statuses in history.values():
        assert statuses == order[order.index(statuses[0]) : order.index(statuses[0]) + len(statuses)]
    # The ERP's order status follows its shipment: shipped when in transit, delivered when delivered.
    shipped_days = {
        change.key: day
        for day, changes in erp_days.items()
        for change in changes
        if change.table == "orders" and change.row["status"] == "shipped"
    }
    in_transit_days = {
        shipment["order_id"]: day
        for day in world.days(START, START + timedelta(days=45))
        for channel in SHIPMENT_CHANNELS
        for shipment in world.shipment_changes(day, channel)
        if shipment["status"] == "in_transit"
    }
    assert shipped_days == in_transit_days


def test_fx_rates_are_published_on_business_days_only(world: World) -> None:
    first = START - timedelta(days=45)
    for offset in range((END - first).days):
        day = first + timedelta(days=offset)
        rates = world.fx_rates(day)
        if not is_fx_publication_day(day):
            assert rates == []
            continue
        assert [rate["base_currency"] for rate in rates] == list(CURRENCIES)
        bounds = {"USD": (4.0, 6.5), "EUR": (4.5, 7.0), "CNY": (0.55, 0.9)}
        for rate in rates:
            low, high = bounds[rate["base_currency"]]
            assert low < rate["rate"] < high
            assert rate["quote_currency"] == "BRL"
            assert rate["published_at"].date() == day
    assert world.fx_rates(date(2026, 1, 3)) == []  # a Saturday
    assert world.fx_rates(date(2025, 12, 25)) == []  # Christmas
    with pytest.raises(ValueError, match="no FX rates"):
        world.fx_rates(first - timedelta(days=1))


def test_forecast_is_hierarchical(world: World) -> None:
    projects = world.forecast_projects()
    assert len(projects) == 10
    for project in projects:
        baseline = world.forecast_baseline(project["project_id"])
        assert [row["month"] for row in baseline] == [date(2026, month, 1) for month in range(1, 13)]
        scenarios = world.forecast_scenarios(project["project_id"])
        assert len(scenarios) == 36
        by_month = defaultdict(dict)
        for row in scenarios:
            by_month[row["month"]][row["scenario"]] = row["amount_brl"]
        for amounts in by_month.values():
            assert amounts["optimistic"] > amounts["base"] > amounts["pessimistic"] > 0
    with pytest.raises(KeyError):
        world.forecast_baseline(11)


def test_tiny_scale_still_has_everything() -> None:
    tiny = generate(DemoConfig(scale=0.05, start_date=START, end_date=END))
    assert tiny.supplier_count >= 3
    assert tiny.initial_customer_count >= 10
    for day in tiny.days(START, START + timedelta(days=7)):
        ops = Counter(change.op for change in tiny.erp_changes(day))
        assert ops["insert"]
        assert ops["update"]
        assert ops["delete"]
        assert tiny.order_count(day) >= 1


def test_huge_scale_is_lazy() -> None:
    began = time.monotonic()
    huge = generate(DemoConfig(scale=1000, start_date=START, end_date=date(2026, 2, 3)))
    first = list(islice(huge.erp_changes(START), 1000))
    assert time.monotonic() - began < 5
    assert len(first) == 1000
    assert {change.table for change in first} == {"suppliers"}
    assert huge.supplier_count == 40_000
    orders = sum(huge.order_count(day) for day in huge.days())
    assert 4_000_000 < orders < 6_000_000
