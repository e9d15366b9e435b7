"""Prometheus durations (`model.Duration` in prometheus/common): parsed from a scrape
config and printed back the way Prometheus prints them into `__scrape_interval__` and
`__scrape_timeout__`, so a rule reading those labels sees Prometheus's exact text.

Pure.
"""

from __future__ import annotations

import re
from typing import Final

_UNITS: Final = (  # unit, milliseconds, printed only when it divides exactly
    ("y", 365 * 24 * 3_600_000, False),
    ("w", 7 * 24 * 3_600_000, True),
    ("d", 24 * 3_600_000, False),
    ("h", 3_600_000, False),
    ("m", 60_000, False),
    ("s", 1_000, False),
    ("ms", 1, False),
)
_PATTERN: Final = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?",
    re.ASCII,
)


def parse_ms(text: str) -> int:
    """`model.ParseDuration`, in milliseconds; ValueError names the text."""
    match = _PATTERN.fullmatch(text)
    if text == "0":
        return 0
    if not text or match is None:
        raise ValueError(f'not a valid duration string: "{text}"')
    return sum(int(n) * unit[1] for n, unit in zip(match.groups(), _UNITS, strict=True) if n)


def format_ms(ms: int) -> str:
    """`model.Duration.String()`: `1m`, `1m30s`, `0s`."""
    if ms == 0:
        return "0s"
    out = []
    for unit, size, exact in _UNITS:
        if exact and ms % size:
            continue
        if count := ms // size:
            out.append(f"{count}{unit}")
            ms -= count * size
    return "".join(out)
