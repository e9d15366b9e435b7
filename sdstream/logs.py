"""Log setup: human-readable lines by default, one JSON object per line with --log-json.

Context passed in `extra=` is kept as fields in JSON output.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

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


class RetriableAsWarning(logging.Filter):
    """aiokafka logs a failed group-coordinator lookup at ERROR even when it retries, as it
    does on every first start against a fresh broker (no __consumer_offsets topic yet).
    Such a line says nothing is wrong yet, so it is logged as a warning; errors it does
    not retry stay errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno == logging.ERROR
            and record.msg == "Group Coordinator Request failed: %s"
            and isinstance(record.args, tuple)
            and record.args
            and getattr(record.args[0], "retriable", False) is True
        ):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


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
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    if not any(isinstance(f, RetriableAsWarning) for f in coordinator.filters):
        coordinator.addFilter(RetriableAsWarning())
    logging.getLogger("kubernetes").setLevel(max(root.level, logging.WARNING))
