"""The detector's Gamma and F quantiles (sdrwatch.dsp.quantiles, math only) against scipy.special, over
the range the detector uses: averages from one 5 ms frame to a 400-frame window summed over a channel
(K up to 1e5), baselines of up to about an hour (reference averages up to 1e7), false-alarm
probabilities from a lower threshold's 1e-3 down to a per-bin 1e-9 shared over many windows."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special

from sdrwatch.dsp import detector, quantiles

RTOL = 2e-12


def _grid(n: int, seed: int, **ranges) -> list[dict]:
    """``n`` points, log-uniform over each (lo, hi) range, plus every corner."""
    rng = np.random.default_rng(seed)
    names = sorted(ranges)
    pts = [{k: float(np.exp(rng.uniform(np.log(ranges[k][0]), np.log(ranges[k][1])))) for k in names} for _ in range(n)]
    corners = [{k: float(ranges[k][(i >> j) & 1]) for j, k in enumerate(names)} for i in range(1 << len(names))]
    return pts + corners


@pytest.mark.parametrize("pt", _grid(300, 1, d1=(2.0, 2e5), d2=(20.0, 2e7), p=(1e-15, 1e-2)))
def test_f_upper_quantile_is_scipys(pt):
    want = float(scipy.special.fdtri(pt["d1"], pt["d2"], 1.0 - pt["p"]))
    assert quantiles.f_isf(pt["d1"], pt["d2"], pt["p"]) == pytest.approx(want, rel=RTOL)


@pytest.mark.parametrize("pt", _grid(150, 2, a=(0.5, 1e5), p=(1e-20, 0.5)))
def test_gamma_upper_quantile_is_scipys(pt):
    want = float(scipy.special.gammainccinv(pt["a"], pt["p"]))
    assert quantiles.gamma_isf(pt["a"], pt["p"]) == pytest.approx(want, rel=RTOL)


@pytest.mark.parametrize("pt", _grid(100, 3, a=(0.5, 1e5), q=(1e-3, 0.99)))
def test_gamma_lower_quantile_is_scipys(pt):
    want = float(scipy.special.gammaincinv(pt["a"], pt["q"]))
    assert quantiles.gamma_ppf(pt["a"], pt["q"]) == pytest.approx(want, rel=RTOL)


def test_the_detectors_thresholds_are_scipys():
    """The thresholds as the detector forms them, e.g. K = 21.8 averages per 5 ms frame at 2.4 MS/s."""
    for k in (21.789474, 217.9, 8715.8):
        for pfa in (1e-9, 1e-3):
            assert detector.gamma_threshold(k, pfa) == pytest.approx(scipy.special.gammainccinv(k, pfa) / k, rel=RTOL)
            for k_ref in (1e4, 1.3e5, 5e6):
                want = scipy.special.fdtri(2 * k, 2 * k_ref, 1 - pfa)
                assert detector.ratio_threshold(k, k_ref, pfa)[0] == pytest.approx(want, rel=RTOL)
    assert detector.gamma_quantile(21.789474, 0.2) == pytest.approx(scipy.special.gammaincinv(21.789474, 0.2) / 21.789474,
                                                                    rel=RTOL)


def test_out_of_range_arguments_give_nan_as_scipy_does():
    for value in (quantiles.gamma_isf(0.0, 1e-3), quantiles.gamma_isf(5.0, 0.0), quantiles.gamma_ppf(5.0, 1.0),
                  quantiles.f_isf(-1.0, 10.0, 1e-3), quantiles.f_isf(4.0, math.inf, 1e-3), quantiles.f_isf(4.0, 10.0, 1.5)):
        assert math.isnan(value)
