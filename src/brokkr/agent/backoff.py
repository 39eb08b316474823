"""Pure retry timing: capped exponential backoff with full jitter, and a per-key retry tracker.

Full jitter (a uniform delay between 0 and the capped exponential ceiling) spreads the retries
of many agents hitting one broker or API server after a shared outage; ``spread`` (jitter of a
fraction around the ceiling) paces the broker channel's reconnections. No clock reads: callers
pass ``now``; randomness is injectable for tests.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

KeyT = TypeVar("KeyT", bound=Hashable)

# 2**64 times any sane minimum already exceeds any sane maximum; bounding the exponent keeps the
# float arithmetic finite however many failures accumulate.
_MAX_EXPONENT = 64


def ceiling(attempt: int, *, minimum: float, maximum: float) -> float:
    """Upper bound of the delay after the ``attempt``-th consecutive failure (1-based)."""
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    return min(maximum, minimum * 2.0**exponent)


def delay(
    attempt: int,
    *,
    minimum: float,
    maximum: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after the ``attempt``-th consecutive failure: uniform in [0, ceiling]."""
    return rand() * ceiling(attempt, minimum=minimum, maximum=maximum)


class RetryTracker(Generic[KeyT]):
    """When each failing key (an object, a deployment object) may next be attempted.

    A key that never failed, or succeeded since, is always due.
    """

    def __init__(
        self,
        *,
        minimum: float,
        maximum: float,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._minimum = minimum
        self._maximum = maximum
        self._rand = rand
        self._failures: dict[KeyT, int] = {}
        self._next_attempt: dict[KeyT, datetime] = {}

    def failed(self, key: KeyT, *, now: datetime) -> datetime:
        """Record a failure; return the time of the next attempt."""
        attempt = self._failures.get(key, 0) + 1
        self._failures[key] = attempt
        wait = delay(attempt, minimum=self._minimum, maximum=self._maximum, rand=self._rand)
        self._next_attempt[key] = now + timedelta(seconds=wait)
        return self._next_attempt[key]

    def succeeded(self, key: KeyT) -> None:
        self._failures.pop(key, None)
        self._next_attempt.pop(key, None)

    def failures(self, key: KeyT) -> int:
        return self._failures.get(key, 0)

    def next_attempt(self, key: KeyT) -> datetime | None:
        """None when ``key`` is not backing off."""
        return self._next_attempt.get(key)

    def is_due(self, key: KeyT, *, now: datetime) -> bool:
        next_attempt = self._next_attempt.get(key)
        return next_attempt is None or now >= next_attempt

    def any_due(self, *, now: datetime) -> bool:
        """Whether the retry of some failing key is due (keys that never failed do not count)."""
        return any(now >= next_attempt for next_attempt in self._next_attempt.values())

    def retain(self, keys: Iterable[KeyT]) -> None:
        """Forget every key not in ``keys`` (superseded deployment objects, pruned objects),
        so the tracker does not grow for the life of the process."""
        wanted = set(keys)
        for key in [key for key in self._failures if key not in wanted]:
            self.succeeded(key)


def spread(
    attempt: int,
    *,
    minimum: float,
    maximum: float,
    jitter: float,
    rand: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait after the ``attempt``-th consecutive failure: the capped exponential
    ceiling give or take ``jitter`` (a fraction of it), uniformly. The channel's reconnection
    schedule (1, 2, 4 ... 60 s, +/- 20 %): it never draws ~0, so a broker that just came back is
    not hit by every agent in the same instant, nor by any agent in a tight loop."""
    return ceiling(attempt, minimum=minimum, maximum=maximum) * rand(1 - jitter, 1 + jitter)
