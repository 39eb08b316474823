"""Fleet gauge summaries (domain/gauges.py): nearest-rank heartbeat quantiles and work-order
counts with every status present."""

from __future__ import annotations

from brokkr.broker.domain import gauges


def test_no_ages_have_no_quantiles() -> None:
    assert gauges.quantiles([]) == {}


def test_one_age_is_every_quantile() -> None:
    assert gauges.quantiles([7.0]) == {"0.5": 7.0, "0.9": 7.0, "0.99": 7.0, "1": 7.0}


def test_nearest_rank_quantiles() -> None:
    ages = [float(n) for n in range(100, 0, -1)]  # 1 .. 100, unordered
    assert gauges.quantiles(ages) == {"0.5": 50.0, "0.9": 90.0, "0.99": 99.0, "1": 100.0}


def test_work_orders_by_status_lists_every_status() -> None:
    assert gauges.by_status({"CLAIMED": 2}) == {"PENDING": 0, "CLAIMED": 2, "RETRY_PENDING": 0}
