"""Is a configuration's lead over another beyond seed noise? Welch's t-interval for the difference of two means.

The replicates are the seeds: each seed is one independent training of a configuration, and metrics.json holds one
aggregate per job, so the spread over seeds is the noise a lead must beat. Welch's interval does not assume equal
spreads, nor that the two configurations ran the same seeds (a failed job only costs its own value). A test paired
over seeds would assume seed s draws the same randomness in both configurations, which a change of model, batch size
or learning rate breaks; a bootstrap over validation examples would measure only the noise of the validation set,
not that of training. The lead is beyond seed noise when the 95% interval for (best - other) excludes 0. Each
comparison is at 95% on its own, with no correction for comparing against several configurations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BEYOND = "beyond seed noise"
WITHIN = "within seed noise"
ONE_SEED = "cannot tell: one seed"
METHOD = "Welch's t-interval over seeds"


@dataclass(frozen=True)
class Comparison:
    """best - other on one metric: the difference of means, its interval (NaN below 2 seeds a side), the verdict."""

    difference: float
    low: float
    high: float
    df: float
    n_best: int
    n_other: int
    verdict: str


def student_t_cdf(x: float, df: float) -> float:
    """P(T <= x) for Student's t with `df` degrees of freedom (any df > 0), by Simpson's rule on its density."""
    points = np.linspace(0.0, abs(x), 4001)
    log_scale = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    density = np.exp(log_scale - (df + 1) / 2 * np.log1p(points**2 / df))
    step = points[1] - points[0]
    area = step / 3 * (density[0] + density[-1] + 4 * density[1:-1:2].sum() + 2 * density[2:-1:2].sum())
    return 0.5 + math.copysign(float(area), x)


def student_t_quantile(p: float, df: float) -> float:
    """The x with P(T <= x) = p (0.5 <= p < 1), by bisection on `student_t_cdf`."""
    if not 0.5 <= p < 1:
        raise ValueError(f"p={p} is outside [0.5, 1): give an upper quantile such as 0.975")
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        low, high = high, 2 * high
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if student_t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2


def welch_interval(best: list[float], other: list[float], level: float = 0.95) -> tuple[float, float, float, float]:
    """mean(best) - mean(other), the two ends of its `level` interval, and the Welch-Satterthwaite degrees of freedom
    (each side needs 2 values or more)."""
    a, b = np.asarray(best, dtype=float), np.asarray(other, dtype=float)
    difference = float(a.mean() - b.mean())
    var_a, var_b = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    standard_error = math.sqrt(var_a + var_b)
    if standard_error == 0:  # every seed gave the same value on both sides: no spread to compare against
        return difference, difference, difference, float(len(a) + len(b) - 2)
    df = (var_a + var_b) ** 2 / (var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1))
    half_width = student_t_quantile(1 - (1 - level) / 2, df) * standard_error
    return difference, difference - half_width, difference + half_width, float(df)


def compare(best: list[float], other: list[float], level: float = 0.95) -> Comparison:
    """The verdict on best's lead over other: beyond seed noise when the interval excludes 0, within it when it holds
    0, and cannot tell when either side has fewer than 2 seeds."""
    best = [v for v in best if not math.isnan(v)]
    other = [v for v in other if not math.isnan(v)]
    difference = float(np.mean(best) - np.mean(other)) if best and other else math.nan
    if len(best) < 2 or len(other) < 2:
        return Comparison(difference, math.nan, math.nan, math.nan, len(best), len(other), ONE_SEED)
    difference, low, high, df = welch_interval(best, other, level)
    verdict = BEYOND if low > 0 or high < 0 else WITHIN
    return Comparison(difference, low, high, df, len(best), len(other), verdict)
