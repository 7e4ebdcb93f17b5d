"""Open interest and liquidation pressure from asset contexts, trades and liquidation fills.

Where the data live
-------------------
An ASSET_CTX row of a tape (:mod:`mmlab.data.tape`) carries the mark price in ``price`` (USD),
the open interest in ``size`` (coins) and the predicted funding rate in ``rate``; the
``hyperliquid-ws`` importer writes one per ``activeAssetCtx`` message and the synthetic market one
every ``asset_ctx_interval_s``. :class:`~mmlab.types.VenueUpdate` has no open-interest field yet,
so the online features take contexts through ``update_context`` (and read
``update.open_interest`` if a later version of the message carries it).

Open interest (:class:`OpenInterestFlow`)
-----------------------------------------
Between two contexts ``j−1, j`` (local times ``t``, open interest ``O``, mark ``P``):

    oi_change_per_s      = (ln O_j − ln O_{j−1}) / (t_j − t_{j−1})          (1/s, relative)
    position_build_per_s = oi_change_per_s · sign(ln P_j − ln P_{j−1})       (1/s)

``position_build_per_s`` is the feature's value. Its sign reads the four textbook cases as
evidence for the next move: OI up with price up (new longs) +, OI up with price down (new
shorts) −, OI down with price up (short covering, a rally without new buyers) −, OI down with
price down (long liquidation, selling that exhausts itself) +.

Liquidation pressure (:class:`LiquidationPressure`)
---------------------------------------------------
Forced flow is measured in signed coins, positive for forced *buying* (shorts closed), which
pushes the price up:

- marked liquidations, where the data say so: a Hyperliquid ``userFills`` / ``user`` fill with a
  ``liquidation`` object (:func:`parse_liquidation_fills`). If the liquidated user is the fill's
  owner, the forced order is the fill's side; otherwise the owner was the counterparty and the
  forced order is the opposite side. Each adds ``forced_side · size``.
- public data only: over each interval between contexts, with ``F = Σ s_i q_i / Σ q_i`` the
  signed share of aggressive volume (``s`` +1 buyer-initiated) and ``L`` the marked liquidation
  volume in the interval,

      forced ≈ max(0, −ΔO − L) · F   (coins),

  i.e. positions that closed (OI fell) while the flow was one-sided are read as forced closes in
  the flow's direction; balanced flow says nothing.

Each amount enters an exponentially decaying sum ``S`` (half-life ``H``) at its time; the value is
the rate ``S · ln 2 / H`` (coins/s), which equals the mean forced flow per second when it is
steady.

What public data cannot show
----------------------------
Hyperliquid's public ``trades`` do not flag liquidations; the ``liquidation`` object appears only
in the private fills of the two parties, so a market maker sees the liquidations it traded against
and nothing else. Open interest is a net number: a fall of ΔO can be ΔO closes, or more closes
offset by new positions, and it never says which side closed; a rise does not say who opened.
Asset contexts arrive every few seconds (every 60 s in the synthetic market), so OI changes are
known only per interval, after the fact. Auto-deleveraging and backstop liquidations to the
liquidator vault move OI without any public aggressive flow. The proxy above is therefore a
heuristic with an untested sign; :func:`fit_context` measures whether it predicts anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from mmlab.data.tape import EventKind, Tape
from mmlab.sensor.crossvenue import mid_series
from mmlab.sensor.participants import _decayed_sums
from mmlab.types import Side, Trade, VenueUpdate

__all__ = [
    "AssetContext",
    "contexts_of",
    "LiquidationFill",
    "parse_liquidation_fills",
    "OpenInterestFlow",
    "LiquidationPressure",
    "context_series",
    "ContextParams",
    "ContextResult",
    "fit_context",
]

_NS_PER_S = 1_000_000_000
_LN2 = math.log(2.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetContext:
    """One asset-context update: open interest (coins), mark price (USD), predicted funding rate."""

    ts_local: int
    open_interest: float
    mark_price: float
    funding_rate: float = math.nan


def contexts_of(tape: Tape) -> list[AssetContext]:
    """The tape's ASSET_CTX rows as :class:`AssetContext` messages, in order."""
    rows = np.flatnonzero(tape.kind == EventKind.ASSET_CTX)
    return [
        AssetContext(ts_local=int(tape.ts_local[r]), open_interest=float(tape.size[r]), mark_price=float(tape.price[r]), funding_rate=float(tape.rate[r]))
        for r in rows
    ]


# -- marked liquidations -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationFill:
    """A fill the venue marked as part of a liquidation.

    ``forced_side`` is the side of the liquidated user's forced order (BUY: a short was closed);
    ``fill_side`` the side of the fill's owner; ``mark_price`` the mark the liquidation used.
    """

    ts_exch: int
    coin: str
    price: float
    size: float
    fill_side: Side
    forced_side: Side
    liquidated_user: str
    mark_price: float
    method: str

    @property
    def signed_forced_size(self) -> float:
        """Forced flow in coins, positive for forced buying."""
        return int(self.forced_side) * self.size


def _field(container: Any, key: str, where: str) -> Any:
    if not isinstance(container, dict) or key not in container:
        raise ValueError(f"{where}: field {key!r} is missing")
    return container[key]


def _positive_number(container: Any, key: str, where: str) -> float:
    raw = _field(container, key, where)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: field {key!r} is not a number: {raw!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{where}: field {key!r} must be positive and finite, got {raw!r}")
    return value


def parse_liquidation_fills(message: Mapping[str, Any] | str, *, user: str | None = None, where: str = "message") -> list[LiquidationFill]:
    """The liquidation fills of a Hyperliquid ``user`` or ``userFills`` websocket message.

    Parameters
    ----------
    message : dict or str
        ``{"channel": "user", "data": {"fills": [...]}}`` or ``{"channel": "userFills", "data":
        {"user": ..., "fills": [...]}}`` (parsed or as JSON text).
    user : str, optional
        Address of the fills' owner; defaults to ``data.user`` when present. When neither is
        known, the owner is taken to be the liquidated user's counterparty.
    where : str
        Names the source in error messages (file and line).

    Returns
    -------
    list of LiquidationFill
        One per fill carrying a ``liquidation`` object; other fills are skipped.

    Raises
    ------
    ValueError
        Naming ``where`` and the field, for a malformed message or fill.
    """
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
    data = _field(message, "data", where)
    fills = _field(data, "fills", f"{where}: data")
    if not isinstance(fills, list):
        raise ValueError(f"{where}: field 'data.fills' must be a list")
    owner = user if user is not None else (data.get("user") if isinstance(data, dict) else None)
    out = []
    for index, fill in enumerate(fills):
        at = f"{where}: data.fills[{index}]"
        if not isinstance(fill, dict):
            raise ValueError(f"{at}: must be an object")
        liquidation = fill.get("liquidation")
        if liquidation is None:
            continue
        side_text = _field(fill, "side", at)
        if side_text not in ("B", "A"):
            raise ValueError(f"{at}: field 'side' must be 'B' or 'A', got {side_text!r}")
        fill_side = Side.BUY if side_text == "B" else Side.SELL
        liquidated = _field(liquidation, "liquidatedUser", f"{at}.liquidation")
        if not isinstance(liquidated, str) or not liquidated:
            raise ValueError(f"{at}.liquidation: field 'liquidatedUser' must be an address, got {liquidated!r}")
        time_ms = _field(fill, "time", at)
        if isinstance(time_ms, bool) or not isinstance(time_ms, int):
            raise ValueError(f"{at}: field 'time' must be integer ms, got {time_ms!r}")
        # the owner was liquidated: its own side was forced; else it took the other side
        forced = fill_side if owner is not None and liquidated.lower() == str(owner).lower() else fill_side.opposite
        out.append(
            LiquidationFill(
                ts_exch=time_ms * 1_000_000,
                coin=str(_field(fill, "coin", at)),
                price=_positive_number(fill, "px", at),
                size=_positive_number(fill, "sz", at),
                fill_side=fill_side,
                forced_side=forced,
                liquidated_user=liquidated,
                mark_price=_positive_number(liquidation, "markPx", f"{at}.liquidation"),
                method=str(liquidation.get("method", "")),
            )
        )
    return out


# -- online features ---------------------------------------------------------------------------


def _usable(context: AssetContext) -> bool:
    return math.isfinite(context.open_interest) and context.open_interest > 0 and math.isfinite(context.mark_price) and context.mark_price > 0


def _context_from_update(update: VenueUpdate) -> AssetContext | None:
    """A context from an update that carries ``open_interest`` (a field VenueUpdate may gain)."""
    open_interest = getattr(update, "open_interest", math.nan)
    mark = update.mark_price
    if isinstance(open_interest, float) and math.isfinite(open_interest) and open_interest > 0 and math.isfinite(mark) and mark > 0:
        return AssetContext(ts_local=update.ts_local, open_interest=open_interest, mark_price=mark, funding_rate=update.funding_rate)
    return None


class OpenInterestFlow:
    """Open-interest change rate and the position-build signal (module docstring).

    ``value`` is ``position_build_per_s`` (1/s) of the last interval between two contexts;
    ``oi_change_per_s`` (1/s) is its unsigned counterpart. Both are NaN until two usable contexts
    have arrived. A context is used when its open interest or mark differs from the last one
    (an update repeating the last context adds nothing).

    Attributes
    ----------
    dropped : int
        Contexts ignored: non-finite or non-positive open interest or mark, or time going back
        (the feature does not read the book).
    """

    def __init__(self, *, name: str = "open_interest") -> None:
        self.name = name
        self.dropped = 0
        self.oi_change_per_s = math.nan
        self.position_build_per_s = math.nan
        self._last: AssetContext | None = None

    def update(self, update: VenueUpdate) -> None:
        """Absorb an update; only an ``open_interest`` it may carry is used."""
        context = _context_from_update(update)
        if context is not None:
            self.update_context(context)

    def update_context(self, context: AssetContext) -> None:
        """Absorb one asset context."""
        if not _usable(context):
            self.dropped += 1
            return
        last = self._last
        if last is not None and (context.open_interest, context.mark_price) == (last.open_interest, last.mark_price):
            return
        if last is not None:
            if context.ts_local <= last.ts_local:
                self.dropped += 1
                return
            dt_s = (context.ts_local - last.ts_local) / _NS_PER_S
            # d ln O / dt
            self.oi_change_per_s = math.log(context.open_interest / last.open_interest) / dt_s
            # × sign(d ln P)
            price_sign = float(np.sign(math.log(context.mark_price / last.mark_price)))
            self.position_build_per_s = self.oi_change_per_s * price_sign
        self._last = context

    @property
    def value(self) -> float:
        return self.position_build_per_s


class LiquidationPressure:
    """Rate of forced (liquidation-driven) flow, coins/s, positive for forced buying.

    Parameters
    ----------
    half_life_s : float
        Half-life of the decaying sums, s.
    name : str
        Feature name.

    Attributes
    ----------
    dropped : int
        Trades or contexts ignored because a size, open interest, mark or time was not usable
        (the feature does not read the book).
    proxy_coins_per_s, marked_coins_per_s : float
        The two parts of ``value``: the OI-and-flow proxy and the marked liquidations.
    """

    def __init__(self, *, half_life_s: float = 60.0, name: str = "liquidation_pressure") -> None:
        if not (math.isfinite(half_life_s) and half_life_s > 0):
            raise ValueError(f"LiquidationPressure: field 'half_life_s' must be positive, got {half_life_s!r}")
        self.name = name
        self.half_life_s = float(half_life_s)
        self.dropped = 0
        self._half_life_ns = half_life_s * _NS_PER_S
        self._proxy = 0.0
        self._marked = 0.0
        self._ts: int | None = None
        self._interval_signed = 0.0
        self._interval_volume = 0.0
        self._interval_marked = 0.0
        self._last: AssetContext | None = None

    def _decay(self, ts: int) -> None:
        if self._ts is not None and ts > self._ts:
            # S ← S · 2^(−Δt/H)
            decay = 0.5 ** ((ts - self._ts) / self._half_life_ns)
            self._proxy *= decay
            self._marked *= decay
        if self._ts is None or ts > self._ts:
            self._ts = ts

    def add_trade(self, trade: Trade) -> None:
        """Count one aggressive trade in the current interval's flow."""
        if not (math.isfinite(trade.size) and trade.size > 0):
            self.dropped += 1
            return
        self._interval_signed += int(trade.aggressor) * trade.size
        self._interval_volume += trade.size

    def add_liquidation(self, fill: LiquidationFill, ts_local: int) -> None:
        """Add a marked liquidation received at local time ``ts_local``."""
        self._decay(ts_local)
        self._marked += fill.signed_forced_size
        self._interval_marked += fill.size

    def update(self, update: VenueUpdate) -> None:
        """Absorb an update's trades (and an ``open_interest`` it may carry), then decay to its time."""
        for trade in update.trades:
            self.add_trade(trade)
        context = _context_from_update(update)
        if context is not None:
            self.update_context(context)
        self._decay(update.ts_local)

    def update_context(self, context: AssetContext) -> None:
        """Close the interval since the last context: add its proxy forced flow."""
        if not _usable(context):
            self.dropped += 1
            return
        last = self._last
        if last is not None and (context.open_interest, context.mark_price) == (last.open_interest, last.mark_price):
            return
        if last is not None and context.ts_local <= last.ts_local:
            self.dropped += 1
            return
        self._decay(context.ts_local)
        if last is not None and self._interval_volume > 0:
            # F = Σ s q / Σ q;  forced ≈ max(0, −ΔO − L) · F
            flow_share = self._interval_signed / self._interval_volume
            closed = max(0.0, last.open_interest - context.open_interest - self._interval_marked)
            self._proxy += closed * flow_share
        self._interval_signed = self._interval_volume = self._interval_marked = 0.0
        self._last = context

    @property
    def proxy_coins_per_s(self) -> float:
        return self._proxy * _LN2 / self.half_life_s if self._last is not None else math.nan

    @property
    def marked_coins_per_s(self) -> float:
        return self._marked * _LN2 / self.half_life_s if self._ts is not None else math.nan

    @property
    def value(self) -> float:
        """Forced-flow rate ``S · ln 2 / H`` (coins/s); NaN before the first context."""
        if self._last is None:
            return math.nan
        # rate = S ln 2 / H
        return (self._proxy + self._marked) * _LN2 / self.half_life_s


# -- batch and fit -----------------------------------------------------------------------------


def context_series(tape: Tape, grid_ts: np.ndarray, *, half_life_s: float = 60.0) -> pd.DataFrame:
    """Both features at each ``grid_ts`` (local ns), computed in closed form from the tape.

    At a grid time the features have absorbed every trade and context with ``ts_local`` at or
    before it, an update's trades before its context (as :meth:`LiquidationPressure.update`
    takes them). Tapes hold no marked liquidations, so the pressure is the public proxy alone.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``ts_local``: ``oi_change_per_s``, ``position_build_per_s`` (1/s) and
        ``liquidation_pressure_coins_per_s``.
    """
    grid = np.asarray(grid_ts, dtype=np.int64)
    if grid.ndim != 1 or np.any(np.diff(grid) < 0):
        raise ValueError("context_series: field 'grid_ts' must be a sorted 1-D array of ns")
    if not (math.isfinite(half_life_s) and half_life_s > 0):
        raise ValueError(f"context_series: field 'half_life_s' must be positive, got {half_life_s!r}")
    intervals = _intervals(tape)
    ts = intervals["ts_local"].to_numpy(np.int64)
    # the interval value holds from its closing context until the next one
    index = np.searchsorted(ts, grid, side="right") - 1
    oi_rate = np.where(index >= 0, intervals["oi_change_per_s"].to_numpy()[np.maximum(index, 0)], np.nan)
    build = np.where(index >= 0, intervals["position_build_per_s"].to_numpy()[np.maximum(index, 0)], np.nan)
    # S(t) = Σ_{t_j <= t} forced_j 2^{−(t − t_j)/H};  value = S ln 2 / H
    forced = intervals["forced_coins"].to_numpy()[:, None]
    sums = _decayed_sums(ts, forced, grid, half_life_s * _NS_PER_S)[:, 0]
    pressure = np.where(index >= 0, sums * _LN2 / half_life_s, np.nan)
    return pd.DataFrame(
        {"oi_change_per_s": oi_rate, "position_build_per_s": build, "liquidation_pressure_coins_per_s": pressure},
        index=pd.Index(grid, name="ts_local"),
    )


def _intervals(tape: Tape) -> pd.DataFrame:
    """One row per usable context (distinct from the previous one): its time, the interval's
    rates and flow, and the proxy forced flow it closes."""
    contexts = [c for c in contexts_of(tape) if _usable(c)]
    kept: list[AssetContext] = []
    for context in contexts:
        if kept and (context.open_interest, context.mark_price) == (kept[-1].open_interest, kept[-1].mark_price):
            continue
        if kept and context.ts_local <= kept[-1].ts_local:
            continue
        kept.append(context)
    trade_rows = np.flatnonzero((tape.kind == EventKind.TRADE) & np.isfinite(tape.size) & (tape.size > 0))
    trade_ts = tape.ts_local[trade_rows]
    signed = np.concatenate([[0.0], np.cumsum(tape.side[trade_rows] * tape.size[trade_rows])])
    volume = np.concatenate([[0.0], np.cumsum(tape.size[trade_rows])])
    rows = []
    for j, context in enumerate(kept):
        row = {"ts_local": context.ts_local, "open_interest": context.open_interest, "mark_price": context.mark_price}
        if j == 0:
            row.update(oi_change_per_s=math.nan, position_build_per_s=math.nan, flow_share=math.nan, forced_coins=0.0)
        else:
            last = kept[j - 1]
            dt_s = (context.ts_local - last.ts_local) / _NS_PER_S
            oi_rate = math.log(context.open_interest / last.open_interest) / dt_s
            # trades in (t_{j−1}, t_j]
            lo = int(np.searchsorted(trade_ts, last.ts_local, side="right"))
            hi = int(np.searchsorted(trade_ts, context.ts_local, side="right"))
            interval_volume = volume[hi] - volume[lo]
            share = (signed[hi] - signed[lo]) / interval_volume if interval_volume > 0 else math.nan
            closed = max(0.0, last.open_interest - context.open_interest)
            row.update(
                oi_change_per_s=oi_rate,
                position_build_per_s=oi_rate * float(np.sign(math.log(context.mark_price / last.mark_price))),
                flow_share=share,
                forced_coins=closed * share if interval_volume > 0 else 0.0,
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=["ts_local", "open_interest", "mark_price", "oi_change_per_s", "position_build_per_s", "flow_share", "forced_coins"])


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextParams:
    """Open-interest statistics and the predictive slopes of the two signals.

    ``slope_*`` maps each horizon (s) to the OLS slope of the future log-mid change on the signal
    measured at each context (ln USD per unit of the signal); ``correlation_*`` likewise.
    """

    n_contexts: int
    mean_interval_s: float
    oi_change_per_s_mean: float
    oi_change_per_s_std: float
    slope_position_build: Mapping[float, float]
    correlation_position_build: Mapping[float, float]
    slope_liquidation_pressure: Mapping[float, float]
    correlation_liquidation_pressure: Mapping[float, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextResult:
    """What :func:`fit_context` measured; ``std_err`` maps ``"slope_<signal>@<h>s"`` to the OLS
    standard error of that slope; ``intervals`` (a copy) lists every interval."""

    params: ContextParams
    std_err: Mapping[str, float]
    half_life_s: float
    source: str
    _intervals: pd.DataFrame

    @property
    def intervals(self) -> pd.DataFrame:
        return self._intervals.copy()

    def summary(self) -> str:
        p = self.params
        lines = [
            f"Open interest and liquidation pressure of {self.source}: {p.n_contexts} contexts, mean interval {p.mean_interval_s:.1f} s",
            f"  OI change rate {p.oi_change_per_s_mean:+.3e} ± {p.oi_change_per_s_std:.3e} 1/s (mean ± std over intervals)",
        ]
        for signal, slopes, correlations in (
            ("position_build", p.slope_position_build, p.correlation_position_build),
            ("liquidation_pressure", p.slope_liquidation_pressure, p.correlation_liquidation_pressure),
        ):
            for h, slope in slopes.items():
                se = self.std_err.get(f"slope_{signal}@{h:g}s", math.nan)
                lines.append(f"  {signal:21s} → Δln mid {h:g} s ahead: slope {slope:+.3e} (std err {se:.2e}), corr {correlations[h]:+.3f}")
        lines.append("  public data do not flag liquidations; OI is net and per interval (see the module docstring)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + self.summary().replace("&", "&amp;").replace("<", "&lt;") + "</pre>"


def fit_context(tape: Tape, *, horizons_s: Sequence[float] = (1.0, 10.0), half_life_s: float = 60.0) -> ContextResult:
    """Measure OI change rates and whether the two signals predict the mid, from ASSET_CTX rows.

    At every context time ``t_j`` (from the second on) the signals are taken as the features
    report them (:func:`context_series`) and regressed, by OLS with an intercept, on the change
    ``ln mid(t_j + h) − ln mid(t_j)``; slopes, their standard errors and correlations are reported.

    Raises
    ------
    ValueError
        If the tape has fewer than four usable asset contexts.
    """
    intervals = _intervals(tape)
    if len(intervals) < 4:
        raise ValueError(
            f"fit_context: tape {tape.source or tape.instrument.coin!r} has {len(intervals)} usable ASSET_CTX rows "
            f"(field 'size' = open interest); need at least 4"
        )
    ts = intervals["ts_local"].to_numpy(np.int64)
    signals = context_series(tape, ts, half_life_s=half_life_s)
    mids = mid_series(tape, clock="local")
    now_index = np.searchsorted(mids.ts, ts, side="right") - 1
    log_now = np.where(now_index >= 0, mids.log_mid[np.maximum(now_index, 0)], np.nan)
    slopes: dict[str, dict[float, float]] = {"position_build": {}, "liquidation_pressure": {}}
    correlations: dict[str, dict[float, float]] = {"position_build": {}, "liquidation_pressure": {}}
    std_err: dict[str, float] = {}
    columns = {"position_build": "position_build_per_s", "liquidation_pressure": "liquidation_pressure_coins_per_s"}
    for h in horizons_s:
        at = ts + int(round(float(h) * _NS_PER_S))
        then_index = np.searchsorted(mids.ts, at, side="right") - 1
        move = np.where(at <= mids.ts[-1], mids.log_mid[np.maximum(then_index, 0)], np.nan) - log_now
        for signal, column in columns.items():
            x = signals[column].to_numpy()
            ok = np.isfinite(x) & np.isfinite(move)
            slope, se, corr = _ols(x[ok], move[ok])
            slopes[signal][float(h)] = slope
            correlations[signal][float(h)] = corr
            std_err[f"slope_{signal}@{float(h):g}s"] = se
    rates = intervals["oi_change_per_s"].to_numpy()
    rates = rates[np.isfinite(rates)]
    params = ContextParams(
        n_contexts=int(len(intervals)),
        mean_interval_s=float(np.mean(np.diff(ts)) / _NS_PER_S),
        oi_change_per_s_mean=float(np.mean(rates)),
        oi_change_per_s_std=float(np.std(rates, ddof=1)) if rates.size > 1 else math.nan,
        slope_position_build=MappingProxyType(slopes["position_build"]),
        correlation_position_build=MappingProxyType(correlations["position_build"]),
        slope_liquidation_pressure=MappingProxyType(slopes["liquidation_pressure"]),
        correlation_liquidation_pressure=MappingProxyType(correlations["liquidation_pressure"]),
    )
    return ContextResult(
        params=params,
        std_err=MappingProxyType(std_err),
        half_life_s=float(half_life_s),
        source=tape.source or tape.instrument.coin,
        _intervals=intervals,
    )


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Slope, its standard error and the correlation of ``y = a + b x + e``; NaN when undefined."""
    if x.size < 3 or np.std(x) == 0 or np.std(y) == 0:
        return math.nan, math.nan, math.nan
    x_centred, y_centred = x - x.mean(), y - y.mean()
    sxx = float(np.sum(x_centred**2))
    # b = Σ x̃ ỹ / Σ x̃²
    slope = float(np.sum(x_centred * y_centred) / sxx)
    residual = y_centred - slope * x_centred
    # se(b) = sqrt(Σ e² / (n − 2) / Σ x̃²)
    se = math.sqrt(float(np.sum(residual**2)) / (x.size - 2) / sxx)
    return slope, se, float(np.corrcoef(x, y)[0, 1])
