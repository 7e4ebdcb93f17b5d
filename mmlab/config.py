"""Frozen configurations, their validation and hash, and the parameters file.

Every config is a frozen, slotted, keyword-only dataclass whose fields carry their unit in the
name. Each validates itself on construction and raises :class:`ConfigError` naming the field
(and, when read from a file, the file), so a bad value never travels into a model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from mmlab import units

__all__ = [
    "ConfigError",
    "ConfigBase",
    "check_field",
    "InstrumentSpec",
    "SensorConfig",
    "FilterConfig",
    "GovernorConfig",
    "ActuaryConfig",
    "ExecutorConfig",
    "EvaluatorConfig",
    "StrategyConfig",
    "SimConfig",
    "save_config",
    "load_config",
]

CONFIG = dict(frozen=True, slots=True, kw_only=True)


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


def check_field(
    owner: str,
    name: str,
    value: float,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> None:
    """Raise :class:`ConfigError` unless ``value`` is finite and inside the given bounds."""
    where = f"{owner}.{name}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{where} must be finite, got {value!r}")
    for bound, ok, text in (
        (gt, lambda b: value > b, ">"),
        (ge, lambda b: value >= b, ">="),
        (lt, lambda b: value < b, "<"),
        (le, lambda b: value <= b, "<="),
    ):
        if bound is not None and not ok(bound):
            raise ConfigError(f"{where} must be {text} {bound}, got {value!r}")


def _as_tuple(value: Any) -> Any:
    """JSON has no tuples: turn (nested) lists back into the tuples a frozen config holds."""
    if isinstance(value, list):
        return tuple(_as_tuple(v) for v in value)
    return value


class ConfigBase:
    """Shared behaviour of configs: dict round trip, canonical JSON and a hash id."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, ConfigBase) else value
        return out

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def hash_id(self) -> str:
        """First 16 hex digits of the SHA-256 of the canonical JSON: equal configs, equal ids."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "") -> Self:
        """Build from a dict; unknown or mistyped keys raise naming ``where`` and the key."""
        prefix = f"{where}: " if where else ""
        if not isinstance(data, dict):
            raise ConfigError(f"{prefix}{cls.__name__} must be a mapping, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{prefix}{cls.__name__} has no field {unknown[0]!r}")
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            hint = hints[name]
            if isinstance(hint, types.UnionType) and value is not None:
                # ``SomeConfig | None``: a nested config that may be absent
                nested = [arg for arg in hint.__args__ if isinstance(arg, type) and issubclass(arg, ConfigBase)]
                hint = nested[0] if nested else hint
            if isinstance(hint, type) and issubclass(hint, ConfigBase):
                value = hint.from_dict(value, where=f"{where}.{name}" if where else name)
            elif isinstance(hint, types.GenericAlias) and hint.__origin__ is tuple:
                value = _as_tuple(value)
            kwargs[name] = value
        try:
            return cls(**kwargs)
        except ConfigError as err:
            raise ConfigError(f"{prefix}{err}") from None
        except TypeError as err:
            raise ConfigError(f"{prefix}{cls.__name__}: {err}") from None


@dataclass(**CONFIG)
class InstrumentSpec(ConfigBase):
    """An instrument and its venue grid.

    With ``price_tick == 0`` (Hyperliquid) prices follow Hyperliquid's perp rule (5 significant
    figures, at most 6 − szDecimals decimals); a positive ``price_tick`` is a fixed grid, for
    replaying other venues' recordings on their own grid. Sizes have ``sz_decimals`` decimals.
    The methods are where prices and sizes meet the grid: bids round down, asks up, never across.
    """

    coin: str = "SYN"
    sz_decimals: int = 2
    min_order_notional_usd: float = 10.0
    price_tick: float = 0.0

    def __post_init__(self) -> None:
        if not self.coin:
            raise ConfigError("InstrumentSpec.coin must not be empty")
        if not isinstance(self.sz_decimals, int) or not 0 <= self.sz_decimals <= 6:
            raise ConfigError(f"InstrumentSpec.sz_decimals must be an integer in [0, 6], got {self.sz_decimals!r}")
        check_field("InstrumentSpec", "min_order_notional_usd", self.min_order_notional_usd, ge=0.0)
        check_field("InstrumentSpec", "price_tick", self.price_tick, ge=0.0)

    def round_bid(self, price: float) -> float:
        if self.price_tick:
            return units.round_to_tick(price, self.price_tick, up=False)
        return units.round_bid(price, self.sz_decimals)

    def round_ask(self, price: float) -> float:
        if self.price_tick:
            return units.round_to_tick(price, self.price_tick, up=True)
        return units.round_ask(price, self.sz_decimals)

    def price_below(self, price: float) -> float:
        """Largest grid price strictly below ``price``."""
        if self.price_tick:
            return units.round_to_tick(price - 0.5 * self.price_tick, self.price_tick, up=False)
        return units.price_below(price, self.sz_decimals)

    def price_above(self, price: float) -> float:
        """Smallest grid price strictly above ``price``."""
        if self.price_tick:
            return units.round_to_tick(price + 0.5 * self.price_tick, self.price_tick, up=True)
        return units.price_above(price, self.sz_decimals)

    def round_size(self, size: float) -> float:
        """Size rounded down to ``sz_decimals``, so a cap still holds."""
        return units.round_size(size, self.sz_decimals)

    def is_valid_price(self, price: float) -> bool:
        if self.price_tick:
            return units.is_on_tick(price, self.price_tick)
        return units.is_valid_price(price, self.sz_decimals)


#: the name of the mid layer, always first in a sensor calibration
MID_LAYER = "mid"


@dataclass(**CONFIG)
class SensorCalibration(ConfigBase):
    """Fitted fair-value layers: ``z_j = ln mid + coef_j · f_j`` with error covariance ``noise_cov``.

    ``names[0]`` is the mid (coefficient 0). ``noise_cov`` is Σ in (ln USD)²; its diagonal holds each
    layer's own noise variance. ``sigma_per_sqrt_s`` and ``mid_noise_var`` come from the mid's
    variance signature; ``fair_value_horizon_s`` is H. The data span is kept for provenance.
    ``feature_params`` holds, for each layer whose feature needs a fitted model (Stoikov's
    micro-price, Hawkes, VPIN, ...), that model's parameters as JSON text
    (:func:`mmlab.sensor.features.fit_feature_params`). ``bounds`` are the (low, high) each
    feature is clipped to before use (the fitting data's tail quantiles; empty: no clipping);
    ``dropped`` lists the candidate features the fit left out and why. ``realized_var_ratio`` is
    κ = Var(1 s change of ln mid) / (σ² · 1 s): a mid that lags V (or bounces) shows a 1 s
    variance that is not σ²; the sensor divides its realized variance by κ.
    ``realized_vol_dof`` is ν, the effective number of independent returns in a realized-vol
    window (fitted from the spread of adjacent windows; 0: the window's count, independent
    returns). ``spread_vol_intercept`` a, ``spread_vol_slope`` b and ``spread_vol_noise_var`` s²
    are the fitted link ln h = a + b ln σ + e, Var(e) = s², of the mean log half spread h over a
    vol window to ln σ (slope 0: no spread observation). ``fair_value_evidence_weight`` is
    (1 − ρ)/(1 + ρ), ρ the one-row autocorrelation of the mid's error (ln mid minus its centred
    moving average over ± H), for :attr:`FilterConfig.fair_value_evidence_weight`.
    ``mid_noise_intercept`` R₀ ((ln USD)²) and ``mid_noise_vol_slope_s`` c (s) are the fitted
    state-dependent noise of the mid layer, ``R_mid = R₀ + c σ²`` (σ in 1/√s), for
    :attr:`FilterConfig.mid_noise_intercept` (:func:`mmlab.sensor.calibration.fit_mid_noise`;
    R₀ = 0: no such model, the mid keeps its constant noise from ``noise_cov``).
    """

    names: tuple[str, ...] = (MID_LAYER,)
    coefs: tuple[float, ...] = (0.0,)
    noise_cov: tuple[tuple[float, ...], ...] = ((1e-8,),)
    fair_value_horizon_s: float = 3.0
    sigma_per_sqrt_s: float = 1e-4
    mid_noise_var: float = 1e-10
    samples: int = 0
    fitted_from_ns: int = 0
    fitted_to_ns: int = 0
    feature_params: tuple[tuple[str, str], ...] = ()
    bounds: tuple[tuple[float, float], ...] = ()
    dropped: tuple[tuple[str, str], ...] = ()
    realized_var_ratio: float = 1.0
    fair_value_evidence_weight: float = 1.0
    realized_vol_dof: float = 0.0
    spread_vol_intercept: float = 0.0
    spread_vol_slope: float = 0.0
    spread_vol_noise_var: float = 0.0
    mid_noise_intercept: float = 0.0
    mid_noise_vol_slope_s: float = 0.0

    def __post_init__(self) -> None:
        owner = "SensorCalibration"
        k = len(self.names)
        if k < 1 or self.names[0] != MID_LAYER:
            raise ConfigError(f"{owner}.names must start with {MID_LAYER!r}, got {self.names!r}")
        if len(self.coefs) != k:
            raise ConfigError(f"{owner}.coefs must have one value per name ({k}), got {len(self.coefs)}")
        if len(self.noise_cov) != k or any(len(row) != k for row in self.noise_cov):
            raise ConfigError(f"{owner}.noise_cov must be {k}x{k}")
        cov = np.array(self.noise_cov, dtype=np.float64)
        if not np.all(np.isfinite(cov)) or not np.allclose(cov, cov.T, rtol=1e-9, atol=0.0):
            raise ConfigError(f"{owner}.noise_cov must be finite and symmetric")
        try:
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ConfigError(f"{owner}.noise_cov must be positive definite") from None
        for name in ("fair_value_horizon_s", "sigma_per_sqrt_s", "mid_noise_var", "realized_var_ratio"):
            check_field(owner, name, getattr(self, name), gt=0.0)
        for name in ("realized_vol_dof", "spread_vol_slope", "spread_vol_noise_var", "mid_noise_intercept", "mid_noise_vol_slope_s"):
            check_field(owner, name, getattr(self, name), ge=0.0)
        check_field(owner, "fair_value_evidence_weight", self.fair_value_evidence_weight, gt=0.0, le=1.0)
        check_field(owner, "spread_vol_intercept", self.spread_vol_intercept)
        if self.spread_vol_slope > 0.0 and not self.spread_vol_noise_var > 0.0:
            raise ConfigError(f"{owner}.spread_vol_noise_var must be > 0 when spread_vol_slope is, got {self.spread_vol_noise_var!r}")
        for index, coef in enumerate(self.coefs):
            if not math.isfinite(coef):
                raise ConfigError(f"{owner}.coefs[{index}] ({self.names[index]}) must be finite, got {coef!r}")
        if self.bounds and (len(self.bounds) != k or any(len(pair) != 2 or not pair[0] <= pair[1] for pair in self.bounds)):
            raise ConfigError(f"{owner}.bounds must hold one (low, high) pair with low <= high per name ({k}), got {self.bounds!r}")
        for index, entry in enumerate(self.feature_params):
            if not (isinstance(entry, tuple) and len(entry) == 2 and entry[0] in self.names[1:] and isinstance(entry[1], str)):
                raise ConfigError(f"{owner}.feature_params[{index}] must be (layer name, JSON text) for a layer in names, got {entry!r}")
            try:
                json.loads(entry[1])
            except ValueError as exc:
                raise ConfigError(f"{owner}.feature_params[{index}] ({entry[0]}): not JSON: {exc}") from None

    @property
    def noise_std_bps(self) -> dict[str, float]:
        """Each layer's own noise standard deviation, bps."""
        return {name: 1e4 * math.sqrt(self.noise_cov[i][i]) for i, name in enumerate(self.names)}

    def summary(self) -> str:
        lines = [
            f"Sensor calibration: {self.samples:,} samples, fair-value horizon {self.fair_value_horizon_s:g} s",
            f"  sigma {1e4 * self.sigma_per_sqrt_s:.3f} bps/sqrt(s), mid noise {1e4 * math.sqrt(self.mid_noise_var):.4f} bps",
            f"  {'layer':<24}{'coef':>14}{'noise std (bps)':>18}",
        ]
        for i, name in enumerate(self.names):
            lines.append(f"  {name:<24}{self.coefs[i]:>14.4e}{1e4 * math.sqrt(self.noise_cov[i][i]):>18.4f}")
        for name, why in self.dropped:
            lines.append(f"  left out {name}: {why}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + self.summary() + "</pre>"


@dataclass(**CONFIG)
class SensorConfig(ConfigBase):
    """Feature settings. Fair-value layers are fitted from data (``calibration``, made by
    :func:`mmlab.sensor.calibration.fit_sensor`; None before a fit);
    realized volatility uses windows of ``vol_window_returns`` returns, floored at
    ``vol_floor_bps_per_sqrt_s`` so that a window of unchanged mids never gives ln 0.
    """

    vol_window_returns: int = 10
    vol_floor_bps_per_sqrt_s: float = 0.05
    calibration: SensorCalibration | None = None

    def __post_init__(self) -> None:
        if self.calibration is not None and not isinstance(self.calibration, SensorCalibration):
            raise ConfigError(f"SensorConfig.calibration must be a SensorCalibration or None, got {self.calibration!r}")
        if not isinstance(self.vol_window_returns, int) or self.vol_window_returns < 2:
            raise ConfigError(f"SensorConfig.vol_window_returns must be an integer >= 2, got {self.vol_window_returns!r}")
        check_field("SensorConfig", "vol_floor_bps_per_sqrt_s", self.vol_floor_bps_per_sqrt_s, gt=0.0)


@dataclass(**CONFIG)
class FilterConfig(ConfigBase):
    """Priors and process model of the IMM filter: three UKFs over x = [ln V, μ, ln σ].

    In regime r (order QUIET, TRENDING, CRISIS) μ follows an Ornstein–Uhlenbeck process with
    mean 0, reversion time ``drift_reversion_s`` (s) and stationary standard deviation
    ``drift_std_per_s · regime_drift_std_multiplier[r]`` (1/s); ln σ (σ in 1/√s) reverts to
    ln(``vol_prior_bps_per_sqrt_s · regime_vol_multiplier[r]`` · 1e-4) over
    ``log_vol_reversion_s`` (s) with stationary standard deviation ``log_vol_std``. The reversion
    of ln σ is short so that each regime's filter keeps its own vol level against the IMM's
    mixing, and its spread small: the regimes carry the large moves of σ, ln σ the wiggle within
    one; ``vol_prior_bps_per_sqrt_s`` is the quiet level, calibrated per coin, and the
    multipliers carry over between coins.

    The regime is a Markov chain in continuous time: it stays in r for
    ``regime_mean_duration_s[r]`` seconds on average, then jumps to j with probability
    ``regime_transition[r][j]`` (zero diagonal, rows sum to 1). The defaults are those of the
    synthetic market (:mod:`mmlab.data.synth`): vols 1.0 / 1.5 / 4.0 bps/√s, a trend drift of
    0.3 bps/s, durations 600 / 180 / 60 s.

    ``informed_fraction_prior`` is π₀, the prior probability that a taker who fills us knew V was
    beyond our price; the filter estimates π from our fills, each judged
    ``informed_fraction_horizon_s`` seconds after it, under a Beta(a π₀, a (1 − π₀)) prior with
    a = ``informed_fraction_prior_fills``. A fill judged from later prices tells far less than
    whether it was informed, so a prior of a few fills already outweighs many judged fills: keep
    a small. The evaluator's estimate, when it sends one, overrides.

    ``fair_value_evidence_weight`` w tempers the evidence the ln V observations give about the
    regime: their log-likelihood enters the regime probabilities multiplied by w (the ln σ
    observations' by 1). Layers whose errors persist over many cycles are counted as if each
    cycle were independent; n observations of an AR(1) error with correlation ρ carry the
    evidence of n (1 − ρ)/(1 + ρ) independent ones, so w = (1 − ρ)/(1 + ρ) with ρ fitted by the
    sensor's calibration (``SensorCalibration.fair_value_evidence_weight``). 1: no tempering.

    ``mid_noise_intercept`` R₀ ((ln USD)²) and ``mid_noise_vol_slope_s`` c (s): when R₀ > 0 the
    mid layer's noise variance in mode j is ``R₀ + c σ_j²``, σ_j = e^{ln σ} at that mode's
    predicted mean, in place of the constant the sensor sends (a mid that lags V errs by an
    amount that grows with σ, so the crisis mode expects a noisier mid). Fitted by the sensor's
    calibration; :meth:`calibrated` copies them (0: the sensor's constant).
    """

    drift_reversion_s: float = 60.0
    drift_std_per_s: float = 2e-5
    vol_prior_bps_per_sqrt_s: float = 1.0
    log_vol_reversion_s: float = 3.0
    log_vol_std: float = 0.1
    initial_fair_value_std_bps: float = 10.0
    informed_fraction_prior: float = 0.1
    informed_fraction_prior_fills: float = 4.0
    informed_fraction_horizon_s: float = 10.0
    fair_value_evidence_weight: float = 1.0
    mid_noise_intercept: float = 0.0
    mid_noise_vol_slope_s: float = 0.0
    regime_vol_multiplier: tuple[float, float, float] = (1.0, 1.5, 4.0)
    regime_drift_std_multiplier: tuple[float, float, float] = (0.1, 1.5, 0.25)
    regime_mean_duration_s: tuple[float, float, float] = (600.0, 180.0, 60.0)
    regime_transition: tuple[tuple[float, float, float], ...] = (
        (0.0, 0.7, 0.3),
        (0.8, 0.0, 0.2),
        (0.6, 0.4, 0.0),
    )

    def __post_init__(self) -> None:
        check_field("FilterConfig", "drift_reversion_s", self.drift_reversion_s, gt=0.0)
        check_field("FilterConfig", "drift_std_per_s", self.drift_std_per_s, gt=0.0)
        check_field("FilterConfig", "vol_prior_bps_per_sqrt_s", self.vol_prior_bps_per_sqrt_s, gt=0.0)
        check_field("FilterConfig", "log_vol_reversion_s", self.log_vol_reversion_s, gt=0.0)
        check_field("FilterConfig", "log_vol_std", self.log_vol_std, gt=0.0)
        check_field("FilterConfig", "initial_fair_value_std_bps", self.initial_fair_value_std_bps, gt=0.0)
        check_field("FilterConfig", "informed_fraction_prior", self.informed_fraction_prior, ge=0.0, lt=1.0)
        check_field("FilterConfig", "informed_fraction_prior_fills", self.informed_fraction_prior_fills, gt=0.0)
        check_field("FilterConfig", "informed_fraction_horizon_s", self.informed_fraction_horizon_s, gt=0.0)
        check_field("FilterConfig", "fair_value_evidence_weight", self.fair_value_evidence_weight, gt=0.0, le=1.0)
        check_field("FilterConfig", "mid_noise_intercept", self.mid_noise_intercept, ge=0.0)
        check_field("FilterConfig", "mid_noise_vol_slope_s", self.mid_noise_vol_slope_s, ge=0.0)
        for name in ("regime_vol_multiplier", "regime_drift_std_multiplier", "regime_mean_duration_s"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or len(values) != 3:
                raise ConfigError(f"FilterConfig.{name} must be a tuple of 3 numbers (QUIET, TRENDING, CRISIS), got {values!r}")
            for index, value in enumerate(values):
                check_field("FilterConfig", f"{name}[{index}]", value, gt=0.0)
        rows = self.regime_transition
        if not isinstance(rows, tuple) or len(rows) != 3 or any(not isinstance(row, tuple) or len(row) != 3 for row in rows):
            raise ConfigError(f"FilterConfig.regime_transition must be a 3x3 tuple of tuples, got {rows!r}")
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                check_field("FilterConfig", f"regime_transition[{i}][{j}]", value, ge=0.0, le=1.0)
            if row[i] != 0.0:
                raise ConfigError(f"FilterConfig.regime_transition[{i}][{i}] must be 0 (a jump leaves the regime), got {row[i]!r}")
            if abs(sum(row) - 1.0) > 1e-9:
                raise ConfigError(f"FilterConfig.regime_transition[{i}] must sum to 1, got {sum(row)!r}")

    def calibrated(self, calibration: SensorCalibration | None, *, mid_noise: bool = False) -> "FilterConfig":
        """These settings with what the sensor's ``calibration`` fitted for the filter: the
        fair-value layers' evidence weight and, with ``mid_noise``, the mid layer's noise
        R₀ + c σ² (unchanged when None).

        ``mid_noise`` is off by default: it makes the mid's innovations consistent (normalized
        variance 3.9 → 0.93 on the synthetic regime markets) but, by weighting a lagging mid
        less, moves V̂ towards the latent value and away from the mid 1 s ahead, which V̂ then
        predicts worse (MSE ratio to the mid 0.877 → 0.917 and 0.695 → 0.737 on synthetic seeds
        11 and 12, 0.997 → 1.028 on the Hyperliquid SOL sample).
        """
        if calibration is None:
            return self
        changes: dict[str, float] = {"fair_value_evidence_weight": calibration.fair_value_evidence_weight}
        if mid_noise:
            changes.update(mid_noise_intercept=calibration.mid_noise_intercept, mid_noise_vol_slope_s=calibration.mid_noise_vol_slope_s)
        return self.replace(**changes)


@dataclass(**CONFIG)
class GovernorConfig(ConfigBase):
    """γ(q) = γ_base · (1 + β (q / q_max)²), the hard caps, funding and Kelly exposure.

    - ``capital_usd``: the account equity W that Kelly sizes against.
    - ``kelly_fraction_by_regime``: the fraction of full Kelly in (quiet, trending, crisis); the
      budget uses their mean under the filter's regime probabilities.
    - ``kelly_edge_prior_bps`` and ``kelly_edge_prior_fills``: prior mean of the net edge per unit
      notional over the holding horizon, and its weight in fills, before the evaluator's markouts.
    - ``funding_mean_per_interval`` and ``funding_reversion_s``: the OU mean and reversion time of
      the funding rate (:func:`mmlab.governor.funding.fit_funding_ou` fits them from a history);
      the default mean is Hyperliquid's interest component, 0.01 % per 8 h.
    - ``urgency_time_s``: the time over which urgency compares the marginal inventory cost with
      the typical price move (see :mod:`mmlab.governor`).
    """

    gamma_base_per_usd: float = 5.0
    gamma_beta: float = 4.0
    q_max: float = 2.0
    max_notional_usd: float = 1_000.0
    max_order_size: float = 0.5
    holding_horizon_s: float = 60.0
    capital_usd: float = 1_000.0
    kelly_fraction_by_regime: tuple[float, float, float] = (0.5, 0.35, 0.15)
    kelly_edge_prior_bps: float = 1.0
    kelly_edge_prior_fills: float = 50.0
    funding_mean_per_interval: float = 1.25e-5
    funding_reversion_s: float = 8 * 3600.0
    urgency_time_s: float = 1.0

    def __post_init__(self) -> None:
        check_field("GovernorConfig", "gamma_base_per_usd", self.gamma_base_per_usd, gt=0.0)
        check_field("GovernorConfig", "gamma_beta", self.gamma_beta, ge=0.0)
        check_field("GovernorConfig", "q_max", self.q_max, gt=0.0)
        check_field("GovernorConfig", "max_notional_usd", self.max_notional_usd, gt=0.0)
        check_field("GovernorConfig", "max_order_size", self.max_order_size, gt=0.0)
        check_field("GovernorConfig", "holding_horizon_s", self.holding_horizon_s, gt=0.0)
        check_field("GovernorConfig", "capital_usd", self.capital_usd, gt=0.0)
        if len(self.kelly_fraction_by_regime) != 3:
            raise ConfigError(
                f"GovernorConfig.kelly_fraction_by_regime must have 3 entries (quiet, trending, crisis), got {self.kelly_fraction_by_regime!r}"
            )
        for value in self.kelly_fraction_by_regime:
            check_field("GovernorConfig", "kelly_fraction_by_regime", value, gt=0.0, le=1.0)
        check_field("GovernorConfig", "kelly_edge_prior_bps", self.kelly_edge_prior_bps)
        check_field("GovernorConfig", "kelly_edge_prior_fills", self.kelly_edge_prior_fills, gt=0.0)
        check_field("GovernorConfig", "funding_mean_per_interval", self.funding_mean_per_interval, gt=-1.0, lt=1.0)
        check_field("GovernorConfig", "funding_reversion_s", self.funding_reversion_s, gt=0.0)
        check_field("GovernorConfig", "urgency_time_s", self.urgency_time_s, gt=0.0)


@dataclass(**CONFIG)
class ActuaryConfig(ConfigBase):
    """GLFT fill intensities per side, Λ(δ) = A · exp(−κ · δ_bps), and the ladder's shape.

    The default intensities describe a liquid book whose fills concentrate within a few bps of
    fair value (κ = 1 per bps); calibrate them per coin
    (:func:`mmlab.calibrate.intensity.fit_fill_intensity` fits them from a tape). ``maker_fee_bps``
    is what the strategy believes it pays (negative is a rebate) and should match the venue's tier.
    ``level_spacing_bps`` is the smallest distance between two levels of one side (set it to at
    least one price tick); with ``adaptive_spacing`` the levels beyond the first sit at equal
    quantiles of the positive expected-PnL mass, evaluated on ``depth_grid_points`` depths,
    otherwise they step by ``level_spacing_bps``. ``adverse_selection_prior_bps`` is charged to
    every fill before the evaluator has measured any, and is worth ``adverse_selection_prior_fills``
    fills against its measurement afterwards.
    """

    levels: int = 10
    level_spacing_bps: float = 2.0
    adaptive_spacing: bool = True
    depth_grid_points: int = 96
    intensity_at_touch_bid_per_s: float = 1.0
    intensity_at_touch_ask_per_s: float = 1.0
    intensity_decay_bid_per_bps: float = 1.0
    intensity_decay_ask_per_bps: float = 1.0
    maker_fee_bps: float = 1.5
    quote_life_s: float = 1.0
    adverse_selection_prior_bps: float = 0.5
    adverse_selection_prior_fills: float = 20.0
    impact_alpha_bps: float = 0.0
    impact_beta: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.levels, int) or not 1 <= self.levels <= 50:
            raise ConfigError(f"ActuaryConfig.levels must be an integer in [1, 50], got {self.levels!r}")
        check_field("ActuaryConfig", "level_spacing_bps", self.level_spacing_bps, gt=0.0)
        if not isinstance(self.adaptive_spacing, bool):
            raise ConfigError(f"ActuaryConfig.adaptive_spacing must be a bool, got {self.adaptive_spacing!r}")
        if not isinstance(self.depth_grid_points, int) or not 8 <= self.depth_grid_points <= 4096:
            raise ConfigError(f"ActuaryConfig.depth_grid_points must be an integer in [8, 4096], got {self.depth_grid_points!r}")
        for name in (
            "intensity_at_touch_bid_per_s",
            "intensity_at_touch_ask_per_s",
            "intensity_decay_bid_per_bps",
            "intensity_decay_ask_per_bps",
            "quote_life_s",
        ):
            check_field("ActuaryConfig", name, getattr(self, name), gt=0.0)
        check_field("ActuaryConfig", "maker_fee_bps", self.maker_fee_bps)
        check_field("ActuaryConfig", "adverse_selection_prior_bps", self.adverse_selection_prior_bps, ge=0.0)
        check_field("ActuaryConfig", "adverse_selection_prior_fills", self.adverse_selection_prior_fills, gt=0.0)
        check_field("ActuaryConfig", "impact_alpha_bps", self.impact_alpha_bps, ge=0.0)
        check_field("ActuaryConfig", "impact_beta", self.impact_beta, gt=0.0)


@dataclass(**CONFIG)
class ExecutorConfig(ConfigBase):
    """Sizing program and order reconciliation.

    ``solver`` is ``"exact"`` (KKT water-filling, the hot path) or ``"cvxpy"`` (the same program
    written in cvxpy with parameters). ``reprice_tolerance_bps`` is how far a resting order may be
    from its target before it is replaced, at zero urgency (it is divided by 1 + urgency).
    ``max_resting_notional_usd`` caps Σ price × size over both sides (open orders reserve margin).
    ``jump_urgency_sigmas`` is k in the urgency a fair-value jump adds, max(0, z − k) with
    z = |Δ ln V̂| / (σ̂ √Δt). ``taker_fee_bps`` is what a TAKE pays; the unwind policy is re-solved
    when one of its inputs moves by more than ``unwind_recompute_rel`` (relative), on a lattice of
    at most ``unwind_max_lots`` lots per side. ``max_tolerance_scale`` caps how much wider than
    the first level's a deeper level's price tolerance may grow (see :mod:`mmlab.executor`).
    ``resize_tolerance_frac``: a live order within this fraction of its target's size is kept.
    Every modify costs the order its queue place, and a third of the pipeline's modifies only
    changed a size; at 0.5 `bench_strategy` sent 17 % fewer actions than at 0.25, for the same PnL
    within noise.
    """

    solver: str = "exact"
    reprice_tolerance_bps: float = 1.0
    resize_tolerance_frac: float = 0.5
    max_resting_notional_usd: float = 1_000.0
    jump_urgency_sigmas: float = 3.0
    taker_fee_bps: float = 4.5
    unwind_recompute_rel: float = 0.1
    unwind_max_lots: int = 40
    max_tolerance_scale: float = 4.0

    def __post_init__(self) -> None:
        owner = "ExecutorConfig"
        if self.solver not in ("exact", "cvxpy"):
            raise ConfigError(f"{owner}.solver must be 'exact' or 'cvxpy', got {self.solver!r}")
        check_field(owner, "reprice_tolerance_bps", self.reprice_tolerance_bps, ge=0.0)
        check_field(owner, "resize_tolerance_frac", self.resize_tolerance_frac, ge=0.0, lt=1.0)
        check_field(owner, "max_resting_notional_usd", self.max_resting_notional_usd, ge=0.0)
        check_field(owner, "jump_urgency_sigmas", self.jump_urgency_sigmas, gt=0.0)
        check_field(owner, "taker_fee_bps", self.taker_fee_bps, ge=0.0)
        check_field(owner, "unwind_recompute_rel", self.unwind_recompute_rel, gt=0.0, lt=1.0)
        check_field(owner, "max_tolerance_scale", self.max_tolerance_scale, ge=1.0)
        if isinstance(self.unwind_max_lots, bool) or not isinstance(self.unwind_max_lots, int) or not 1 <= self.unwind_max_lots <= 500:
            raise ConfigError(f"{owner}.unwind_max_lots must be an integer in [1, 500], got {self.unwind_max_lots!r}")


@dataclass(**CONFIG)
class EvaluatorConfig(ConfigBase):
    """Markouts, their decomposition, π̂, counterfactual PnL, multiplicative weights, change points.

    ``adverse_selection_half_life_fills`` smooths the AS estimate. A fill's spread captured is
    split at ``decomposition_short_horizon_s`` and ``decomposition_long_horizon_s`` (both markout
    horizons) into realized spread, temporary and permanent impact. ``volatility_half_life_s`` is
    the half-life of the mean squared 1 s log-mid return (σ² for π̂ and the change-point prior).
    π̂ (:mod:`mmlab.evaluator.informed`) has a Beta(``informed_prior_a``, ``informed_prior_b``)
    prior, remembers about ``informed_memory_fills`` fills and is sent once
    ``informed_min_fills`` fills are judged. ``counterfactual_adjust_bps`` are the candidate
    spread adjustments that AdaHedge weighs, one round per ``counterfactual_round_s``; ``maker_fee_bps`` is the fee charged to a
    counterfactual fill until our own maker fills have measured it. The change-point detector
    samples the mid every ``changepoint_sample_interval_s``, has hazard
    1 / ``changepoint_hazard_timescale_s``, keeps ``changepoint_max_run_length`` run lengths and
    reports the posterior mass on runs shorter than ``changepoint_window_samples``;
    ``changepoint_prior_shape`` is α₀ of its Gamma prior on a new run's precision.
    """

    markout_horizons_s: tuple[float, ...] = (1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
    adverse_selection_horizon_s: float = 10.0
    adverse_selection_half_life_fills: float = 50.0
    decomposition_short_horizon_s: float = 1.0
    decomposition_long_horizon_s: float = 60.0
    volatility_half_life_s: float = 300.0
    informed_prior_a: float = 1.0
    informed_prior_b: float = 1.0
    informed_memory_fills: float = 2000.0
    informed_min_fills: int = 30
    counterfactual_adjust_bps: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
    maker_fee_bps: float = 1.5
    counterfactual_round_s: float = 1.0
    changepoint_sample_interval_s: float = 1.0
    changepoint_hazard_timescale_s: float = 250.0
    changepoint_max_run_length: int = 300
    changepoint_window_samples: int = 30
    changepoint_prior_shape: float = 1.0

    def __post_init__(self) -> None:
        owner = "EvaluatorConfig"
        if not self.markout_horizons_s:
            raise ConfigError("EvaluatorConfig.markout_horizons_s must not be empty")
        for h in self.markout_horizons_s:
            check_field(owner, "markout_horizons_s", h, gt=0.0)
        for name in ("adverse_selection_horizon_s", "decomposition_short_horizon_s", "decomposition_long_horizon_s"):
            if getattr(self, name) not in self.markout_horizons_s:
                raise ConfigError(f"{owner}.{name} must be one of markout_horizons_s, got {getattr(self, name)!r}")
        if not self.decomposition_short_horizon_s < self.decomposition_long_horizon_s:
            raise ConfigError(
                f"{owner}.decomposition_short_horizon_s must be < decomposition_long_horizon_s, "
                f"got {self.decomposition_short_horizon_s!r} and {self.decomposition_long_horizon_s!r}"
            )
        for name in (
            "adverse_selection_half_life_fills",
            "volatility_half_life_s",
            "informed_prior_a",
            "informed_prior_b",
            "changepoint_sample_interval_s",
            "changepoint_prior_shape",
            "counterfactual_round_s",
        ):
            check_field(owner, name, getattr(self, name), gt=0.0)
        check_field(owner, "informed_memory_fills", self.informed_memory_fills, gt=1.0)
        check_field(owner, "changepoint_hazard_timescale_s", self.changepoint_hazard_timescale_s, gt=self.changepoint_sample_interval_s)
        check_field(owner, "maker_fee_bps", self.maker_fee_bps, gt=-10.0, lt=100.0)
        if not self.counterfactual_adjust_bps:
            raise ConfigError(f"{owner}.counterfactual_adjust_bps must not be empty")
        for a in self.counterfactual_adjust_bps:
            check_field(owner, "counterfactual_adjust_bps", a, gt=-100.0, lt=100.0)
        if any(b <= a for a, b in zip(self.counterfactual_adjust_bps, self.counterfactual_adjust_bps[1:])):
            raise ConfigError(f"{owner}.counterfactual_adjust_bps must be strictly increasing, got {self.counterfactual_adjust_bps!r}")
        for name in ("informed_min_fills", "changepoint_max_run_length", "changepoint_window_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{owner}.{name} must be an integer, got {value!r}")
        if self.informed_min_fills < 1:
            raise ConfigError(f"{owner}.informed_min_fills must be >= 1, got {self.informed_min_fills!r}")
        if self.changepoint_max_run_length < 2:
            raise ConfigError(f"{owner}.changepoint_max_run_length must be >= 2, got {self.changepoint_max_run_length!r}")
        if not 1 <= self.changepoint_window_samples < self.changepoint_max_run_length:
            raise ConfigError(
                f"{owner}.changepoint_window_samples must be in [1, changepoint_max_run_length), "
                f"got {self.changepoint_window_samples!r}"
            )


@dataclass(**CONFIG)
class StrategyConfig(ConfigBase):
    """Everything the six stages need; the object `mmlab backtest` and `mmlab live` load."""

    instrument: InstrumentSpec = field(default_factory=InstrumentSpec)
    sensor: SensorConfig = field(default_factory=SensorConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    governor: GovernorConfig = field(default_factory=GovernorConfig)
    actuary: ActuaryConfig = field(default_factory=ActuaryConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    cycle_interval_s: float = 0.1

    def __post_init__(self) -> None:
        check_field("StrategyConfig", "cycle_interval_s", self.cycle_interval_s, gt=0.0)


@dataclass(**CONFIG)
class SimConfig(ConfigBase):
    """Simulated venue: latencies (s), fees (bps, negative is a rebate), queue model and engine.

    ``queue_model`` names a :mod:`mmlab.sim.models` queue model (``"risk_averse"``, ``"log"``,
    ``"power:2"``, ...). A non-empty ``order_latency_samples_s`` replaces the constant
    ``order_latency_s`` by draws from those recorded latencies, seeded with ``latency_seed``.
    ``fee_tier`` records a Hyperliquid fee tier (``"vip2"``, ``"vip4+mm1"``); build such a config
    with :meth:`for_fee_tier`, since the maker and taker fees must then be that tier's.

    Feed latency (market data, exchange → us): with ``feed_latency_mode="constant"`` every row
    took ``feed_latency_s``; with ``"recorded"`` each row's latency is read off the tape
    (``ts_local − ts_exch``) and ``feed_latency_s`` is that of the fastest row
    (:class:`~mmlab.sim.models.RecordedFeedLatency`). Response latency (the exchange's answers to
    our actions, exchange → us): ``response_latency_s``, ``None`` for ``feed_latency_s``, or draws
    from ``response_latency_samples_s`` when that is not empty (seeded with ``latency_seed + 1``,
    so the two random streams differ). ``engine`` picks the replay engine: ``"compiled"``
    (:mod:`mmlab.sim.engine`, numba) or ``"reference"`` (the readable Python
    :class:`~mmlab.sim.venue.SimVenue`); both give identical results.
    """

    feed_latency_s: float = 0.05
    order_latency_s: float = 0.05
    maker_fee_bps: float = 1.5
    taker_fee_bps: float = 4.5
    fee_tier: str = ""
    queue_model: str = "risk_averse"
    order_latency_samples_s: tuple[float, ...] = ()
    latency_seed: int = 0
    feed_latency_mode: str = "constant"
    response_latency_s: float | None = None
    response_latency_samples_s: tuple[float, ...] = ()
    engine: str = "compiled"

    def __post_init__(self) -> None:
        check_field("SimConfig", "feed_latency_s", self.feed_latency_s, ge=0.0)
        check_field("SimConfig", "order_latency_s", self.order_latency_s, ge=0.0)
        check_field("SimConfig", "maker_fee_bps", self.maker_fee_bps, gt=-10.0, lt=100.0)
        check_field("SimConfig", "taker_fee_bps", self.taker_fee_bps, gt=-10.0, lt=100.0)
        for name in ("order_latency_samples_s", "response_latency_samples_s"):
            if not isinstance(getattr(self, name), tuple):
                raise ConfigError(f"SimConfig.{name} must be a tuple of seconds, got {getattr(self, name)!r}")
        for index, latency_s in enumerate(self.order_latency_samples_s):
            check_field("SimConfig", f"order_latency_samples_s[{index}]", latency_s, ge=0.0)
        if self.feed_latency_mode not in ("constant", "recorded"):
            raise ConfigError(
                f"SimConfig.feed_latency_mode must be 'constant' or 'recorded', got {self.feed_latency_mode!r}"
            )
        if self.response_latency_s is not None:
            check_field("SimConfig", "response_latency_s", self.response_latency_s, ge=0.0)
        for index, latency_s in enumerate(self.response_latency_samples_s):
            check_field("SimConfig", f"response_latency_samples_s[{index}]", latency_s, ge=0.0)
        if self.engine not in ("compiled", "reference"):
            raise ConfigError(f"SimConfig.engine must be 'compiled' or 'reference', got {self.engine!r}")
        if isinstance(self.latency_seed, bool) or not isinstance(self.latency_seed, int) or self.latency_seed < 0:
            raise ConfigError(f"SimConfig.latency_seed must be an integer >= 0, got {self.latency_seed!r}")
        # the models live with the simulator; imported here so config stays importable on its own
        from mmlab.sim.models import fee_schedule_for_tier, queue_model_from_name

        for name in ("queue_model", "fee_tier"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"SimConfig.{name} must be a string, got {getattr(self, name)!r}")
        try:
            queue_model_from_name(self.queue_model)
            schedule = fee_schedule_for_tier(self.fee_tier) if self.fee_tier else None
        except ValueError as err:
            raise ConfigError(f"SimConfig: {err}") from None
        if schedule is not None and (schedule.maker_bps, schedule.taker_bps) != (self.maker_fee_bps, self.taker_fee_bps):
            raise ConfigError(
                f"SimConfig.fee_tier {self.fee_tier!r} charges maker {schedule.maker_bps} bps and taker "
                f"{schedule.taker_bps} bps, but maker_fee_bps={self.maker_fee_bps} and taker_fee_bps="
                f"{self.taker_fee_bps}; use SimConfig.for_fee_tier"
            )

    @classmethod
    def for_fee_tier(cls, fee_tier: str, **fields: Any) -> SimConfig:
        """A config charging the Hyperliquid perp fees of ``fee_tier`` (see :mod:`mmlab.sim.models`)."""
        from mmlab.sim.models import fee_schedule_for_tier

        try:
            schedule = fee_schedule_for_tier(fee_tier)
        except ValueError as err:
            raise ConfigError(f"SimConfig: {err}") from None
        return cls(fee_tier=fee_tier, maker_fee_bps=schedule.maker_bps, taker_fee_bps=schedule.taker_bps, **fields)


def save_config(config: ConfigBase, path: str | Path, *, provenance: dict[str, Any] | None = None) -> Path:
    """Write ``config`` as JSON with its kind, hash id and optional provenance."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "kind": type(config).__name__,
        "config_hash": config.hash_id,
        "provenance": provenance or {},
        "config": config.to_dict(),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def load_config(path: str | Path, cls: type[ConfigBase] = StrategyConfig) -> ConfigBase:
    """Read a file written by :func:`save_config`; errors name the file and the field."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(document, dict) or "config" not in document:
        raise ConfigError(f"{path}: missing field 'config'")
    if document.get("kind", cls.__name__) != cls.__name__:
        raise ConfigError(f"{path}: field 'kind' is {document['kind']!r}, expected {cls.__name__!r}")
    return cls.from_dict(document["config"], where=str(path))
