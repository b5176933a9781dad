"""The report as one HTML file: the plotly.js bundle inlined once in <head> (no CDN, opens with
no network), one section per chart, the metrics table and a searchable table of decisions."""

from __future__ import annotations

import html
import math
from typing import Any

import plotly.io as pio
from plotly.offline import get_plotlyjs

from agent.metrics import SUMMARY_METRICS
from agent.report.charts import figures
from agent.report.load import RunData

_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
_PERCENT = {"total_return", "cagr", "max_drawdown", "turnover"}
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 0 16px;
       color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
nav a { margin-right: 1em; } .note { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
#decisions-box { max-height: 600px; overflow: auto; border: 1px solid #ddd; }
#decisions thead th { position: sticky; top: 0; background: #f6f6f6; }
#decisions td:nth-child(-n+4) { white-space: nowrap; } #decisions td:last-child { font-size: 0.8em;
  color: #666; }
#decision-search { width: 420px; padding: 4px; margin: 6px 0; }
tr.trade td { background: #f2f8ff; } tr.refused td { background: #fff6f0; }
#decisions td:nth-child(6) { font-size: 0.85em; min-width: 16em; }
#decisions .fill { color: #2a6f2a; padding-left: 1em; } #decisions .cid { color: #777; }
"""
_SEARCH_JS = """
(function () {
  var box = document.getElementById('decision-search');
  var count = document.getElementById('decision-count');
  var rows = Array.prototype.slice.call(document.querySelectorAll('#decisions tbody tr'));
  var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
  function filter() {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row, i) {
      var hit = words.every(function (w) { return texts[i].indexOf(w) >= 0; });
      row.hidden = !hit;
      if (hit) { shown += 1; }
    });
    count.textContent = shown + ' of ' + rows.length + ' decisions';
  }
  box.addEventListener('input', filter);
  filter();
})();
"""


def render(run: RunData) -> str:
    charts = figures(run)
    first, last = run.equity.index[0].date(), run.equity.index[-1].date()
    nav = [f'<a href="#{key}">{html.escape(title)}</a>' for key, (title, _) in charts.items()]
    nav += ['<a href="#metrics">Metrics</a>', '<a href="#decisions-section">Decisions</a>']
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>spillover report: {html.escape(run.folder.name)}</title>",
        f"<style>{_STYLE}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head><body>",
        f"<h1>spillover report: {html.escape(str(run.folder))}</h1>",
        f'<p class="note">{first} to {last}; equity from {html.escape(run.source)}; '
        f"{len(run.decisions)} decisions.{_skipped(run)}</p>",
        f"<nav>{' '.join(nav)}</nav>",
    ]
    for key, (title, fig) in charts.items():
        div = pio.to_html(
            fig, full_html=False, include_plotlyjs=False, div_id=f"chart-{key}", config=_PLOT_CONFIG
        )
        parts.append(f'<section id="{key}"><h2>{html.escape(title)}</h2>{div}</section>')
    parts.append(_metrics(run))
    parts.append(_decisions(run))
    parts.append(f"<script>{_SEARCH_JS}</script></body></html>")
    return "\n".join(parts)


def _skipped(run: RunData) -> str:
    if not run.skipped:
        return ""
    shown = "; ".join(run.skipped[:5]) + ("; ..." if len(run.skipped) > 5 else "")
    return f" Skipped {len(run.skipped)} unreadable journal line(s): {html.escape(shown)}."


def _metrics(run: RunData) -> str:
    names = [n for n in SUMMARY_METRICS if n in run.metrics or n in run.benchmark]
    names += [n for n in run.metrics if n not in names and n != "asset"]
    rows = "".join(
        f"<tr><th>{name}</th><td class=num>{_number(name, run.metrics.get(name))}</td>"
        f"<td class=num>{_number(name, run.benchmark.get(name))}</td></tr>"
        for name in names
    )
    asset = html.escape(str(run.benchmark.get("asset", run.lead)))
    return (
        '<section id="metrics"><h2>Metrics</h2><table id="metrics-table">'
        f"<thead><tr><th></th><th>strategy</th><th>buy-and-hold {asset}</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _number(name: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "&ndash;"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return html.escape(str(value))
    if name in _PERCENT:
        return f"{value:.1%}"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}"


def _decisions(run: RunData) -> str:
    rows = []
    for d in run.decisions:
        breakout = d.get("breakout") or {}
        targets = d.get("targets") or {}
        action = str(d.get("action", ""))
        decision_id = str(d.get("decision_id") or "")
        cells = [
            html.escape(c)
            for c in (
                str(d.get("asof") or ""),
                action,
                str(breakout.get("state") or ""),
                str(targets.get("stage", "")),
                "; ".join(_clamp(c) for c in d.get("clamps") or []),
            )
        ]
        cells.append(_followed(d, run.followed.get(decision_id, [])))
        cells += [html.escape(str(d.get("reason") or "")), html.escape(decision_id)]
        tds = "".join(f"<td>{c}</td>" for c in cells)
        rows.append(f'<tr class="{html.escape(action)}">{tds}</tr>')
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "session",
            "action",
            "state",
            "stage",
            "clamps",
            "orders and fills",
            "reason",
            "id",
        )
    )
    return (
        '<section id="decisions-section"><h2>Decisions</h2>'
        '<input id="decision-search" type="search" '
        'placeholder="search: words all must appear, e.g. 2021-01 clamp ETH"> '
        '<span id="decision-count" class="note"></span>'
        f'<div id="decisions-box"><table id="decisions"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _clamp(clamp: dict[str, Any]) -> str:
    asset = f" {clamp['asset']}" if clamp.get("asset") else ""
    wanted, allowed = clamp.get("wanted"), clamp.get("allowed")
    amounts = f" {_short(wanted)} -> {_short(allowed)}" if wanted is not None else ""
    return f"{clamp.get('rule', '?')}{asset}{amounts}"


def _order(order: dict[str, Any]) -> str:
    return f"{order.get('side', '?')} {_figure(order.get('amount'))} {order.get('asset', '?')}"


def _followed(decision: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """What a decision led to, as HTML: each order the venue was sent (side, amount, asset,
    what the venue said, its client id) with the fills journalled under it (trade id, amount,
    price, fee), later ticks included; the decision's intents alone when no order record
    names it."""
    orders = [r for r in records if r.get("event") == "order"]
    fills = [r for r in records if r.get("event") == "fill"]
    if not orders and not fills:
        return html.escape("; ".join(_order(o) for o in decision.get("orders") or []))
    parts = []
    for order in orders:
        status = str(order.get("status", "?"))
        if order.get("error"):
            status += f": {order['error']}"
        cid = order.get("client_order_id")
        parts.append(
            f'<div class="order">{html.escape(_order(order))}: {html.escape(status)}'
            f'<br><span class="cid">{html.escape(str(cid))}</span></div>'
        )
        parts += [_fill(f) for f in fills if f.get("client_order_id") == cid]
    placed = {o.get("client_order_id") for o in orders}
    parts += [_fill(f, named=True) for f in fills if f.get("client_order_id") not in placed]
    return "".join(parts)


def _fill(fill: dict[str, Any], named: bool = False) -> str:
    """One fill: trade id, amount at price, fee (and its order's client id if not shown)."""
    text = (
        f"fill {fill.get('trade_id', '?')}: {_figure(fill.get('amount'))} @ "
        f"{_figure(fill.get('price'))}, fee {_figure(fill.get('fee'))}"
    )
    cid = f' <span class="cid">{html.escape(str(fill.get("client_order_id")))}</span>'
    return f'<div class="fill">{html.escape(text)}{cid if named else ""}</div>'


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


def _figure(value: Any) -> str:
    """An amount, a price or a fee: six significant digits (33010, 745.054, 0.0050339)."""
    return f"{value:.6g}" if isinstance(value, int | float) else str(value)
