"""The charts' arithmetic: the windows' intervals, percentiles from the duration histogram, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from airflow_provider_fgs.ui.stats import DURATION_BOUNDS_MS, WINDOWS, failure_outcome, percentile_ms


@pytest.mark.parametrize(
    ("name", "intervals", "step"), [("24h", 24, 3600), ("7d", 28, 6 * 3600), ("30d", 30, 86400)]
)
def test_a_window_ends_with_the_interval_that_holds_now(name: str, intervals: int, step: int) -> None:
    now = datetime(2026, 12, 7, 15, 42, 17, tzinfo=UTC)
    bounds = WINDOWS[name].bounds(now)
    assert len(bounds) == intervals + 1
    assert bounds[-2] <= now < bounds[-1]
    assert all(b - a == timedelta(seconds=step) for a, b in pairwise(bounds))
    assert bounds[0].timestamp() % step == 0  # aligned: the same intervals for every request in it


def test_percentiles_interpolate_within_the_histograms_bins() -> None:
    histogram = [0] * (len(DURATION_BOUNDS_MS) + 1)
    assert percentile_ms(histogram, 0.5) is None
    histogram[DURATION_BOUNDS_MS.index(100)] = 10  # ten calls between 50 and 100 ms
    assert percentile_ms(histogram, 0.5) == 75.0
    assert percentile_ms(histogram, 0.95) == 97.5
    histogram[-1] = 90  # and ninety above the last bound: the last bound is all it can say
    assert percentile_ms(histogram, 0.95) == float(DURATION_BOUNDS_MS[-1])


@pytest.mark.parametrize(
    ("error_type", "error_code", "outcome"),
    [
        ("FunctionError", "1", "function_error"),
        ("ResultCheckError", None, "function_error"),
        ("InvocationOutcomeUnknownError", None, "outcome_unknown"),
        ("ThrottledError", None, "platform_error"),
        (None, "2", "function_error"),  # a run from before error_type was pushed
        (None, None, "platform_error"),
    ],
)
def test_a_failed_invocation_is_sorted_by_its_error_xcoms(
    error_type: str, error_code: str, outcome: str
) -> None:
    assert failure_outcome(error_type, error_code) == outcome
