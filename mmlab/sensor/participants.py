"""Participants: fingerprint the addresses behind Hyperliquid trades and score the current flow.

Hyperliquid's public trades name both parties (``users: [buyer, seller]``); the tape keeps them
in its ``buyer``/``seller`` columns (:mod:`mmlab.data.tape`) and :class:`~mmlab.types.Trade`
carries them as ``buyer``/``seller``.

Markouts
--------
For a trade at time ``t`` (exchange time by default) with ``m(t−)`` the mid just before it and
``m(t + h)`` the mid ``h`` seconds later, the markout of the trade for its buyer is

    M_h = 1e4 · (ln m(t + h) − ln m(t−))   (bps; the seller's is −M_h).

It is measured from the mid, not the trade price, so it is the information in the trade and not
the half spread the taker paid. Trades whose ``t + h`` is past the tape's last mid, or that have
no mid before them, have none.

Fingerprint (one row per address, :func:`fit_participants`)
----------------------------------------------------------
trade count, volume (coins and USD), mean size, aggressor share (fraction of its trades where it
took liquidity), trades per second over the tape's span, net bought coins, and its mean markout at
each horizon signed to its side (positive: the price moved its way after it traded).

Toxicity (empirical Bayes)
--------------------------
The trades of one taker order (same address, same side, same time) are one observation: their
size-weighted markout ``x`` at ``toxicity_horizon_s``, signed to the taker's side. For address
``a`` with ``n_a`` such orders and mean ``x̄_a``, the model is ``x ~ N(θ_a, σ²)``,
``θ_a ~ N(0, τ²)``: a taker is uninformed until its orders say otherwise. ``σ²`` is the pooled
within-address variance; ``τ² ≥ 0`` maximizes the marginal likelihood of the address means,
``x̄_a ~ N(0, τ² + σ²/n_a)``. The
toxicity is the posterior mean and its standard error the posterior standard deviation:

    B_a = τ² / (τ² + σ²/n_a),   toxicity_a = B_a · x̄_a,   std_err_a = sqrt(B_a · σ²/n_a),

so an address with few orders is shrunk toward zero.

Flow toxicity (online, :class:`FlowToxicity`)
---------------------------------------------
Each aggressive trade ``i`` of size ``q_i``, side ``s_i`` (+1 buyer-initiated) and taker ``a_i``
adds to exponentially decaying sums (half-life ``H``, local time):

    value = Σ_i w_i s_i q_i toxicity(a_i) / (Σ_i w_i q_i + Q_0),   w_i = 2^{−(t − t_i)/H}   (bps)

with ``Q_0`` the steady-state value of ``Σ w q`` at the fit tape's mean volume rate
(``volume_rate · H / ln 2``), so the value fades to zero when trading stops instead of keeping
the sign of the last print. Positive: informed buyers are active; an unknown taker adds volume
but no toxicity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from mmlab.data.tape import NO_ADDRESS, EventKind, Tape
from mmlab.sensor.crossvenue import mid_series
from mmlab.types import Side, Trade, VenueUpdate

__all__ = [
    "participants_result",
    "trades_of",
    "trade_markouts",
    "ParticipantsParams",
    "ParticipantsResult",
    "fit_participants",
    "FlowToxicity",
    "flow_toxicity_series",
    "out_of_sample_flow_toxicity",
    "assign_synthetic_addresses",
]

_NS_PER_S = 1_000_000_000
_LN2 = math.log(2.0)


def _require_addresses(tape: Tape, where: str) -> None:
    if not tape.has_addresses:
        raise ValueError(
            f"{where}: tape {tape.source or tape.instrument.coin!r} has no 'buyer'/'seller' address columns "
            f"(import a Hyperliquid websocket recording with format 'hyperliquid-ws')"
        )


def trades_of(tape: Tape) -> list[Trade]:
    """The tape's trades as :class:`~mmlab.types.Trade` messages, with their addresses when known."""
    rows = np.flatnonzero(tape.kind == EventKind.TRADE)
    buyer = tape.buyer if tape.buyer is not None else np.full(len(tape), NO_ADDRESS, dtype=np.int32)
    seller = tape.seller if tape.seller is not None else buyer
    addresses = tape.addresses
    return [
        Trade(
            ts_exch=int(tape.ts_exch[r]),
            ts_local=int(tape.ts_local[r]),
            price=float(tape.price[r]),
            size=float(tape.size[r]),
            aggressor=Side(int(tape.side[r])),
            trade_id=int(tape.trade_id[r]),
            buyer=addresses[buyer[r]] if buyer[r] != NO_ADDRESS else None,
            seller=addresses[seller[r]] if seller[r] != NO_ADDRESS else None,
        )
        for r in rows
    ]


def _horizon_column(horizon_s: float) -> str:
    return f"markout_{horizon_s:g}s_bps"


def trade_markouts(tape: Tape, *, horizons_s: Sequence[float] = (1.0, 10.0), clock: str = "exchange") -> pd.DataFrame:
    """One row per trade: time, side, size, price, addresses and the buyer's markouts in bps.

    Parameters
    ----------
    tape : Tape
        Any tape with a book; addresses are reported when it has them.
    horizons_s : sequence of float
        Markout horizons, s.
    clock : {"exchange", "local"}
        Timestamps used to align trades with the mid.

    Returns
    -------
    pandas.DataFrame
        ``ts`` (ns), ``trade_id``, ``aggressor`` (+1/−1), ``price`` (USD), ``size`` (coins),
        ``buyer``/``seller`` (address codes into ``tape.addresses``, −1 for none), ``log_mid_before``
        and ``markout_{h}s_bps`` for each horizon (NaN where it cannot be measured).
    """
    for h in horizons_s:
        if not (math.isfinite(h) and h > 0):
            raise ValueError(f"trade_markouts: field 'horizons_s' must hold positive seconds, got {h!r}")
    mids = mid_series(tape, clock=clock)
    log_mid = mids.log_mid
    rows = np.flatnonzero(tape.kind == EventKind.TRADE)
    ts = (tape.ts_exch if clock == "exchange" else tape.ts_local)[rows].astype(np.int64)
    # m(t−): the last mid strictly before the trade
    before = np.searchsorted(mids.ts, ts, side="left") - 1
    log_before = np.where(before >= 0, log_mid[np.maximum(before, 0)], np.nan)
    no_code = np.full(rows.size, NO_ADDRESS, dtype=np.int32)
    frame = pd.DataFrame(
        {
            "ts": ts,
            "trade_id": tape.trade_id[rows],
            "aggressor": tape.side[rows].astype(np.int8),
            "price": tape.price[rows],
            "size": tape.size[rows],
            "buyer": tape.buyer[rows] if tape.buyer is not None else no_code,
            "seller": tape.seller[rows] if tape.seller is not None else no_code,
            "log_mid_before": log_before,
        }
    )
    last_ts = int(mids.ts[-1])
    for h in horizons_s:
        at = ts + int(round(h * _NS_PER_S))
        after = np.searchsorted(mids.ts, at, side="right") - 1
        log_after = np.where((at <= last_ts) & (after >= 0), log_mid[np.maximum(after, 0)], np.nan)
        # M_h = 1e4 (ln m(t+h) − ln m(t−)), for the buyer
        frame[_horizon_column(h)] = 1e4 * (log_after - log_before)
    return frame


# -- the fit ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantsParams:
    """Population-level results of :func:`fit_participants`.

    ``prior_var_bps2`` is τ² and ``within_var_bps2`` σ² of the empirical-Bayes model (bps²);
    ``mean_taker_markout_bps`` the mean order-level taker markout at ``toxicity_horizon_s``;
    ``volume_rate_coins_per_s`` the tape's traded volume per second; ``half_life_s`` the decay
    :class:`FlowToxicity` uses by default.
    """

    n_addresses: int
    n_trades: int
    n_taker_orders: int
    toxicity_horizon_s: float
    prior_var_bps2: float
    within_var_bps2: float
    mean_taker_markout_bps: float
    volume_rate_coins_per_s: float
    half_life_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantsResult:
    """Per-address fingerprints and toxicity scores (see the module docstring).

    ``toxicity_bps`` maps each address to its score (read-only); :attr:`table` is a copy of the
    per-address table, most toxic first. ``std_err`` holds the standard error of
    ``mean_taker_markout_bps``.
    """

    params: ParticipantsParams
    std_err: Mapping[str, float]
    toxicity_bps: Mapping[str, float]
    horizons_s: tuple[float, ...]
    span_s: float
    source: str
    _table: pd.DataFrame

    @property
    def table(self) -> pd.DataFrame:
        return self._table.copy()

    def summary(self, top: int = 5) -> str:
        p = self.params
        lines = [
            f"Participants of {self.source}: {p.n_addresses} addresses, {p.n_trades} trades, {p.n_taker_orders} taker orders with a "
            f"{p.toxicity_horizon_s:g} s markout over {self.span_s:,.1f} s",
            f"  mean taker markout {p.mean_taker_markout_bps:+.3f} bps (std err {self.std_err['mean_taker_markout_bps']:.3f}); "
            f"prior std τ {math.sqrt(p.prior_var_bps2):.3f} bps, within std σ {math.sqrt(p.within_var_bps2):.3f} bps",
            f"  volume rate {p.volume_rate_coins_per_s:.4g} coins/s; flow half-life {p.half_life_s:g} s",
            f"  most toxic (toxicity_bps ± std err, taker orders, trades, aggressor share, mean size):",
        ]
        for address, row in self._table.head(top).iterrows():
            lines.append(
                f"    {address}  {row['toxicity_bps']:+8.3f} ± {row['toxicity_std_err_bps']:.3f} bps  "
                f"{int(row['taker_orders']):5d} {int(row['trades']):6d}  {row['aggressor_share']:.2f}  {row['mean_size_coins']:.4g}"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + self.summary().replace("&", "&amp;").replace("<", "&lt;") + "</pre>"


def fit_participants(
    tape: Tape,
    *,
    horizons_s: Sequence[float] = (1.0, 10.0),
    toxicity_horizon_s: float = 1.0,
    half_life_s: float = 5.0,
    clock: str = "exchange",
) -> ParticipantsResult:
    """Fingerprint every address of ``tape`` and score its toxicity by empirical Bayes.

    Parameters
    ----------
    tape : Tape
        A tape with ``buyer``/``seller`` address columns and a book.
    horizons_s : sequence of float
        Markout horizons of the fingerprint, s.
    toxicity_horizon_s : float
        Horizon of the markout the toxicity is scored on, s. The default 1 s: on the synthetic
        market a 1 s taker markout has about a sixth of the noise of a 10 s one (std 0.6 vs 4 bps)
        for a third of the signal, so it ranks informed addresses better.
    half_life_s : float
        Default decay of :class:`FlowToxicity` built from this result, s.
    clock : {"exchange", "local"}
        Timestamps used to align trades with the mid.

    Raises
    ------
    ValueError
        If the tape has no addresses or no trades, or a parameter is out of range.
    """
    _require_addresses(tape, "fit_participants")
    if not (math.isfinite(half_life_s) and half_life_s > 0):
        raise ValueError(f"fit_participants: field 'half_life_s' must be positive, got {half_life_s!r}")
    horizons = tuple(float(h) for h in horizons_s)
    all_horizons = tuple(dict.fromkeys(horizons + (float(toxicity_horizon_s),)))
    trades = trade_markouts(tape, horizons_s=all_horizons, clock=clock)
    if trades.empty:
        raise ValueError(f"fit_participants: tape {tape.source or tape.instrument.coin!r} has no trades")
    span_s = max(tape.span_s, 1e-9)
    sides = []
    for code_column, sign in (("buyer", 1), ("seller", -1)):
        part = trades.loc[trades[code_column] != NO_ADDRESS].copy()
        part["address"] = part[code_column]
        part["sign"] = sign
        part["is_taker"] = part["aggressor"] == sign
        for h in all_horizons:
            part[_horizon_column(h)] = sign * part[_horizon_column(h)]
        sides.append(part)
    long = pd.concat(sides, ignore_index=True)
    if long.empty:
        raise ValueError(f"fit_participants: no trade of tape {tape.source or tape.instrument.coin!r} names an address")
    long["notional"] = long["price"] * long["size"]
    long["signed_size"] = long["sign"] * long["size"]
    grouped = long.groupby("address")
    table = pd.DataFrame(
        {
            "trades": grouped.size(),
            "volume_coins": grouped["size"].sum(),
            "notional_usd": grouped["notional"].sum(),
            "mean_size_coins": grouped["size"].mean(),
            "aggressor_share": grouped["is_taker"].mean(),
            "net_bought_coins": grouped["signed_size"].sum(),
        }
    )
    table["trades_per_s"] = table["trades"] / span_s
    for h in horizons:
        table[_horizon_column(h)] = grouped[_horizon_column(h)].mean()

    # one observation per taker order: size-weighted markout, signed to the taker
    tox_column = _horizon_column(float(toxicity_horizon_s))
    takers = long.loc[long["is_taker"] & long[tox_column].notna(), ["address", "ts", "sign", "size", tox_column]].copy()
    takers["weighted"] = takers[tox_column] * takers["size"]
    orders = takers.groupby(["address", "ts", "sign"], sort=False).agg(weighted=("weighted", "sum"), size=("size", "sum")).reset_index()
    orders["x"] = orders["weighted"] / orders["size"]
    per_address = orders.groupby("address")["x"].agg(["count", "mean"])
    n_a = per_address["count"].to_numpy(float)
    mean_a = per_address["mean"].to_numpy(float)
    deviations = orders["x"].to_numpy() - orders["address"].map(per_address["mean"]).to_numpy()
    dof = float(np.sum(n_a - 1.0))
    if dof > 0:
        # σ²: pooled within-address variance
        within_var = float(np.sum(deviations**2) / dof)
    else:
        within_var = float(np.var(orders["x"].to_numpy(), ddof=1)) if len(orders) > 1 else math.nan
    if n_a.size and math.isfinite(within_var) and within_var > 0:
        prior_var = _prior_variance(mean_a, within_var / n_a)
        # B_a = τ² / (τ² + σ²/n_a)
        shrink = prior_var / (prior_var + within_var / n_a) if prior_var > 0 else np.zeros_like(n_a)
        toxicity = shrink * mean_a
        toxicity_se = np.sqrt(shrink * within_var / n_a)
    else:
        prior_var = 0.0
        toxicity = toxicity_se = np.zeros_like(n_a)
    table["taker_orders"] = 0
    table["taker_markout_bps"] = np.nan
    table["toxicity_bps"] = 0.0
    table["toxicity_std_err_bps"] = 0.0
    table.loc[per_address.index, "taker_orders"] = n_a.astype(int)
    table.loc[per_address.index, "taker_markout_bps"] = mean_a
    table.loc[per_address.index, "toxicity_bps"] = toxicity
    table.loc[per_address.index, "toxicity_std_err_bps"] = toxicity_se
    table.index = pd.Index([tape.addresses[int(code)] for code in table.index], name="address")
    table = table.sort_values(["toxicity_bps", "trades"], ascending=[False, False])

    x_all = orders["x"].to_numpy()
    params = ParticipantsParams(
        n_addresses=int(len(table)),
        n_trades=int(len(trades)),
        n_taker_orders=int(len(orders)),
        toxicity_horizon_s=float(toxicity_horizon_s),
        prior_var_bps2=prior_var,
        within_var_bps2=within_var,
        mean_taker_markout_bps=float(np.mean(x_all)) if x_all.size else math.nan,
        volume_rate_coins_per_s=float(trades["size"].sum() / span_s),
        half_life_s=float(half_life_s),
    )
    mean_se = float(np.std(x_all, ddof=1) / math.sqrt(x_all.size)) if x_all.size > 1 else math.nan
    return ParticipantsResult(
        params=params,
        std_err=MappingProxyType({"mean_taker_markout_bps": mean_se}),
        toxicity_bps=MappingProxyType({str(a): float(v) for a, v in table["toxicity_bps"].items()}),
        horizons_s=horizons,
        span_s=span_s,
        source=tape.source or tape.instrument.coin,
        _table=table,
    )


def _prior_variance(means: np.ndarray, sampling_var: np.ndarray) -> float:
    """Maximum-likelihood τ² ≥ 0 of ``x̄_a ~ N(0, τ² + v_a)`` (the marginal of the EB model)."""
    from scipy.optimize import minimize_scalar

    def negative_log_likelihood(prior_var: float) -> float:
        total_var = prior_var + sampling_var
        # −log L = ½ Σ [ln(τ² + v_a) + x̄_a² / (τ² + v_a)]
        return 0.5 * float(np.sum(np.log(total_var) + means**2 / total_var))

    upper = max(float(np.max(means**2)), 1e-12)
    best = minimize_scalar(negative_log_likelihood, bounds=(0.0, upper), method="bounded", options={"xatol": 1e-10 * upper})
    # the bounded search never lands exactly on 0: compare with the boundary
    if negative_log_likelihood(0.0) <= best.fun:
        return 0.0
    return float(best.x)


# -- the online feature ----------------------------------------------------------------------


def participants_result(params: ParticipantsParams, toxicity_bps: Mapping[str, float], *, source: str = "stored scores") -> ParticipantsResult:
    """A result holding only what :class:`FlowToxicity` reads (population parameters and scores),
    as kept in a parameters file; the per-address table is empty."""
    return ParticipantsResult(
        params=params,
        std_err=MappingProxyType({"mean_taker_markout_bps": math.nan}),
        toxicity_bps=MappingProxyType({str(a): float(v) for a, v in toxicity_bps.items()}),
        horizons_s=(params.toxicity_horizon_s,),
        span_s=math.nan,
        source=source,
        _table=pd.DataFrame(columns=["toxicity_bps"]),
    )


class FlowToxicity:
    """Volume-weighted toxicity of the takers behind recent aggressive flow, signed by side (bps).

    ``value = Σ w_i s_i q_i toxicity(taker_i) / (Σ w_i q_i + Q_0)`` with weights halving every
    ``half_life_s`` of local time (module docstring). Positive: informed buyers are active.

    Parameters
    ----------
    fit : ParticipantsResult
        From :func:`fit_participants`: the scores, the default half-life and ``Q_0``.
    half_life_s : float, optional
        Decay half-life, s (default ``fit.params.half_life_s``).
    unknown_score_bps : float
        Score of a taker the fit did not score (or an unknown taker), bps; 0 (uninformed) by
        default. With an empty score table and the population mean this is an address-blind
        signed-flow baseline.
    name : str
        Feature name.

    Attributes
    ----------
    dropped : int
        Trades ignored because their size or time was not usable (the book is not used).
    known_volume_share : float
        Share of the decayed volume whose taker has a score.
    """

    def __init__(
        self, fit: ParticipantsResult, *, half_life_s: float | None = None, unknown_score_bps: float = 0.0, name: str = "flow_toxicity"
    ) -> None:
        if not isinstance(fit, ParticipantsResult):
            raise TypeError(f"FlowToxicity expects a ParticipantsResult, got {type(fit).__name__}")
        half_life_s = fit.params.half_life_s if half_life_s is None else float(half_life_s)
        if not (math.isfinite(half_life_s) and half_life_s > 0):
            raise ValueError(f"FlowToxicity: field 'half_life_s' must be positive, got {half_life_s!r}")
        self.name = name
        self.half_life_s = half_life_s
        self.scores: Mapping[str, float] = fit.toxicity_bps
        if not math.isfinite(unknown_score_bps):
            raise ValueError(f"FlowToxicity: field 'unknown_score_bps' must be finite, got {unknown_score_bps!r}")
        self.unknown_score_bps = float(unknown_score_bps)
        # Q_0 = volume_rate · H / ln 2, the steady-state Σ w q
        self.volume_scale_coins = fit.params.volume_rate_coins_per_s * half_life_s / _LN2
        self.dropped = 0
        self._half_life_ns = half_life_s * _NS_PER_S
        self._signed = 0.0
        self._volume = 0.0
        self._known = 0.0
        self._ts: int | None = None

    def _decay(self, ts: int) -> None:
        if self._ts is not None and ts > self._ts:
            # w = 2^(−Δt/H)
            decay = 0.5 ** ((ts - self._ts) / self._half_life_ns)
            self._signed *= decay
            self._volume *= decay
            self._known *= decay
        if self._ts is None or ts > self._ts:
            self._ts = ts

    def add_trade(self, trade: Trade) -> None:
        """Absorb one trade (``update`` calls this for each of an update's trades)."""
        size = trade.size
        if not (math.isfinite(size) and size > 0.0):
            self.dropped += 1
            return
        self._decay(trade.ts_local)
        taker = trade.taker
        score = self.scores.get(taker, self.unknown_score_bps) if taker is not None else self.unknown_score_bps
        self._signed += int(trade.aggressor) * size * score
        self._volume += size
        if taker is not None and taker in self.scores:
            self._known += size

    def update(self, update: VenueUpdate) -> None:
        """Absorb an update's trades, then decay to its local time."""
        for trade in update.trades:
            self.add_trade(trade)
        self._decay(update.ts_local)

    @property
    def value(self) -> float:
        """Signed toxicity of recent flow, bps; NaN before the first update."""
        if self._ts is None:
            return math.nan
        return self._signed / (self._volume + self.volume_scale_coins)

    @property
    def known_volume_share(self) -> float:
        return self._known / self._volume if self._volume > 0 else math.nan


def _decayed_sums(event_ts: np.ndarray, amounts: np.ndarray, grid: np.ndarray, half_life_ns: float) -> np.ndarray:
    """``Σ_{t_i <= t_k} a_i · 2^{−(t_k − t_i)/H}`` at each grid time ``t_k`` (one column per amount).

    Closed form, chunk by chunk: for grid times of a chunk that starts at grid time ``T``,
    ``Σ a_i 2^{−(t_k − t_i)/H} = 2^{−(t_k − T)/H} · (S(T⁻) + Σ_{t_i <= t_k, i new} a_i 2^{(t_i − T)/H})``
    with ``S(T⁻)`` the sums of earlier chunks decayed to ``T``. A chunk spans at most 500
    half-lives so that ``2^{(t_i − T)/H}`` stays finite.
    """
    out = np.zeros((grid.size, amounts.shape[1]))
    chunk_ns = 500.0 * half_life_ns
    carried = np.zeros(amounts.shape[1])
    k0 = i0 = 0
    while k0 < grid.size:
        start = int(grid[k0])
        if k0 > 0:
            # S(T⁻): the previous grid time's sums decayed to T
            carried = out[k0 - 1] * 0.5 ** ((start - int(grid[k0 - 1])) / half_life_ns)
        k1 = int(np.searchsorted(grid, start + chunk_ns, side="right"))
        i1 = int(np.searchsorted(event_ts, grid[k1 - 1], side="right"))
        growth = 0.5 ** (-(event_ts[i0:i1] - start) / half_life_ns)
        cumulative = np.vstack([np.zeros((1, amounts.shape[1])), np.cumsum(amounts[i0:i1] * growth[:, None], axis=0)])
        counts = np.searchsorted(event_ts[i0:i1], grid[k0:k1], side="right")
        decay = 0.5 ** ((grid[k0:k1] - start) / half_life_ns)
        out[k0:k1] = decay[:, None] * (carried + cumulative[counts])
        k0, i0 = k1, i1
    return out


def flow_toxicity_series(
    tape: Tape, fit: ParticipantsResult, grid_ts: np.ndarray, *, half_life_s: float | None = None, unknown_score_bps: float = 0.0
) -> np.ndarray:
    """:class:`FlowToxicity` ``value`` at each ``grid_ts`` (local ns) as if polled there, in closed form.

    A trade counts from its ``ts_local`` on; a test checks that the online feature agrees.
    """
    grid = np.asarray(grid_ts, dtype=np.int64)
    if grid.ndim != 1 or np.any(np.diff(grid) < 0):
        raise ValueError("flow_toxicity_series: field 'grid_ts' must be a sorted 1-D array of ns")
    feature = FlowToxicity(fit, half_life_s=half_life_s, unknown_score_bps=unknown_score_bps)
    rows = np.flatnonzero(tape.kind == EventKind.TRADE)
    size = tape.size[rows]
    side = tape.side[rows].astype(float)
    # score of each address code, then of each trade's taker
    scores = np.array([feature.scores.get(address, feature.unknown_score_bps) for address in tape.addresses] + [feature.unknown_score_bps])
    taker_code = np.where(side > 0, tape.buyer[rows], tape.seller[rows]) if tape.has_addresses else np.full(rows.size, NO_ADDRESS)
    # NO_ADDRESS (−1) picks the unknown score at the end of the table
    score = scores[taker_code]
    usable = np.isfinite(size) & (size > 0)
    # columns: Σ w s q toxicity, Σ w q
    amounts = np.column_stack([side * size * score, size])[usable]
    sums = _decayed_sums(tape.ts_local[rows][usable].astype(np.int64), amounts, grid, feature._half_life_ns)
    value = sums[:, 0] / (sums[:, 1] + feature.volume_scale_coins)
    return value


def out_of_sample_flow_toxicity(
    tape: Tape,
    *,
    split: float = 0.5,
    horizons_s: Sequence[float] = (1.0, 10.0),
    eval_grid_s: float = 0.1,
    **fit_options: object,
) -> tuple[ParticipantsResult, pd.DataFrame]:
    """Fit on the trades of the first ``split`` of the tape, correlate the feature with the future
    log-mid change on the rest.

    Returns
    -------
    (ParticipantsResult, pandas.DataFrame)
        The fit, and one row per horizon: ``horizon_s``, ``n`` (grid points), ``correlation``
        (Pearson, value vs ``ln mid(t + h) − ln mid(t)``), ``correlation_blind`` (the same for the
        address-blind baseline: every taker scored at the fit's mean taker markout, i.e. decayed
        signed flow), ``active_share`` (share of points where the value is not 0).
    """
    if not 0.0 < split < 1.0:
        raise ValueError(f"out_of_sample_flow_toxicity: field 'split' must be in (0, 1), got {split!r}")
    _require_addresses(tape, "out_of_sample_flow_toxicity")
    t0, t1 = int(tape.ts_local[0]), int(tape.ts_local[-1])
    ts_split = t0 + int(split * (t1 - t0))
    fit = fit_participants(tape.slice_time(None, ts_split), **fit_options)  # type: ignore[arg-type]
    mids = mid_series(tape, clock="local")
    grid = np.arange(ts_split, t1 + 1, int(round(eval_grid_s * _NS_PER_S)), dtype=np.int64)
    value = flow_toxicity_series(tape, fit, grid)
    blind_fit = replace(fit, toxicity_bps=MappingProxyType({}))
    blind = flow_toxicity_series(tape, blind_fit, grid, unknown_score_bps=fit.params.mean_taker_markout_bps if math.isfinite(fit.params.mean_taker_markout_bps) else 0.0)
    index_now = np.searchsorted(mids.ts, grid, side="right") - 1
    log_now = np.where(index_now >= 0, mids.log_mid[np.maximum(index_now, 0)], np.nan)
    rows = []
    for h in horizons_s:
        at = grid + int(round(h * _NS_PER_S))
        index_then = np.searchsorted(mids.ts, at, side="right") - 1
        move = np.where(at <= mids.ts[-1], mids.log_mid[np.maximum(index_then, 0)], np.nan) - log_now
        ok = np.isfinite(move) & np.isfinite(value)
        rows.append(
            {
                "horizon_s": float(h),
                "n": int(ok.sum()),
                "correlation": _correlation(value[ok], move[ok]),
                "correlation_blind": _correlation(blind[ok], move[ok]),
                "active_share": float(np.mean(value[ok] != 0)) if ok.any() else math.nan,
            }
        )
    return fit, pd.DataFrame(rows)


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant or there are fewer than 3 points."""
    if x.size < 3 or np.std(x) == 0 or np.std(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


# -- synthetic addresses ---------------------------------------------------------------------


def assign_synthetic_addresses(
    market: object,
    *,
    informed_addresses: int = 10,
    noise_addresses: int = 200,
    maker_addresses: int = 20,
    seed: int = 0,
) -> Tape:
    """A synthetic market's tape with made-up addresses that follow its truth.

    Each market order of ``market.orders`` gets one taker address, drawn uniformly from
    ``informed_addresses`` addresses ``0xinf…`` when the order was informed and from
    ``noise_addresses`` addresses ``0xnoise…`` otherwise; each trade row gets a maker drawn from
    ``maker_addresses`` addresses ``0xmaker…``. The taker is the buyer of a buyer-initiated trade.

    Parameters
    ----------
    market : mmlab.data.synth.SyntheticMarket
        From :func:`mmlab.data.synth.generate`.
    """
    tape: Tape = market.tape  # type: ignore[attr-defined]
    orders: pd.DataFrame = market.orders  # type: ignore[attr-defined]
    for name, count in (("informed_addresses", informed_addresses), ("noise_addresses", noise_addresses), ("maker_addresses", maker_addresses)):
        if int(count) < 1:
            raise ValueError(f"assign_synthetic_addresses: field {name!r} must be >= 1, got {count!r}")
    rng = np.random.default_rng(seed)
    informed = [f"0xinf{k:03d}" for k in range(informed_addresses)]
    noise = [f"0xnoise{k:04d}" for k in range(noise_addresses)]
    makers = [f"0xmaker{k:03d}" for k in range(maker_addresses)]
    addresses = tuple(informed + noise + makers)
    filled = orders[orders["first_trade_id"] > 0]
    is_informed = filled["informed"].to_numpy(bool)
    taker_code = np.where(
        is_informed,
        rng.integers(0, informed_addresses, size=len(filled)),
        informed_addresses + rng.integers(0, noise_addresses, size=len(filled)),
    ).astype(np.int32)
    trade_rows = np.flatnonzero(tape.kind == EventKind.TRADE)
    trade_ids = tape.trade_id[trade_rows]
    # the order of each trade: first_trade_id <= id <= last_trade_id
    order_index = np.searchsorted(filled["first_trade_id"].to_numpy(), trade_ids, side="right") - 1
    if np.any(order_index < 0) or np.any(trade_ids > filled["last_trade_id"].to_numpy()[order_index]):
        raise ValueError("assign_synthetic_addresses: a trade id of the tape belongs to no order of market.orders")
    taker = taker_code[order_index]
    maker = (informed_addresses + noise_addresses + rng.integers(0, maker_addresses, size=trade_rows.size)).astype(np.int32)
    buys = tape.side[trade_rows] == 1
    buyer = np.full(len(tape), NO_ADDRESS, dtype=np.int32)
    seller = np.full(len(tape), NO_ADDRESS, dtype=np.int32)
    buyer[trade_rows] = np.where(buys, taker, maker)
    seller[trade_rows] = np.where(buys, maker, taker)
    return tape.with_addresses(buyer, seller, addresses)
