"""The medallion on DuckDB, for real: dbt from its own virtualenv over raw lakes landed from the demo world.

* one full build runs every model, the snapshot, every data test and both unit tests;
* the same days run one interval at a time (landed day by day, as in production) give the same bronze, silver and
  gold tables as that full build, and rerunning a past interval changes nothing;
* the ERP's inserts, updates and deletes, and the partner's payments and shipments, end up in silver exactly once
  (checked against the ERP database and the world, not against dbt);
* no PII leaves bronze; the customer history records every day a customer changed;
* a lake holding only the ERP (the walking skeleton's) builds too: datasets nothing has landed read as empty.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from conftest import DAYS, Dbt, land
from warehouse import differences, query, tables

pytestmark = pytest.mark.integration

BRONZE = {
    "brz_erp__customers", "brz_erp__suppliers", "brz_erp__products", "brz_erp__orders", "brz_partner__payments",
    "brz_partner__fx_rates", "brz_partner__shipments", "brz_files__shipments", "brz_forecast__projects",
    "brz_forecast__baselines", "brz_forecast__scenarios",
}  # fmt: skip
SILVER = {
    "slv_customers", "slv_suppliers", "slv_products", "slv_orders", "slv_payments", "slv_shipments", "slv_fx_rates",
    "slv_forecast_projects", "slv_forecast_monthly", "fct_order_correlated", "snp_customers",
}  # fmt: skip
GOLD = {
    "agg_monthly_orders", "agg_monthly_cash_flow", "agg_monthly_forecast_vs_actual", "ml_order_features",
    "rank_top_suppliers", "rank_top_products",
}  # fmt: skip
# Built over the ops raw datasets (empty here: no run has been landed), by the observability DAG in production.
OBSERVABILITY = {
    "obs_dbt_invocations", "obs_model_runs", "obs_test_results", "obs_extraction_runs", "obs_source_freshness",
}  # fmt: skip


def test_full_build_runs_every_model_data_test_and_unit_test(full_refresh):
    dbt, _ = full_refresh
    results = dbt.run_results()
    failed = [(r["unique_id"], r["status"]) for r in results if r["status"] not in ("success", "pass")]
    assert not failed
    kinds = Counter(r["unique_id"].split(".")[0] for r in results)
    assert kinds["model"] == len(BRONZE) + len(SILVER) + len(GOLD) + len(OBSERVABILITY) - 1
    assert kinds["snapshot"] == 1
    assert kinds["test"] >= 150
    unit_tests = {r["unique_id"].rsplit(".", 1)[1] for r in results if r["unique_id"].startswith("unit_test.")}
    assert unit_tests == {
        "slv_orders_cdc_merge_newer_wins_and_soft_deletes",
        "fct_order_correlated_converts_cost_at_the_fx_rate_as_of_the_order_date",
        "fct_order_correlated_converts_payments_at_the_fx_rate_as_of_the_day_paid",
        "agg_monthly_cash_flow_counts_each_settled_payment_in_the_month_it_was_paid",
        "obs_model_runs_athena_cost_has_a_10_mb_minimum_and_is_null_off_athena",
        "obs_dbt_invocations_sum_athena_cost_over_every_query",
    }
    built = set(tables(dbt.warehouse))
    expected = {f"bronze.{n}" for n in BRONZE} | {f"silver.{n}" for n in SILVER} | {f"gold.{n}" for n in GOLD}
    assert built == expected
    empty = [name for name in built if not query(dbt.warehouse, f"select count(*) from {name}")[0][0]]
    assert not empty, "every table has rows over the test window"


def test_daily_incremental_runs_equal_one_full_refresh(full_refresh, daily):
    full, _ = full_refresh
    incremental, _ = daily
    names = [name for name in tables(full.warehouse) if not name.endswith("snp_customers")]
    assert names == [name for name in tables(incremental.warehouse) if not name.endswith("snp_customers")]
    assert differences(full.warehouse, incremental.warehouse, names) == {}


def test_rerunning_a_past_interval_is_idempotent(daily, tmp_path):
    dbt, _ = daily
    rerun = dbt.copy(tmp_path / "rerun")
    rerun("build", "--exclude", "resource_type:unit_test", interval=DAYS[2])
    names = tables(dbt.warehouse)  # the snapshot included
    assert differences(dbt.warehouse, rerun.warehouse, names) == {}


def test_erp_inserts_updates_and_deletes_are_applied_exactly_once(daily):
    dbt, builder = daily
    erp_orders = {row["order_id"]: row for row in builder.erp_table("orders")}
    silver = {
        order_id: (status, updated_at, is_deleted)
        for order_id, status, updated_at, is_deleted in query(
            dbt.warehouse, "select order_id, order_status, updated_at, is_deleted from silver.slv_orders"
        )
    }
    assert silver == {
        order_id: (row["status"], row["updated_at"], row["deleted_at"] is not None)
        for order_id, row in erp_orders.items()
    }
    deleted = {order_id for order_id, row in erp_orders.items() if row["deleted_at"] is not None}
    assert deleted, "the window deletes orders"
    # Each delete was extracted once (one D per deleted order in bronze) and removed from the fact.
    delete_rows = query(dbt.warehouse, "select order_id from bronze.brz_erp__orders where cdc_operation = 'D'")
    assert sorted(order_id for (order_id,) in delete_rows) == sorted(deleted)
    fact = {order_id for (order_id,) in query(dbt.warehouse, "select order_id from silver.fct_order_correlated")}
    assert fact == set(erp_orders) - deleted

    erp_customers = {row["customer_id"]: row for row in builder.erp_table("customers")}
    silver_customers = dict(query(dbt.warehouse, "select customer_id, updated_at from silver.slv_customers"))
    assert silver_customers == {customer_id: row["updated_at"] for customer_id, row in erp_customers.items()}


def test_partner_payments_and_shipments_are_applied_exactly_once(daily, world):
    dbt, _ = daily
    payments, shipments = {}, {}
    for day in DAYS:  # the latest record of each wins
        payments.update({p["payment_id"]: (p["payment_status"], p["updated_at"]) for p in _payments(world, day)})
        for channel in ("api", "oceanic", "skyfreight"):
            changes = world.shipment_changes(day, channel)
            shipments.update({s["shipment_id"]: (channel, s["status"], s["updated_at"]) for s in changes})
    silver_payments = query(dbt.warehouse, "select payment_id, payment_status, updated_at from silver.slv_payments")
    assert {payment_id: (status, at) for payment_id, status, at in silver_payments} == payments
    silver_shipments = query(
        dbt.warehouse, "select shipment_id, shipment_channel, shipment_status, updated_at from silver.slv_shipments"
    )
    assert {row[0]: row[1:] for row in silver_shipments} == shipments


def _payments(world, day: date) -> list[dict]:
    return [{**p, "payment_status": p["status"]} for p in world.payment_changes(day)]


def test_no_pii_leaves_bronze(daily):
    dbt, builder = daily
    pii = set()
    for row in builder.erp_table("customers"):
        pii |= {row["name"], row["email"], row["tax_id"], row["phone"]}
    columns = query(
        dbt.warehouse,
        "select table_schema || '.' || table_name, column_name from information_schema.columns "
        "where table_schema in ('silver', 'gold') and data_type = 'VARCHAR'",
    )
    leaked = {}
    for table, column in columns:
        values = {value for (value,) in query(dbt.warehouse, f"select distinct {column} from {table}")}
        if found := values & pii:
            leaked[f"{table}.{column}"] = len(found)
    assert not leaked


def test_customer_history_keeps_a_version_per_day_a_customer_changed(daily):
    dbt, _ = daily
    # The ERP extraction lands each changed customer's end-of-day state once a day; the snapshot, run daily, keeps
    # each of those states as a version.
    (versions,) = query(dbt.warehouse, "select count(*) from silver.snp_customers")[0]
    (changes,) = query(dbt.warehouse, "select count(*) from bronze.brz_erp__customers")[0]
    (customers,) = query(dbt.warehouse, "select count(*) from silver.slv_customers")[0]
    assert versions == changes > customers


def test_a_lake_with_only_the_erp_builds(world, tmp_path):
    """The walking skeleton's lake: sources nothing has landed yet read as empty and every test still passes."""
    builder = land(world, tmp_path, [])
    try:
        builder.land_erp_day(DAYS[0])
        dbt = Dbt(builder.lake.uri, tmp_path / "warehouse.duckdb", tmp_path)
        dbt("build", "--exclude", "resource_type:unit_test", interval=DAYS[0])
    finally:
        builder.close()
    assert query(dbt.warehouse, "select count(*) from silver.slv_payments") == [(0,)]
    assert query(dbt.warehouse, "select count(*) from gold.agg_monthly_orders")[0][0] > 0
