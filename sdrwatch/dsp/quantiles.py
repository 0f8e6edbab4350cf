"""Tail quantiles of the Gamma and F distributions, in plain Python floats (``math`` only).

The detector's thresholds (:mod:`sdrwatch.dsp.detector`, formulas 1-3) need three numbers:

- ``gamma_isf(a, p)``: x with Q(a, x) = p, Q the regularised upper incomplete gamma function
  (``scipy.special.gammainccinv``);
- ``gamma_ppf(a, q)``: x with P(a, x) = q (``scipy.special.gammaincinv``);
- ``f_isf(d1, d2, p)``: f with P(F(d1, d2) > f) = p (``scipy.special.fdtri(d1, d2, 1 - p)``).

They are computed here so that a replay does not import ``scipy.special``, which with scipy 1.17 and
numpy 2.4 costs a process about 0.3-0.5 s of start-up. ``tests/test_quantiles.py`` holds them to
scipy within 1e-12 (relative) over the range the detector uses.

Method. Both distributions are evaluated as a prefactor times a continued fraction or a series
(Numerical Recipes' ``gser`` and ``gcf`` with modified Lentz; Didonato and Morris's ``bfrac``, TOMS 708, for
the beta function). The prefactors
x^a e^-x / Gamma(a) and y^p (1-y)^q / B(p, q) are formed the way Loader's binomial density is:
Stirling's series for the log-gamma remainders and ``bd0`` for the deviance, so no two large
logarithms are subtracted and the relative error stays near 1e-15 even for a, p, q of 1e7. The
quantile is then found by Newton steps on log(tail) against log(x), which is nearly linear in the
tails, inside a bracket kept by bisection, from a Wilson-Hilferty (Gamma) or Paulson (F) start.
"""
from __future__ import annotations

import math
from statistics import NormalDist

_LN_2PI = math.log(2.0 * math.pi)
_TINY = 1e-300
_EPS = 1e-16
_MAX_TERMS = 200_000
_NORMAL = NormalDist()


def _lgamma_rest(a: float) -> float:
    """lgamma(a) - ((a - 1/2) ln a - a + ln(2 pi)/2): the remainder of Stirling's formula."""
    if a >= 15.0:
        r = 1.0 / (a * a)
        return (1.0 / 12 - r * (1.0 / 360 - r * (1.0 / 1260 - r * (1.0 / 1680 - r * (1.0 / 1188))))) / a
    return math.lgamma(a) - ((a - 0.5) * math.log(a) - a + 0.5 * _LN_2PI)


def _bd0(x: float, m: float) -> float:
    """x ln(x/m) + m - x, without cancellation when x is near m (Loader 2000)."""
    d = x - m
    if abs(d) < 0.1 * (x + m):
        v = d / (x + m)
        s = d * v
        ej = 2.0 * x * v
        v2 = v * v
        j = 1
        while True:
            ej *= v2
            s1 = s + ej / (2 * j + 1)
            if s1 == s:
                return s1
            s = s1
            j += 1
    return x * math.log(x / m) + m - x


def _log_gamma_prefactor(a: float, x: float) -> float:
    """ln(x^a e^-x / Gamma(a))."""
    return -_bd0(a, x) + 0.5 * math.log(a / (2.0 * math.pi)) - _lgamma_rest(a)


def _gamma_tails(a: float, x: float) -> tuple[float, float, float]:
    """(ln P(a, x), ln Q(a, x), ln(x^a e^-x / Gamma(a))): P by the series for x < a + 1, Q by the
    continued fraction otherwise, the other as its complement. The last is |d ln T / d ln x| * T for
    either tail T."""
    lpre = _log_gamma_prefactor(a, x)
    if x < a + 1.0:
        # P = pre * sum_n x^n / (a (a+1) ... (a+n))
        term = total = 1.0 / a
        ap = a
        for _ in range(_MAX_TERMS):
            ap += 1.0
            term *= x / ap
            total += term
            if term < total * _EPS:
                break
        lp = lpre + math.log(total)
        return lp, math.log1p(-math.exp(lp)) if lp < 0.0 else -math.inf, lpre
    # Q = pre * h, h the continued fraction 1/(x+1-a- 1(1-a)/(x+3-a- 2(2-a)/(x+5-a- ...)))
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_TERMS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    lq = lpre + math.log(h)
    return (math.log1p(-math.exp(lq)) if lq < 0.0 else -math.inf), lq, lpre


def _log_beta_prefactor(p: float, q: float, y: float, y1: float) -> float:
    """ln(y^p (1-y)^q / B(p, q)), ``y1`` = 1 - y given separately (it may be tiny)."""
    n = p + q
    return (-_bd0(p, y * n) - _bd0(q, y1 * n) + 0.5 * math.log(p * q / (2.0 * math.pi * n))
            + _lgamma_rest(n) - _lgamma_rest(p) - _lgamma_rest(q))


def _bfrac(a: float, b: float, x: float, y: float) -> float:
    """The continued fraction R of I_x(a, b) = x^a y^b / B(a, b) * R, y = 1 - x given separately, for
    x below the mean a / (a + b) (Didonato and Morris, TOMS 708, ``bfrac``): its coefficients use
    lambda = (a + b) y - b, which is accurate when x is within rounding of 1."""
    lam = (a + b) * y - b
    c = 1.0 + lam
    c0 = b / a
    c1 = 1.0 + 1.0 / a
    yp1 = y + 1.0
    n, p, s = 0.0, 1.0, a + 1.0
    an, bn, anp1, bnp1 = 0.0, 1.0, 1.0, c / c1
    r = c1 / c
    for _ in range(_MAX_TERMS):
        n += 1.0
        t = n / a
        w = n * (b - n) * x
        e = a / s
        alpha = (p * (p + c0) * e * e) * (w * x)
        e = (1.0 + t) / (c1 + t + t)
        beta = n + w / s + e * (c + n * yp1)
        p = 1.0 + t
        s += 2.0
        t = alpha * an + beta * anp1
        an, anp1 = anp1, t
        t = alpha * bn + beta * bnp1
        bn, bnp1 = bnp1, t
        r0, r = r, anp1 / bnp1
        if abs(r - r0) <= _EPS * r:
            break
        an /= bnp1
        bn /= bnp1
        anp1, bnp1 = r, 1.0
    return r


def _f_upper(d1: float, d2: float, f: float) -> tuple[float, float]:
    """(ln P(F(d1, d2) > f), |d ln(that) / d ln f|)."""
    p, q = 0.5 * d2, 0.5 * d1
    den = d2 + d1 * f
    y, y1 = d2 / den, d1 * f / den  # the tail is I_y(p, q); y1 = 1 - y
    lpre = _log_beta_prefactor(p, q, y, y1)
    if (p + q) * y1 - q >= 0.0:  # y at or below the mean of Beta(p, q)
        r = _bfrac(p, q, y, y1)
        return lpre + math.log(r), 1.0 / r  # d I_y / d ln f = -y^p (1-y)^q / B
    # the tail is 1 - I_y1(q, p)
    other = math.exp(lpre) * _bfrac(q, p, y1, y)
    tail = 1.0 - other
    if tail <= 0.0:
        return -math.inf, math.inf
    return math.log(tail), math.exp(lpre) / tail


def _solve(fun, target: float, x0: float, upper_tail: bool) -> float:
    """x > 0 with ln(tail(x)) = target, where ``fun(x)`` gives (ln tail, |d ln tail / d ln x|) and
    the tail falls with x (upper) or rises with it (lower). Newton on ln x inside a bisection bracket."""
    t = math.log(x0)
    lo, hi = -math.inf, math.inf  # ln x bracket
    for _ in range(200):
        lt, slope = fun(math.exp(t))
        g = lt - target
        too_small_x = (g > 0) == upper_tail  # the tail is still above the target: x must grow (upper)
        if too_small_x:
            lo = t
        else:
            hi = t
        if g == 0.0:
            return math.exp(t)
        if slope > 0 and math.isfinite(slope) and math.isfinite(g):
            step = g / slope if upper_tail else -g / slope
        else:
            step = math.nan
        nt = t + step
        if not (lo < nt < hi) or not math.isfinite(nt):
            if math.isfinite(lo) and math.isfinite(hi):
                nt = 0.5 * (lo + hi)
            elif math.isfinite(lo):
                nt = lo + 1.0
            else:
                nt = hi - 1.0
        if abs(nt - t) <= 4e-16 * max(1.0, abs(t)):
            return math.exp(nt)
        t = nt
    return math.exp(t)


def _valid(a: float, p: float) -> bool:
    """Shape positive and finite, probability strictly between 0 and 1 (otherwise the result is nan,
    as scipy's)."""
    return a > 0 and math.isfinite(a) and 0.0 < p < 1.0


def _wilson_hilferty(a: float, z: float) -> float:
    """Gamma(a) quantile at the normal quantile z (Wilson-Hilferty), kept positive."""
    s = 1.0 / (9.0 * a)
    c = 1.0 - s + z * math.sqrt(s)
    return a * c ** 3 if c > 0.05 else a * 0.05 ** 3 * math.exp(z / 3.0)


def gamma_isf(a: float, p: float) -> float:
    """x with Q(a, x) = p (the upper tail of a Gamma(a, 1) variable): ``scipy.special.gammainccinv``."""
    if not _valid(a, p):
        return math.nan
    x0 = _wilson_hilferty(a, -_NORMAL.inv_cdf(p))

    def upper(x: float) -> tuple[float, float]:
        _lp, lq, lpre = _gamma_tails(a, x)
        return lq, math.exp(lpre - lq)

    return _solve(upper, math.log(p), x0, upper_tail=True)


def gamma_ppf(a: float, q: float) -> float:
    """x with P(a, x) = q (the lower tail): ``scipy.special.gammaincinv``."""
    if not _valid(a, q):
        return math.nan
    x0 = _wilson_hilferty(a, _NORMAL.inv_cdf(q))

    def lower(x: float) -> tuple[float, float]:
        lp, _lq, lpre = _gamma_tails(a, x)
        return lp, math.exp(lpre - lp)

    return _solve(lower, math.log(q), x0, upper_tail=False)


def f_isf(d1: float, d2: float, p: float) -> float:
    """f with P(F(d1, d2) > f) = p: ``scipy.special.fdtri(d1, d2, 1 - p)``, as that is evaluated
    (the tail it solves for is ``1 - (1 - p)`` in floating point)."""
    if not (_valid(d1, p) and _valid(d2, p)):
        return math.nan
    tail = 1.0 - (1.0 - p)
    z = -_NORMAL.inv_cdf(tail)
    # Paulson: ((1-s2) w - (1-s1)) / sqrt(s2 w^2 + s1) = z for w = f^(1/3)
    s1, s2 = 2.0 / (9.0 * d1), 2.0 / (9.0 * d2)
    qa = (1.0 - s2) ** 2 - z * z * s2
    qb = -2.0 * (1.0 - s1) * (1.0 - s2)
    qc = (1.0 - s1) ** 2 - z * z * s1
    disc = qb * qb - 4.0 * qa * qc
    if qa > 0 and disc >= 0:
        w = (-qb + math.copysign(math.sqrt(disc), z)) / (2.0 * qa)
        f0 = w ** 3 if w > 0 else 1.0
    else:
        f0 = math.exp(z * math.sqrt(2.0 / d1 + 2.0 / d2))
    return _solve(lambda f: _f_upper(d1, d2, f), math.log(tail), f0, upper_tail=True)
