"""Fault injection: answer chosen requests with an error, slowly, or not before the client
gives up; and make an API group version's discovery fail."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class Fault:
    """A rule that matches requests by method and a substring of ``path?query``.

    ``action`` is ``"status"`` (answer ``status`` instead of serving), ``"delay"`` (serve
    after ``seconds``) or ``"timeout"`` (hold the request ``seconds``, then answer 504).
    ``times`` is how many matching requests it affects; ``None`` means all of them.
    """

    action: str
    method: str | None = None
    path_contains: str | None = None
    status: int = 500
    seconds: float = 0.0
    times: int | None = 1
    retry_after: int = 1
    hits: int = 0

    def matches(self, method: str, target: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_contains is None or self.path_contains in target

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


class Faults:
    """The active rules (thread-safe: tests add them while the server thread consumes them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._broken: set[str] = set()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._rules.append(fault)
        return fault

    def take(self, method: str, target: str) -> list[Fault]:
        """The rules this request triggers (each counts it), delays before statuses."""
        with self._lock:
            hit = [f for f in self._rules if not f.exhausted and f.matches(method, target)]
            for fault in hit:
                fault.hits += 1
            self._rules = [f for f in self._rules if not f.exhausted]
        return sorted(hit, key=lambda f: f.action == "status")

    def break_discovery(self, group_version: str) -> None:
        with self._lock:
            self._broken.add(group_version)

    def restore_discovery(self, group_version: str) -> None:
        with self._lock:
            self._broken.discard(group_version)

    def discovery_broken(self, group_version: str) -> bool:
        with self._lock:
            return group_version in self._broken

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._broken.clear()
