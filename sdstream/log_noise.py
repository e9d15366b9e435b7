"""Collapse repeated Kafka client noise into one line per episode, and keep start-up quiet.

aiokafka logs every failed connection attempt, metadata refresh and fetch: while a
broker restarts (~8 s) a consumer printed ~990 WARNING/ERROR lines, a producer ~320,
and a healthy first start against a fresh broker ~47 (no group coordinator yet, no
leader yet for partitions created a moment ago). Such lines say the client retries,
not that a user must act; a warning should mean something.

`NoiseGate` is the pure policy, fed one noisy line at a time with the time:

- An *episode* is a run of noise with gaps shorter than `quiet_s`. Within one, the first
  line of each *family* (logger, message template, error type) is kept; repeats are
  dropped and counted. When `quiet_s` passes without noise, the episode ends with one
  summary line: how long it lasted and how many lines were suppressed.
- While an episode lasts longer than `repeat_s`, one reminder per `repeat_s` says it
  goes on (a broker that stays down must stay visible).
- Until the process is ready (`started`) or `startup_s` has passed, noise is retriable
  start-up noise: every line is demoted to DEBUG, and one INFO line sums it up.

The `logs` module feeds it from a logging filter and a one-second timer thread.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Final, Literal

Verdict = Literal["keep", "debug", "drop"]
Family = tuple[str, str, str]  # logger, message template, error type (or template)

QUIET_S: Final = 5.0
REPEAT_S: Final = 60.0
STARTUP_S: Final = 60.0

# aiokafka's retried-request lines whose arguments carry no error to judge by.
KNOWN_NOISE: Final = frozenset(
    {
        "Unable to update metadata from %s",
        "Unable connect to node with id %s: %s",
        'Unable connect to "%s:%s": %s',
        "Heartbeat session expired - marking coordinator dead",
        "Marking the coordinator dead (node %s)for group %s.",  # a slow broker; rediscovered
        "Topic %s not found in cluster metadata",
        "Topic %s is not available during auto-create initialization",
    }
)


@dataclass(frozen=True, slots=True)
class Summary:
    """A line the gate asks to log: %-style `message` with `args`."""

    level: int
    message: str
    args: tuple[object, ...]
    duration_s: float = 0.0
    suppressed: int = 0


@dataclass
class Episode:
    start: float
    last: float
    starting: bool  # began before the process was ready: demoted to DEBUG
    reported: float = 0.0  # when the last reminder was logged
    kept: set[Family] = field(default_factory=set)
    suppressed: Counter[str] = field(default_factory=Counter)  # by error type


def family(name: str, template: str, args: object) -> Family | None:
    """The family of an aiokafka WARNING/ERROR line if it is retried noise, else None: a
    line with a retriable error (or a refused connection) among its arguments, or one
    of KNOWN_NOISE."""
    if not name.startswith("aiokafka"):
        return None
    errors = [a for a in (args if isinstance(args, tuple) else ()) if _is_error(a)]
    if any(_retriable(e) for e in errors):
        return (name, template, _type_name(next(e for e in errors if _retriable(e))))
    if template in KNOWN_NOISE:
        return (name, template, template.split(" %", 1)[0])
    return None


def _is_error(arg: object) -> bool:
    return isinstance(arg, BaseException) or (
        isinstance(arg, type) and issubclass(arg, BaseException)
    )


def _retriable(error: object) -> bool:
    is_os_error = isinstance(error, OSError) or (
        isinstance(error, type) and issubclass(error, OSError)
    )
    return is_os_error or getattr(error, "retriable", False) is True


def _type_name(error: object) -> str:
    return error.__name__ if isinstance(error, type) else type(error).__name__


class NoiseGate:
    """Decides, per noisy line, whether it is kept, demoted or dropped (see module doc)."""

    def __init__(
        self,
        *,
        now: float,
        quiet_s: float = QUIET_S,
        repeat_s: float = REPEAT_S,
        startup_s: float = STARTUP_S,
    ) -> None:
        self._quiet_s, self._repeat_s = quiet_s, repeat_s
        self._startup_until = now + startup_s
        self._ready = False
        self.episode: Episode | None = None

    def starting(self, now: float) -> bool:
        return not self._ready and now < self._startup_until

    def started(self, now: float) -> list[Summary]:
        """The process is ready: start-up is over; a start-up episode ends here."""
        self._ready = True
        if self.episode is not None and self.episode.starting:
            return self._close(now)
        return []

    def tick(self, now: float) -> list[Summary]:
        """Summaries due at `now`: an episode that went quiet, or a reminder."""
        episode = self.episode
        if episode is None:
            return []
        if now - episode.last >= self._quiet_s:
            return self._close(now)
        if not episode.starting and now - episode.reported >= self._repeat_s:
            episode.reported = now
            return [self._ongoing(episode, now)]
        return []

    def noise(self, key: Family, now: float) -> tuple[Verdict, list[Summary]]:
        """One noisy line of family `key` at `now`: what to do with it, and summaries
        to log first."""
        summaries = self.tick(now)
        if self.episode is None:
            self.episode = Episode(start=now, last=now, starting=self.starting(now), reported=now)
        episode = self.episode
        episode.last = now
        if episode.starting:
            if not self.starting(now):  # start-up took too long: this is an outage
                episode.starting = False
            else:
                episode.suppressed[key[2]] += 1
                return "debug", summaries
        if key in episode.kept:
            episode.suppressed[key[2]] += 1
            return "drop", summaries
        episode.kept.add(key)
        return "keep", summaries

    def _close(self, now: float) -> list[Summary]:
        episode, self.episode = self.episode, None
        if episode is None or not episode.suppressed:  # one line said it all
            return []
        lasted, total = episode.last - episode.start, sum(episode.suppressed.values())
        if episode.starting:
            message = "Kafka start-up: %d retried client messages logged at DEBUG over %.1f s (%s)."
            return [Summary(logging.INFO, message, (total, lasted, _top(episode)), lasted, total)]
        message = "Kafka client errors stopped after %.1f s (%d repeated messages suppressed%s)."
        return [Summary(logging.INFO, message, (lasted, total, _among(episode)), lasted, total)]

    @staticmethod
    def _ongoing(episode: Episode, now: float) -> Summary:
        message = "Kafka client errors go on for %.0f s (%d repeated messages suppressed%s)."
        lasted, total = now - episode.start, sum(episode.suppressed.values())
        return Summary(logging.WARNING, message, (lasted, total, _among(episode)), lasted, total)


def _top(episode: Episode) -> str:
    return ", ".join(f"{name} x{count}" for name, count in episode.suppressed.most_common(4))


def _among(episode: Episode) -> str:
    return f": {_top(episode)}" if episode.suppressed else ""
