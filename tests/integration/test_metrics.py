"""
The provider's metrics reach the deployment's StatsD server through Airflow's metrics client, from the
worker and from the triggerer, for synchronous and asynchronous invocations, in a real deployment with
``[metrics] statsd_on`` (plain StatsD: the outcome and the function are in the names).
"""

from __future__ import annotations

import time

import pytest

from tests.machine import needs
from tests.statsd_listener import StatsdListener, statsd_missing_reason

from .conftest import INTEGRATION_TIMEOUT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(INTEGRATION_TIMEOUT),
    pytest.mark.usefixtures("functiongraph_connection"),
    needs(statsd_missing_reason()),
]
EXPECTED = {
    # the worker's invocation of noop
    "functiongraph.invocation.success",
    "functiongraph.function.noop.success",
    # the triggerer's invocation of fail
    "functiongraph.invocation.function_error",
    "functiongraph.function.fail.function_error",
    # the async invocations of environ (waited for by the task that started it) and memory (by a sensor)
    "functiongraph.async_invocation.started",
    "functiongraph.async_invocation.success",
    "functiongraph.function.environ.async_started",
    "functiongraph.function.environ.async_success",
    "functiongraph.function.memory.async_started",
    "functiongraph.function.memory.async_success",
}


@pytest.mark.usefixtures("metrics_run")  # a success, a function error and two async invocations
def test_a_run_of_sync_and_async_invocations_emits_their_outcomes(statsd: StatsdListener) -> None:
    deadline = time.monotonic() + 10  # UDP: sent before the tasks ended, received a moment later
    while missing := EXPECTED - _received_names(statsd):
        assert time.monotonic() < deadline, f"not received: {sorted(missing)}"
        time.sleep(0.2)
    names = _received_names(statsd)
    assert "functiongraph.invocation.latency" in names
    assert "functiongraph.invocation.billed_duration" in names
    assert all(metric.tags == {} for metric in statsd.metrics("functiongraph."))  # plain StatsD: no tags


def _received_names(statsd: StatsdListener) -> set[str]:
    return {metric.name for metric in statsd.metrics("functiongraph.")}
