"""The agent channel's hub: this broker's connected agents and live-stream subscribers.

Skeleton: the foundation of issue 15; the hub's connections, pushes and fan-out are built on it.
"""

from __future__ import annotations

from brokkr.broker.domain import hints


class Hub:
    def hinted(self, hint: hints.Hint) -> None:
        """A committed hint (this broker's own, right after its commit): deliver it to the
        concerned agents connected here."""

    def noticed(self, payload: str) -> None:
        """An encoded hint notice from the change listener (any broker's, this one's echo
        too): deliver it unless this broker announced it."""
