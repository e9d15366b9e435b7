"""Turns a Kafka client's error into what an operator needs: one clear line naming the
broker, the principal and the topic or group; a count by reason; and the reason kept for
/readyz until the client works again.

A refusal is retried by the caller with backoff (credentials, CA files and ACLs change
while we run); the same line is logged at most once per LOG_EVERY_S meanwhile.
"""

from __future__ import annotations

import logging
import math
import ssl
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter

from kafka_access import kafka_options, kafka_probe, refusals
from schemas.config import KafkaSettings

logger = logging.getLogger(__name__)

LOG_EVERY_S = 60.0


class Refusals:
    """What Kafka refuses one process's clients, by reason (`counter`), for /readyz."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        counter: Counter | None = None,
        log: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kafka = kafka
        self._counter = counter
        self._log = log  # False: the caller logs the line (and rate-limits it) itself
        self._clock = clock
        self._logged: dict[str, float] = {}
        self.problem: str | None = None  # the last refusal, until `clear()`

    @property
    def principal(self) -> str:
        kafka = self._kafka
        return refusals.principal(
            protocol=kafka.security_protocol,
            mechanism=kafka.sasl_mechanism,
            username=kafka.sasl_username,
            subject=certificate_subject(kafka.ssl_certfile),
            token_file=str(kafka.sasl_oauth_token_file),
        )

    async def check(
        self,
        exc: BaseException,
        *,
        doing: str,
        options: dict[str, Any] | None = None,
        keep: bool = True,
    ) -> str | None:
        """The refusal behind `exc` as one line (counted, logged, kept), or None when `exc`
        is no refusal. A connection error is diagnosed by connecting once more with
        `options` (the failed client's), since aiokafka drops its cause. `keep`: name it
        on /readyz until `clear()` (else the caller tracks health itself)."""
        refusal = refusals.classify(exc)
        broker = self._kafka.bootstrap
        if refusal is None and refusals.needs_probe(exc):
            found = await kafka_probe.connect_error(
                self._kafka, options or kafka_options.client_options(self._kafka)
            )
            if found is not None:
                broker, refusal = found[0], refusals.classify(found[1])
        if refusal is None:
            return None
        return self.report(refusal, doing=doing, broker=broker, keep=keep)

    def check_now(self, exc: BaseException, *, doing: str, keep: bool = True) -> str | None:
        """`check` without the diagnosing connection (for callbacks that cannot wait)."""
        refusal = refusals.classify(exc)
        return None if refusal is None else self.report(refusal, doing=doing, keep=keep)

    def report(
        self,
        refusal: refusals.Refusal,
        *,
        doing: str,
        broker: str | None = None,
        keep: bool = True,
    ) -> str:
        """Count, log (once per LOG_EVERY_S per line) and keep `refusal`; its line."""
        line = refusals.explain(
            refusal, broker=broker or self._kafka.bootstrap, principal=self.principal,
            doing=doing,
        )  # fmt: skip
        if self._counter is not None:
            self._counter.labels(refusal.reason).inc()
        if keep:
            self.problem = line
        now = self._clock()
        if self._log and now - self._logged.get(line, -math.inf) >= LOG_EVERY_S:
            self._logged[line] = now
            logger.error(
                "%s.", line,
                extra={"reason": refusal.reason, "resource": refusal.resource, "doing": doing},
            )  # fmt: skip
        return line

    def clear(self) -> None:
        """The clients work again: /readyz stops naming the refusal; log it once."""
        if self.problem is not None and self._log:
            logger.info("Kafka accepts our clients again (was: %s).", self.problem)
        self.problem = None
        self._logged.clear()


def certificate_subject(path: Any) -> str | None:
    """The subject of the client certificate at `path`, as Kafka names the principal, or
    None. The standard library decodes certificates only through `_test_decode_cert`;
    a file it cannot read was reported at load, so None then."""
    if path is None:
        return None
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:
        return None
    try:
        decoded = decode(str(path))
    except (OSError, ssl.SSLError, ValueError):
        return None
    return refusals.subject_name(decoded.get("subject", ()))
