"""Devstack failures: each names its cause and the log file to read, in one line."""

from __future__ import annotations

from pathlib import Path


class DevstackError(Exception):
    """A server could not be fetched, built or started."""

    def __init__(self, message: str, *, log: Path | None = None) -> None:
        self.log = log
        super().__init__(f"{message} (log: {log})" if log else message)
