"""The one backoff policy: exponential from `initial_s` to `maximum_s`, with full jitter
unless a caller wants its delays exact (the fold's and the sinks' Kafka retries, whose
tests and logs name the delay). Every retry loop of both sides takes one of these."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Delays `initial_s * 2**attempt`, at most `maximum_s`; jittered within its upper half."""

    initial_s: float = 0.5
    maximum_s: float = 30.0
    jitter: bool = True
    attempt: int = 0

    def next(self) -> float:
        delay = min(self.maximum_s, self.initial_s * 2**self.attempt)
        self.attempt += 1
        return random.uniform(delay / 2, delay) if self.jitter else delay  # noqa: S311  # not crypto

    def reset(self) -> None:
        self.attempt = 0
