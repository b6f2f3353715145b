"""The power helpers behind the I2A campaign's seed count (ssmlib.stats)."""

import math

import numpy as np
import pytest

from ssmlib.errors import SsmlibError
from ssmlib.stats import detectable_difference, pooled_sd, seeds_needed


def test_pooled_sd_matches_the_formula_and_skips_single_seeds():
    sd, df = pooled_sd({"a": [1.0, 3.0], "b": [10.0, 14.0, 12.0], "c": [7.0]})
    assert df == 1 + 2
    assert sd == pytest.approx(math.sqrt((2.0 + 8.0) / 3))
    with pytest.raises(SsmlibError):
        pooled_sd({"a": [1.0], "b": [2.0]})


def test_detectable_difference_and_seeds_needed_agree():
    # textbook: (1.96 + 0.84) * sqrt(2 / n) * sd; n = 6, sd = 124 -> about 200 points
    d = detectable_difference(124.0, 6)
    assert d == pytest.approx(2.8016 * 124.0 * math.sqrt(2 / 6), rel=1e-3)
    assert 195 < d < 205
    n = seeds_needed(124.0, d)
    assert n in (6, 7) and detectable_difference(124.0, n) <= d + 1e-9
    assert seeds_needed(124.0, 100.0) > seeds_needed(124.0, 200.0)


def test_power_by_simulation():
    # at the detectable difference, a two-sample z-test with known sd rejects about 80% of the time
    rng = np.random.default_rng(0)
    sd, n = 1.0, 6
    d = detectable_difference(sd, n)
    a = rng.normal(0.0, sd, (20000, n)).mean(1)
    b = rng.normal(d, sd, (20000, n)).mean(1)
    z = (b - a) / (sd * math.sqrt(2 / n))
    assert abs(float((np.abs(z) > 1.959964).mean()) - 0.8) < 0.02
