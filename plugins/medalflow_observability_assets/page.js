// The medalflow page's charts (Chart.js, served next to this file). The figures come from the page itself, in the
// <script id="chart-data" type="application/json"> element the server rendered: no second request, no inline script.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const colors = {
    good: "#2e7d32", bad: "#c62828", warn: "#ef6c00", blue: "#1565c0", grey: "#757575",
    series: ["#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#2e7d32"],
  };
  Chart.defaults.animation = false; // a status page: draw at once (and screenshots see the final picture)
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = "system-ui, sans-serif";
  Chart.defaults.datasets.bar.order = 1;
  const charts = {};
  window.medalflowCharts = charts;

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (canvas) charts[id] = new Chart(canvas, config);
  }
  const money = (value) => value == null ? "—" : value.toLocaleString("en", { maximumFractionDigits: 0 });
  const days = data.daily.map((d) => d.day.slice(5));

  // Mixed charts: "bar" at the top, each line dataset saying it is one (Chart.js needs the chart's type for its axes)
  // and drawn over the bars (a lower order is drawn later).
  draw("chart-runs", {
    type: "bar",
    data: {
      labels: days,
      datasets: [
        { type: "bar", label: "succeeded", data: data.daily.map((d) => d.succeeded), backgroundColor: colors.good, stack: "runs" },
        { type: "bar", label: "failed", data: data.daily.map((d) => d.failed), backgroundColor: colors.bad, stack: "runs" },
        { type: "line", label: "success rate %", yAxisID: "rate", order: 0, borderColor: colors.blue, pointRadius: 0, spanGaps: true,
          data: data.daily.map((d) => d.success_rate == null ? null : Math.round(d.success_rate * 1000) / 10) },
      ],
    },
    options: {
      scales: {
        x: { stacked: true }, y: { stacked: true, title: { display: true, text: "runs" } },
        rate: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false }, title: { display: true, text: "%" } },
      },
    },
  });

  draw("chart-models", {
    type: "line",
    data: {
      labels: data.model_trend.days.map((d) => d.slice(5)),
      datasets: data.model_trend.series.map((s, i) => ({
        label: s.model_name, data: s.seconds, borderColor: colors.series[i % colors.series.length], pointRadius: 0,
        spanGaps: true,
      })),
    },
    options: { scales: { y: { title: { display: true, text: "seconds" } } } },
  });

  draw("chart-quarantine", {
    type: "bar",
    data: { labels: days, datasets: [{ label: "quarantined records", data: data.daily.map((d) => d.quarantined_rows), backgroundColor: colors.warn }] },
  });

  if (data.cost_available) {
    draw("chart-cost", {
      type: "bar",
      data: { labels: days, datasets: [{ label: "Athena cost (USD)", data: data.daily.map((d) => d.cost_usd), backgroundColor: colors.blue }] },
    });
  }

  const gold = data.gold;
  if (gold.cash_flow) {
    draw("chart-cash-flow", {
      type: "bar",
      data: {
        labels: gold.cash_flow.months,
        datasets: [
          { type: "bar", label: "inflow", data: gold.cash_flow.inflow_brl, backgroundColor: colors.good },
          { type: "bar", label: "outflow", data: gold.cash_flow.outflow_brl.map((v) => v == null ? null : -v), backgroundColor: colors.bad },
          { type: "line", label: "net", order: 0, data: gold.cash_flow.net_cash_flow_brl, borderColor: colors.blue, pointRadius: 2 },
        ],
      },
      options: { scales: { x: { stacked: true }, y: { ticks: { callback: money } } } },
    });
  }
  if (gold.orders) {
    draw("chart-orders", {
      type: "bar",
      data: {
        labels: gold.orders.months,
        datasets: [
          { type: "bar", label: "orders", data: gold.orders.order_count, backgroundColor: colors.series[2] },
          { type: "line", label: "sales (BRL)", yAxisID: "sales", order: 0, data: gold.orders.sales_brl, borderColor: colors.series[1], pointRadius: 2 },
        ],
      },
      options: {
        scales: {
          y: { title: { display: true, text: "orders" } },
          sales: { position: "right", grid: { drawOnChartArea: false }, ticks: { callback: money } },
        },
      },
    });
  }
  if (gold.forecast) {
    const scenario = (key, label, color, dash) => ({
      label, data: gold.forecast[key], borderColor: color, borderDash: dash, pointRadius: 0, spanGaps: true,
    });
    draw("chart-forecast", {
      type: "line",
      data: {
        labels: gold.forecast.months,
        datasets: [
          scenario("optimistic_brl", "optimistic", colors.good, [4, 4]),
          scenario("base_brl", "base", colors.blue, []),
          scenario("pessimistic_brl", "pessimistic", colors.bad, [4, 4]),
          scenario("baseline_brl", "baseline", colors.grey, [2, 2]),
          { label: "actual", data: gold.forecast.actual_sales_brl, borderColor: "#000", backgroundColor: "#000", pointRadius: 3, borderWidth: 2 },
        ],
      },
      options: { scales: { y: { ticks: { callback: money } } } },
    });
  }
})();
