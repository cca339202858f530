"""tests/helpers/marks.slow_after: which parametrized cases `make test` keeps, checked case by case."""
import pytest

from tests.helpers.marks import slow_after


def _is_slow(case) -> bool:
    return any(m.name == "slow" for m in getattr(case, "marks", ()))


def test_the_first_cases_stay_as_given_and_the_rest_carry_the_slow_mark_with_their_values_ids_and_marks():
    xfail = pytest.mark.xfail(reason="kept")
    cases = [("rnn", 1), ("cnn", 2), pytest.param("transformer", 3, id="tf", marks=xfail), "plain"]
    out = slow_after(2, cases)
    assert out[:2] == cases[:2] and not any(_is_slow(c) for c in out[:2])  # untouched objects
    assert [_is_slow(c) for c in out[2:]] == [True, True]
    assert out[2].values == ("transformer", 3) and out[2].id == "tf" and xfail in out[2].marks
    assert out[3].values == ("plain",)


@pytest.mark.parametrize("keep", [0, 3])
def test_keep_outside_one_to_the_number_of_cases_is_refused(keep):
    with pytest.raises(ValueError, match=f"keep={keep}: must be 1..2"):
        slow_after(keep, [1, 2])
