"""The report's charts, as plotly figures: equity against buy-and-hold, the small-cap proxy with
its breakout level and states, exposure by asset with the stage, and drawdown."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from agent.report.load import RunData, buy_and_hold

STATE_COLOURS = {
    "candidate": "255, 193, 7",
    "confirmed": "40, 167, 69",
    "failed": "220, 53, 69",
    "expired": "108, 117, 125",
}
ASSET_COLOURS = ["#f7931a", "#627eea", "#14f195", "#23292f", "#c2a633", "#8247e5", "#e84142"]
_LAYOUT = {
    "template": "plotly_white",
    "height": 380,
    "margin": {"l": 60, "r": 30, "t": 50, "b": 40},
    "hovermode": "x unified",
    "legend": {"orientation": "h", "y": -0.15},
}


def figures(run: RunData) -> dict[str, tuple[str, go.Figure]]:
    """Section id -> (heading, figure), in page order."""
    return {
        "equity": ("Equity against buy-and-hold " + run.lead, _equity(run)),
        "index": ("Small-cap proxy, breakout level and states", _index(run)),
        "exposure": ("Crypto exposure by asset, and the stage", _exposure(run)),
        "drawdown": ("Drawdown; buy-and-hold below it, on its own scale", _drawdown(run)),
    }


def _equity(run: RunData) -> go.Figure:
    curve = run.equity["equity"]
    held = buy_and_hold(run.ticks, curve)
    fig = go.Figure()
    fig.add_scatter(x=curve.index, y=curve, name="strategy", line={"color": "#1f77b4"})
    if not held.empty:
        name = f"buy-and-hold {run.lead}"
        fig.add_scatter(x=held.index, y=held, name=name, line={"color": "#f7931a"})
    fig.update_layout(_LAYOUT, yaxis={"type": "log", "title": "equity (log scale)"})
    return fig


def _index(run: RunData) -> go.Figure:
    index = run.index
    fig = go.Figure()
    fig.add_scatter(x=index.index, y=index["close"], name="close", line={"color": "#333"})
    fig.add_scatter(
        x=index.index,
        y=index["level"],
        name="breakout level (prior high)",
        line={"color": "#d62728", "dash": "dash", "width": 1.5},
    )
    for state, colour in STATE_COLOURS.items():  # legend entries for the shading
        fig.add_scatter(
            x=[None],
            y=[None],
            mode="markers",
            name=state,
            marker={"symbol": "square", "size": 12, "color": f"rgba({colour}, 0.6)"},
        )
    for state, start, end in _spans(run.ticks["state"]):
        if state in STATE_COLOURS:
            fig.add_vrect(
                x0=start,
                x1=end,
                fillcolor=f"rgba({STATE_COLOURS[state]}, {0.1 if state == 'expired' else 0.2})",
                line_width=0,
                layer="below",
            )
    fig.update_layout(_LAYOUT, yaxis={"title": "index close"})
    return fig


def _exposure(run: RunData) -> go.Figure:
    equity = run.equity
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for i, asset in enumerate(run.assets):
        weight = (equity[f"{asset}_value"] / equity["equity"]).where(equity["equity"] > 0, 0.0)
        fig.add_scatter(
            x=equity.index,
            y=weight,
            name=asset,
            stackgroup="assets",
            mode="lines",
            line={"width": 0.5, "color": ASSET_COLOURS[i % len(ASSET_COLOURS)]},
        )
    ticks = run.ticks
    fig.add_scatter(
        x=ticks.index,
        y=ticks["target_exposure"],
        name="target exposure",
        line={"color": "#000", "dash": "dot", "width": 1},
    )
    fig.add_scatter(
        x=ticks.index,
        y=ticks["stage"],
        name="stage",
        line={"color": "#9467bd", "shape": "hv", "width": 1.5},
        secondary_y=True,
    )
    fig.update_layout(_LAYOUT)
    fig.update_yaxes(title_text="share of equity", tickformat=".0%", secondary_y=False)
    fig.update_yaxes(title_text="stage", dtick=1, rangemode="tozero", secondary_y=True)
    return fig


def _drawdown(run: RunData) -> go.Figure:
    """The strategy's drawdown above, buy-and-hold's below, each on its own scale: on one scale
    a buy-and-hold fall of 80% flattens a strategy's 10% into a line along zero."""
    curve = run.equity["equity"]
    held = buy_and_hold(run.ticks, curve)
    rows = 1 if held.empty else 2
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4][:rows]
    )
    fig.add_scatter(
        x=curve.index,
        y=_underwater(curve),
        name="strategy",
        fill="tozeroy",
        line={"width": 1, "color": "#1f77b4"},
        row=1,
        col=1,
    )
    if not held.empty:
        fig.add_scatter(
            x=held.index,
            y=_underwater(held),
            name=f"buy-and-hold {run.lead} (own scale, below)",
            fill="tozeroy",
            fillcolor="rgba(247, 147, 26, 0.12)",
            line={"color": "rgba(247, 147, 26, 0.7)", "width": 1},
            row=2,
            col=1,
        )
        fig.update_yaxes(title_text=run.lead, tickformat=".0%", row=2, col=1)
    fig.update_layout(_LAYOUT, height=460)
    fig.update_yaxes(title_text="strategy below peak", tickformat=".0%", row=1, col=1)
    return fig


def _underwater(curve: pd.Series) -> pd.Series:
    return curve / curve.cummax() - 1


def _spans(states: pd.Series) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """Each run of days in one state: (state, first day, the day after the last)."""
    if states.empty:
        return []
    runs = (states != states.shift()).cumsum()
    return [
        (group.iloc[0], group.index[0], group.index[-1] + pd.Timedelta(days=1))
        for _, group in states.groupby(runs)
    ]
