"""Plotly charts of a backtest and of the filter's belief, used by results objects and notebooks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["prices_figure", "pnl_figure", "markouts_figure", "belief_figure", "regimes_figure", "innovations_figure"]


#: points per trace: more than a chart at screen width can show, few enough for a light report
MAX_POINTS = 2_500


def _time_axis(ts_ns: pd.Series) -> pd.Series:
    return pd.to_datetime(ts_ns, unit="ns", utc=True)


def _decimate(frame: pd.DataFrame, column: str, max_points: int) -> pd.DataFrame:
    """Keep the rows holding each bucket's min and max of ``column``, so spikes survive."""
    if len(frame) <= max_points:
        return frame
    buckets = np.arange(len(frame)) * (max_points // 2) // len(frame)
    values = frame[column].to_numpy(dtype=float)
    grouped = pd.Series(values).groupby(buckets)
    keep = np.union1d(grouped.idxmin().dropna().to_numpy(int), grouped.idxmax().dropna().to_numpy(int))
    return frame.iloc[keep]


def prices_figure(cycles: pd.DataFrame, *, max_points: int = MAX_POINTS) -> go.Figure:
    """Mid, V̂ with its 2-sigma band, our best quotes, and the position below."""
    c = _decimate(cycles, "mid", max_points)
    t = _time_axis(c["ts_local"])
    band = 2e-4 * c["fair_value_std_bps"] * c["fair_value"]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    fig.add_trace(go.Scatter(x=t, y=c["fair_value"] + band, line=dict(width=0), showlegend=False, hoverinfo="skip"), 1, 1)
    fig.add_trace(
        go.Scatter(x=t, y=c["fair_value"] - band, fill="tonexty", line=dict(width=0), name="V̂ ± 2σ", fillcolor="rgba(31,119,180,0.2)"),
        1, 1,
    )
    fig.add_trace(go.Scatter(x=t, y=c["mid"], name="mid", line=dict(color="gray", width=1)), 1, 1)
    fig.add_trace(go.Scatter(x=t, y=c["fair_value"], name="V̂ (filter)", line=dict(color="#1f77b4", width=1.5)), 1, 1)
    fig.add_trace(go.Scatter(x=t, y=c["quote_bid"], name="our best bid", line=dict(color="green", width=1, dash="dot")), 1, 1)
    fig.add_trace(go.Scatter(x=t, y=c["quote_ask"], name="our best ask", line=dict(color="red", width=1, dash="dot")), 1, 1)
    fig.add_trace(go.Scatter(x=t, y=c["position"], name="position (coins)", line=dict(color="black", width=1)), 2, 1)
    fig.update_yaxes(title_text="price (USD)", row=1, col=1)
    fig.update_yaxes(title_text="position (coins)", row=2, col=1)
    fig.update_layout(height=600, title="Prices, fair value and inventory", hovermode="x unified")
    return fig


def pnl_figure(cycles: pd.DataFrame, *, max_points: int = MAX_POINTS) -> go.Figure:
    """Cumulative PnL and its parts: spread capture, inventory, fees, funding (USD)."""
    c = _decimate(cycles, "pnl_usd", max_points)
    t = _time_axis(c["ts_local"])
    fig = go.Figure()
    for column, name in (
        ("pnl_usd", "total"),
        ("spread_capture_usd", "spread capture"),
        ("inventory_pnl_usd", "inventory"),
        ("fees_usd", "fees"),
        ("funding_usd", "funding"),
    ):
        fig.add_trace(go.Scatter(x=t, y=c[column], name=name, line=dict(width=2 if column == "pnl_usd" else 1)))
    fig.update_layout(height=400, title="Cumulative PnL decomposition", yaxis_title="USD", hovermode="x unified")
    return fig


def markouts_figure(fills: pd.DataFrame) -> go.Figure:
    """Size-weighted mean markout per horizon with a 2-standard-error bar (bps)."""
    columns = [c for c in fills.columns if c.startswith("markout_")]
    horizons, means, errors = [], [], []
    for column in columns:
        values = fills[column].to_numpy(dtype=float)
        weights = fills["size"].to_numpy(dtype=float)
        mask = np.isfinite(values)
        if mask.sum() < 2:
            continue
        v, w = values[mask], weights[mask]
        mean = np.sum(w * v) / np.sum(w)
        # standard error of a weighted mean with Kish's effective sample size
        n_eff = np.sum(w) ** 2 / np.sum(w**2)
        std = np.sqrt(np.sum(w * (v - mean) ** 2) / np.sum(w))
        horizons.append(column.removeprefix("markout_").removesuffix("_bps"))
        means.append(mean)
        errors.append(2.0 * std / np.sqrt(n_eff))
    fig = go.Figure(go.Bar(x=horizons, y=means, error_y=dict(type="data", array=errors)))
    if not horizons:
        fig.add_annotation(text="fewer than two marked fills: nothing to show", showarrow=False)
    fig.update_layout(height=350, title="Fill markouts (size-weighted mean ± 2 s.e.)", xaxis_title="horizon", yaxis_title="bps")
    return fig


def belief_figure(frame: pd.DataFrame, *, split_ns: int | None = None, max_points: int = MAX_POINTS) -> go.Figure:
    """V̂ with its 2-sigma band against the mid and the L1 micro-price (USD); a line where the fit ends."""
    c = _decimate(frame.dropna(subset=["fair_value"]), "mid", max_points)
    t = _time_axis(c["ts_local"])
    band = 2e-4 * c["fair_value_std_bps"] * c["fair_value"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=t, y=c["fair_value"] + band, line=dict(width=0), showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=t, y=c["fair_value"] - band, fill="tonexty", line=dict(width=0), name="V̂ ± 2σ", fillcolor="rgba(31,119,180,0.2)"))
    fig.add_trace(go.Scatter(x=t, y=c["mid"], name="mid", line=dict(color="gray", width=1)))
    fig.add_trace(go.Scatter(x=t, y=c["micro_l1"], name="L1 micro-price", line=dict(color="orange", width=1, dash="dot")))
    fig.add_trace(go.Scatter(x=t, y=c["fair_value"], name="V̂ (filter)", line=dict(color="#1f77b4", width=1.5)))
    if "latent_value" in c:
        fig.add_trace(go.Scatter(x=t, y=c["latent_value"], name="latent V (truth)", line=dict(color="black", width=1)))
    if split_ns is not None:
        fig.add_vline(x=pd.Timestamp(split_ns, unit="ns", tz="UTC"), line=dict(color="black", dash="dash"))
        fig.add_annotation(x=pd.Timestamp(split_ns, unit="ns", tz="UTC"), y=1.02, yref="paper", text="fit | judged", showarrow=False)
    fig.update_layout(height=450, title="Fair value against the mid and the micro-price", yaxis_title="USD", hovermode="x unified")
    return fig


def regimes_figure(frame: pd.DataFrame, *, max_points: int = MAX_POINTS) -> go.Figure:
    """Regime probabilities stacked (quiet, trending, crisis); the true regime when the frame has one."""
    c = frame.dropna(subset=["p_quiet"])
    if len(c) > max_points:
        c = c.iloc[:: max(1, len(c) // max_points)]
    t = _time_axis(c["ts_local"])
    fig = go.Figure()
    for column, name, color in (("p_quiet", "quiet", "#2ca02c"), ("p_trending", "trending", "#ff7f0e"), ("p_crisis", "crisis", "#d62728")):
        fig.add_trace(go.Scatter(x=t, y=c[column], name=name, stackgroup="regime", line=dict(width=0.5, color=color)))
    if "true_regime" in c:
        # the true regime drawn as a step at 1.05 (quiet), 1.1 (trending), 1.15 (crisis)
        fig.add_trace(go.Scatter(x=t, y=1.05 + 0.05 * c["true_regime"], name="true regime", mode="lines", line=dict(color="black", shape="hv")))
    fig.update_layout(height=300, title="Regime probabilities", yaxis_title="probability", hovermode="x unified")
    return fig


def innovations_figure(normalized: np.ndarray, *, max_lag: int = 30) -> go.Figure:
    """Histogram of normalized innovations ν/√S against N(0, 1), and their autocorrelation with ±2/√n bands."""
    x = np.asarray(normalized, dtype=float)
    x = x[np.isfinite(x)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("ν/√S against N(0, 1)", "autocorrelation (white: inside the band)"))
    fig.add_trace(go.Histogram(x=x, histnorm="probability density", name="ν/√S", nbinsx=80), 1, 1)
    grid = np.linspace(-5, 5, 201)
    fig.add_trace(go.Scatter(x=grid, y=np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi), name="N(0, 1)", line=dict(color="black")), 1, 1)
    lags = np.arange(1, max_lag + 1)
    centred = x - x.mean() if x.size else x
    denom = float(centred @ centred) if x.size else 0.0
    acf = [float(centred[k:] @ centred[:-k]) / denom if denom > 0 and k < x.size else np.nan for k in lags]
    fig.add_trace(go.Bar(x=lags, y=acf, name="ACF"), 1, 2)
    bound = 2.0 / np.sqrt(max(x.size, 1))
    for level in (bound, -bound):
        fig.add_hline(y=level, line=dict(color="gray", dash="dash"), row=1, col=2)
    fig.update_xaxes(title_text="lag (observations)", row=1, col=2)
    fig.update_layout(height=350, title=f"Innovations: n = {x.size:,}, variance {np.var(x) if x.size else float('nan'):.3f} (1 if R and P are right)")
    return fig
