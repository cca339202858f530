"""The t interval against a hand computation for 3 seeds."""
import math

import pytest

from research.analysis.confidence import t_interval


def test_three_seeds_by_hand():
    # mean 12, sample std 2 (deviations -2, 0, 2: sum of squares 8, / (3 - 1) = 4);
    # t_{0.975, 2} = 4.302653 (a t table); half width 4.302653 * 2 / sqrt(3) = 4.968275.
    i = t_interval([10.0, 14.0, 12.0])
    assert (i.mean, i.std, i.n) == (12.0, 2.0, 3)
    assert i.half_width() == pytest.approx(4.302653 * 2 / math.sqrt(3), abs=1e-5)
    assert (i.low, i.high) == pytest.approx((12.0 - 4.968275, 12.0 + 4.968275), abs=1e-5)


def test_one_seed_has_no_interval_and_none_is_refused():
    assert t_interval([3.0]).low is None and t_interval([3.0]).mean == 3.0
    with pytest.raises(ValueError):
        t_interval([])
