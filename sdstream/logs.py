"""Log setup: human-readable lines by default, one JSON object per line with --log-json.

Context passed in `extra=` is kept as fields in JSON output. Repeated Kafka client noise
is collapsed by `KafkaNoiseFilter` (policy in `log_noise`); call `started()` once the
process is ready, so start-up noise ends in one summary line.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import orjson

from sdstream import log_noise

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


# aiokafka lines logged at ERROR although the client (or sdstream, for bootstrap) retries;
# the error is the last arg.
RETRIED: Final = {
    ("aiokafka.consumer.group_coordinator", "Group Coordinator Request failed: %s"),
    ("aiokafka.consumer.fetcher", "Failed fetch offsets from %s: %s"),
    ("aiokafka", 'Unable connect to "%s:%s": %s'),
    ("aiokafka", "Unable connect to node with id %s: %s"),
}


class RetriableAsWarning(logging.Filter):
    """aiokafka logs some failed requests at ERROR even when they are retried, as on every
    first start against a fresh broker (no __consumer_offsets topic yet, partitions of
    new topics without a leader for a moment) or while Kafka is not up yet. Such a line
    says nothing is wrong yet, so it is logged as a warning; errors that are not
    retriable stay errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno == logging.ERROR
            and (record.name, record.msg) in RETRIED
            and isinstance(record.args, tuple)
            and record.args
            and _retriable(record.args[-1])
        ):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _retriable(error: object) -> bool:
    """Kafka's retriable errors, and refused or dropped connections (sdstream's readers
    and writers retry those, and readiness says why meanwhile)."""
    return isinstance(error, OSError) or getattr(error, "retriable", False) is True


class KafkaNoiseFilter(logging.Filter):
    """A handler filter feeding `log_noise.NoiseGate`: drops repeats, demotes start-up
    noise to DEBUG, and logs the gate's summaries (also from `tick`, called by a timer
    so an outage's summary comes even when nothing else is logged)."""

    def __init__(self, gate: log_noise.NoiseGate) -> None:
        super().__init__()
        self._gate = gate
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = None
        if logging.WARNING <= record.levelno <= logging.ERROR and record.exc_info is None:
            key = log_noise.family(record.name, str(record.msg), record.args)
        if key is None:
            self.tick()
            return True
        with self._lock:
            verdict, summaries = self._gate.noise(key, time.monotonic())
        _log(summaries)
        if verdict == "debug" and logging.getLogger().isEnabledFor(logging.DEBUG):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return True
        return verdict == "keep"

    def tick(self) -> None:
        with self._lock:
            summaries = self._gate.tick(time.monotonic())
        _log(summaries)

    def started(self) -> None:
        with self._lock:
            summaries = self._gate.started(time.monotonic())
        _log(summaries)


_noise_logger = logging.getLogger("sdstream.kafka_client")
_filter: KafkaNoiseFilter | None = None


def _log(summaries: list[log_noise.Summary]) -> None:
    for summary in summaries:
        _noise_logger.log(summary.level, summary.message, *summary.args,
                          extra={"duration_s": round(summary.duration_s, 1),
                                 "suppressed": summary.suppressed})  # fmt: skip


def started() -> None:
    """The process is ready: retried Kafka client noise from now on is an outage."""
    if _filter is not None:
        _filter.started()


async def started_when(ready: Callable[[], bool], *, poll_s: float = 0.5) -> None:
    """Call `started()` once `ready()` says so (readiness is a pull; nobody announces it)."""
    while not ready():  # noqa: ASYNC110 - readiness is a function, no event to wait on
        await asyncio.sleep(poll_s)
    started()


def _ticking() -> None:
    while True:
        time.sleep(1.0)
        if _filter is not None:
            _filter.tick()


def setup(*, level: str = "INFO", json: bool = False) -> None:
    global _filter  # one noise filter per process, like logging's own state
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    if _filter is None:
        threading.Thread(target=_ticking, name="log-noise", daemon=True).start()
    _filter = KafkaNoiseFilter(log_noise.NoiseGate(now=time.monotonic()))
    handler.addFilter(_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(max(root.level, logging.WARNING))
    for name in {name for name, _ in RETRIED}:
        retrying = logging.getLogger(name)
        if not any(isinstance(f, RetriableAsWarning) for f in retrying.filters):
            retrying.addFilter(RetriableAsWarning())
    logging.getLogger("kubernetes").setLevel(max(root.level, logging.WARNING))
