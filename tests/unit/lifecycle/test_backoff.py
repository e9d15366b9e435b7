"""One backoff policy: doubling up to a cap, jittered unless exact delays are asked for."""

from __future__ import annotations

from lifecycle.backoff import Backoff


def test_exact_delays_double_up_to_the_cap_and_reset() -> None:
    backoff = Backoff(0.5, 3.0, jitter=False)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_jittered_delays_stay_in_the_upper_half() -> None:
    backoff = Backoff(1.0, 8.0)
    for cap in (1.0, 2.0, 4.0, 8.0, 8.0):
        assert cap / 2 <= backoff.next() <= cap
