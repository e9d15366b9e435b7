"""Who may read the HTTP server: basic auth (bcrypt), a bearer token, open probes.

The HTTP server calls `AuthGuard.check(request)` before routing every request; None lets
it through, a Reply is sent as it is (401 with `WWW-Authenticate`, or 429 when the bcrypt
budget is spent). Two kinds of credentials, as Prometheus's `http_sd_configs` send them:
- `basic_auth` against the web config file's `basic_auth_users` (bcrypt hashes);
- `authorization` (`Authorization: Bearer <token>`) against `http.bearer_token_file`,
  re-read when the file changes (a failed re-read keeps the old token, logged once).
Either one passes. `/healthz` and `/readyz` are open when `http.open_probes` is set (the
default: kubelet probes carry no credentials).

bcrypt is slow on purpose (~80 ms at cost 10 here, ~1.3 s at cost 14), so it never runs
on the event loop: one thread of its own runs the checks one at a time (bcrypt releases
the GIL meanwhile), as Prometheus's exporter-toolkit runs them under one mutex
(`web/handler.go`), and probes, scrapes and Kafka heartbeats go on while a check runs.
Its cost is bounded three times:
- a verified (user, hash, password) is cached (a keyed BLAKE2b digest of the three, so a
  wrong password never matches a good entry, and the cache holds no password); only
  successes are cached, so the cache (`CACHE_ENTRIES`, least recently used out) fills only
  with credentials that work, and Prometheus, resending the same ones, costs one bcrypt;
- bcrypt calls share a time budget (`CpuBudget`): `BCRYPT_SHARE` of the loop's time, with
  bursts of `BCRYPT_BURST_S`. A flood of wrong passwords spends it and then gets 429 with
  `Retry-After` without a bcrypt; cached good credentials still pass meanwhile;
- at most `BCRYPT_QUEUE` checks run or wait for the thread; one more gets the same 429
  (memory and waiting time stay bounded whatever the flood).
exporter-toolkit caches wrong passwords too (100 entries, random eviction); here only
successes are, so a flood of guesses never evicts Prometheus's entry.
An unknown user is checked against a real hash anyway (and always fails), so timing does
not tell which users exist. Tokens are compared in constant time (digests of both).

Refusals are counted by reason (`sdstream_http_auth_refusals_total`) and logged at most
once per `LOG_EVERY_S`, never with a user name, password or token.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import hashlib
import hmac
import logging
import math
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import bcrypt
from prometheus_client import CollectorRegistry, Counter

from sdstream.http import TEXT, Reply, Request

logger = logging.getLogger(__name__)

PROBES: Final = frozenset({"/healthz", "/readyz"})
CACHE_ENTRIES: Final = 1024
BCRYPT_SHARE: Final = 0.1  # seconds of bcrypt per second, on average
BCRYPT_BURST_S: Final = 0.25  # seconds of bcrypt back to back: the longest stall, about
BCRYPT_QUEUE: Final = 8  # bcrypt checks running or waiting for the bcrypt thread
LOG_EVERY_S: Final = 10.0
_BCRYPT_MAX: Final = 72  # bcrypt reads 72 bytes of a password (Go's and htpasswd's too)

Clock = Callable[[], float]


class Outcome(enum.Enum):
    OK = "ok"
    MALFORMED = "malformed"
    WRONG_BASIC = "bad_password"
    WRONG_BEARER = "bad_token"
    THROTTLED = "throttled"


@dataclass
class CpuBudget:
    """A token bucket of seconds: `allow` while any is left, `spend` what a call took (it
    may go below zero: one call is never cut short, the next ones wait longer)."""

    rate: float  # seconds added per second
    burst: float  # seconds held at most
    now: float
    tokens: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.now) * self.rate)
        self.now = max(self.now, now)

    def allow(self, now: float) -> bool:
        self._refill(now)
        return self.tokens > 0

    def spend(self, seconds: float, now: float) -> None:
        self._refill(now)
        self.tokens -= seconds

    def retry_after(self) -> int:
        """Whole seconds until `allow` is true again (at least 1)."""
        return max(1, math.ceil(-self.tokens / self.rate))


class BasicAuth:
    """`basic_auth_users` (name -> bcrypt hash) with the cache and budget above."""

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        clock: Clock = time.monotonic,
        spent: Counter | None = None,
        cache_entries: int = CACHE_ENTRIES,
        budget: CpuBudget | None = None,
        queue: int = BCRYPT_QUEUE,
    ) -> None:
        if not users:
            raise ValueError("no users")
        self._users = {name.encode(): hashed.encode() for name, hashed in users.items()}
        # An unknown user costs what the dearest known one does, so timing tells no names.
        self._decoy = max(self._users.values(), key=_bcrypt_cost)
        self._key = secrets.token_bytes(32)  # cache keys mean nothing outside this process
        self._good: OrderedDict[bytes, None] = OrderedDict()
        self._entries = cache_entries
        self._clock = clock
        self._spent = spent
        self.budget = budget or CpuBudget(BCRYPT_SHARE, BCRYPT_BURST_S, now=clock())
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bcrypt")
        # Released by the bcrypt thread when a check ends (not when its request gives up).
        self._slots = threading.BoundedSemaphore(queue)
        self.running = 0  # checks submitted and not yet answered (tests wait on it)

    async def verify(self, encoded: str) -> Outcome:
        """The outcome of a `Basic` credentials field (base64 of `user:password`)."""
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return Outcome.MALFORMED
        user, colon, password = decoded.partition(b":")
        if not colon:
            return Outcome.MALFORMED
        hashed = self._users.get(user)
        known = hashed is not None
        hashed = hashed if hashed is not None else self._decoy
        key = hashlib.blake2b(b"\0".join((user, hashed, password)), key=self._key).digest()
        if key in self._good:
            self._good.move_to_end(key)
            return Outcome.OK
        if not self.budget.allow(self._clock()) or not self._slots.acquire(blocking=False):
            return Outcome.THROTTLED
        if not (await self._bcrypt(password, hashed) and known):
            return Outcome.WRONG_BASIC
        self._good[key] = None
        if len(self._good) > self._entries:
            self._good.popitem(last=False)
        return Outcome.OK

    async def _bcrypt(self, password: bytes, hashed: bytes) -> bool:
        """bcrypt in its thread (a slot is held); its time is charged to the budget."""
        self.running += 1
        try:
            future = self._pool.submit(self._check, password[:_BCRYPT_MAX], hashed)
            matched, took = await asyncio.wrap_future(future)
        finally:
            self.running -= 1
        ended = self._clock()
        self.budget.spend(took, ended)
        if self._spent is not None:
            self._spent.inc(max(0.0, took))
        return matched

    def _check(self, password: bytes, hashed: bytes) -> tuple[bool, float]:
        """In the bcrypt thread: the verdict and how long it took; frees the slot."""
        try:
            started = self._clock()
            matched = bcrypt.checkpw(password, hashed)
            return matched, self._clock() - started
        finally:
            self._slots.release()


def _bcrypt_cost(hashed: bytes) -> int:
    """The cost field of a `$2b$12$...` hash (the model checked its shape)."""
    return int(hashed[4:6])


Signature = tuple[int, int, int, int]


def _signature(path: Path) -> Signature:
    stat = os.stat(path)
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_dev)


class TokenFileError(Exception):
    """The bearer token file cannot be read at start, or is empty (message names it)."""


def read_token(path: Path) -> bytes:
    """The token in `path`, surrounding whitespace dropped (Prometheus's credentials_file
    is trimmed the same way). TokenFileError naming the file, never its content."""
    if path.is_dir():
        raise TokenFileError(f"{path} is a directory")
    try:
        token = path.read_bytes().strip()
    except OSError as exc:
        raise TokenFileError(f"{path}: {exc.strerror or exc}") from exc
    if not token:
        raise TokenFileError(f"{path} is empty")
    return token


_NO_TOKEN = bytes(32)  # compared against when no token is valid, so timing is the same


class BearerToken:
    """The token of `path`, re-read when the file changes (checked by one stat per request;
    Kubernetes replaces a mounted secret by a new file, so its inode changes)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._digest: bytes | None = hashlib.sha256(read_token(path)).digest()
        self._signature: Signature | None = _signature(path)

    def verify(self, given: str) -> Outcome:
        self._refresh()
        # aiohttp decodes header bytes with surrogateescape: encode them back the same way.
        digest = hashlib.sha256(given.strip().encode("utf-8", "surrogateescape")).digest()
        expected = self._digest if self._digest is not None else _NO_TOKEN
        matched = hmac.compare_digest(digest, expected) and self._digest is not None
        return Outcome.OK if matched else Outcome.WRONG_BEARER

    def _refresh(self) -> None:
        try:
            signature: Signature | None = _signature(self._path)
        except OSError:
            signature = None
        if signature == self._signature:
            return
        self._signature = signature  # a failure is logged once per change of the file
        try:
            self._digest = hashlib.sha256(read_token(self._path)).digest()
        except TokenFileError as exc:
            # Emptying or deleting the file is how an operator revokes the token.
            self._digest = None
            logger.warning("Refusing every bearer token until the file is readable: %s.", exc,
                           extra={"path": str(self._path)})  # fmt: skip
        else:
            logger.info("Read a new bearer token from %s.", self._path,
                        extra={"path": str(self._path)})  # fmt: skip


@dataclass(frozen=True)
class GuardMetrics:
    refusals: Counter  # reason
    bcrypt_seconds: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> GuardMetrics:
        refusals = Counter(
            "sdstream_http_auth_refusals_total",
            "Requests refused for want of valid credentials, by reason.",
            ["reason"],
            registry=registry,
        )
        for outcome in Outcome:
            if outcome is not Outcome.OK:
                refusals.labels(outcome.value)
        refusals.labels("no_credentials")
        return cls(
            refusals=refusals,
            bcrypt_seconds=Counter(
                "sdstream_http_auth_bcrypt_seconds",
                "Time spent checking passwords with bcrypt (bounded by a budget).",
                registry=registry,
            ),
        )


class AuthGuard:
    """The server's `guard`: None lets a request through, a Reply refuses it."""

    def __init__(
        self,
        *,
        basic: BasicAuth | None,
        bearer: BearerToken | None,
        metrics: GuardMetrics,
        open_probes: bool = True,
    ) -> None:
        if basic is None and bearer is None:
            raise ValueError("a guard needs basic auth users or a bearer token")
        self._basic = basic
        self._bearer = bearer
        self._metrics = metrics
        self._open_probes = open_probes
        challenge = "Basic" if basic is not None else "Bearer"
        self._challenge = {"WWW-Authenticate": challenge, "Content-Type": TEXT}
        self._pending = 0
        self._logged = float("-inf")

    async def trusted(self, request: Request) -> bool:
        header = request.headers.get("authorization")
        return header is not None and await self._outcome(header) is Outcome.OK

    async def check(self, request: Request) -> Reply | None:
        if self._open_probes and request.path in PROBES:
            return None
        outcome = await self._outcome(request.headers.get("authorization"))
        if outcome is Outcome.OK:
            return None
        return self._refuse(outcome.value if outcome else "no_credentials", request.path)

    async def _outcome(self, header: str | None) -> Outcome | None:
        if header is None:
            return None
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() == "basic" and self._basic is not None:
            return await self._basic.verify(credentials)
        if scheme.lower() == "bearer" and self._bearer is not None:
            return self._bearer.verify(credentials)
        return Outcome.MALFORMED

    def _refuse(self, reason: str, path: str) -> Reply:
        self._metrics.refusals.labels(reason).inc()
        self._log(reason, path)
        if reason == Outcome.THROTTLED.value and self._basic is not None:
            after = {"Retry-After": str(self._basic.budget.retry_after()), "Content-Type": TEXT}
            return Reply(429, b"too many password checks; retry later\n", after)
        return Reply(401, b"unauthorized\n", self._challenge)

    def _log(self, reason: str, path: str) -> None:
        self._pending += 1
        now = time.monotonic()
        if now - self._logged < LOG_EVERY_S:
            return
        logger.warning(
            "Refused %d requests without valid credentials (the last: %s, for %s).",
            self._pending, reason, path[:200], extra={"reason": reason, "path": path[:200]},
        )  # fmt: skip
        self._pending, self._logged = 0, now
