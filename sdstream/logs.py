"""Log setup: human-readable lines by default, one JSON object per line with --log-json.

Context passed in `extra=` is kept as fields in JSON output.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final

import orjson

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


def setup(*, level: str = "INFO", json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(max(root.level, logging.WARNING))
    for name in {name for name, _ in RETRIED}:
        retrying = logging.getLogger(name)
        if not any(isinstance(f, RetriableAsWarning) for f in retrying.filters):
            retrying.addFilter(RetriableAsWarning())
    logging.getLogger("kubernetes").setLevel(max(root.level, logging.WARNING))
