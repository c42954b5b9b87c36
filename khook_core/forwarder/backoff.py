"""Exponential backoff with full jitter, shared by the watch loop and the publisher.

Jitter spreads the retries of many forwarders (one per cluster, or replicas after a rollout) so
an API server or Pub/Sub endpoint that comes back is not hit by all of them at the same instant.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays ``initial * 2**n`` capped at ``maximum``, each drawn uniformly from [d/2, d].

    Args:
        initial: the first delay in seconds.
        maximum: the cap in seconds.
        rng: the random source (tests pass a seeded one).
    """

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.attempts = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling."""
        ceiling = min(self.maximum, self.initial * 2 ** min(self.attempts, 32))
        self.attempts += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Call after a success: the next failure starts from ``initial`` again."""
        self.attempts = 0
