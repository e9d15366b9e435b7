"""The guard: basic auth against real bcrypt hashes, bearer tokens from a file, open probes,
a bounded cache that never takes a wrong password for a good one, and a bcrypt budget."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import bcrypt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from sdstream import guard
from sdstream.http import Request

PASSWORD = "s3cret-pässword"
TOKEN = "tok-0123456789abcdef"
T = TypeVar("T")
HASHED = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()


def run(call: Coroutine[Any, Any, T]) -> T:
    """The guard's checks are coroutines (bcrypt runs in a thread of its own)."""
    return asyncio.run(call)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def get(path: str = "/metrics", authorization: str | None = None) -> Request:
    headers = {} if authorization is None else {"authorization": authorization}
    return Request("GET", path, {}, headers)


@dataclass
class FakeClock:
    """Advances `tick` seconds each time it is read: a bcrypt call then "takes" about two
    ticks (it reads the clock before and after)."""

    now: float = 1000.0
    tick: float = 0.0

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def refusals(registry: CollectorRegistry, reason: str) -> float:
    value = registry.get_sample_value("sdstream_http_auth_refusals_total", {"reason": reason})
    return value or 0.0


def make(
    tmp_path: Path | None = None,
    *,
    users: bool = True,
    token: bool = False,
    open_probes: bool = True,
    clock: guard.Clock | None = None,
) -> tuple[guard.AuthGuard, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = guard.GuardMetrics.create(registry)
    auth = None
    if users:
        users = {"prometheus": HASHED, "other": HASHED}
        auth = guard.BasicAuth(users, spent=metrics.bcrypt_seconds, clock=clock or time.monotonic)
    bearer = None
    if token:
        assert tmp_path is not None
        (tmp_path / "token").write_text(TOKEN + "\n")
        bearer = guard.BearerToken(tmp_path / "token")
    return guard.AuthGuard(
        basic=auth, bearer=bearer, metrics=metrics, open_probes=open_probes
    ), registry


def test_good_basic_credentials_pass() -> None:
    checker, _ = make()
    assert run(checker.check(get(authorization=basic("prometheus", PASSWORD)))) is None


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "no_credentials"),
        (basic("prometheus", "wrong"), "bad_password"),
        (basic("nobody", PASSWORD), "bad_password"),
        (basic("prometheus", PASSWORD + "x"), "bad_password"),
        ("Basic !!!notbase64", "malformed"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "malformed"),
        ("Bearer " + TOKEN, "malformed"),  # no bearer token configured
        ("Digest x", "malformed"),
    ],
)
def test_anything_else_is_401_with_a_basic_challenge(
    authorization: str | None, reason: str
) -> None:
    checker, registry = make()
    reply = run(checker.check(get(authorization=authorization)))
    assert reply is not None
    assert (reply.status, reply.headers["WWW-Authenticate"]) == (401, "Basic")
    assert refusals(registry, reason) == 1


def test_probes_are_open_by_default_and_closed_on_request() -> None:
    open_, _ = make()
    closed, registry = make(open_probes=False)
    for path in ("/healthz", "/readyz"):
        assert run(open_.check(get(path))) is None
        refused = run(closed.check(get(path)))
        assert refused is not None
        assert refused.status == 401
        assert run(closed.check(get(path, basic("prometheus", PASSWORD)))) is None
    assert refusals(registry, "no_credentials") == 2
    for near in ("/metrics", "/healthz/", "/readyz/x", "//healthz", "/HEALTHZ"):
        assert run(open_.check(get(near))) is not None


def test_a_bearer_token_passes_and_a_wrong_one_does_not(tmp_path: Path) -> None:
    checker, registry = make(tmp_path, users=False, token=True)
    assert run(checker.check(get(authorization=f"Bearer {TOKEN}"))) is None
    assert run(checker.check(get(authorization=f"bearer  {TOKEN} "))) is None
    wrong = run(checker.check(get(authorization=f"Bearer {TOKEN[:-1]}")))
    assert wrong is not None
    assert (wrong.status, wrong.headers["WWW-Authenticate"]) == (401, "Bearer")
    assert run(checker.check(get(authorization=basic("prometheus", PASSWORD)))) is not None
    assert (refusals(registry, "bad_token"), refusals(registry, "malformed")) == (1, 1)


def test_with_both_either_passes(tmp_path: Path) -> None:
    checker, _ = make(tmp_path, token=True)
    assert run(checker.check(get(authorization=f"Bearer {TOKEN}"))) is None
    assert run(checker.check(get(authorization=basic("prometheus", PASSWORD)))) is None


def test_the_token_file_is_reread_when_it_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checker, _ = make(tmp_path, users=False, token=True)
    path = tmp_path / "token"
    replacement = tmp_path / "token.new"
    replacement.write_text("rotated\n")
    replacement.replace(path)  # how a Kubernetes secret mount changes: a new file

    assert run(checker.check(get(authorization="Bearer rotated"))) is None
    assert run(checker.check(get(authorization=f"Bearer {TOKEN}"))) is not None

    path.unlink()  # deleting the file revokes the token, with one warning
    with caplog.at_level(logging.WARNING, logger="sdstream.guard"):
        assert run(checker.check(get(authorization="Bearer rotated"))) is not None
        assert run(checker.check(get(authorization="Bearer rotated"))) is not None
    path.write_text("\n")  # empty: revoked too
    with caplog.at_level(logging.WARNING, logger="sdstream.guard"):
        assert run(checker.check(get(authorization="Bearer rotated"))) is not None
        assert run(checker.check(get(authorization="Bearer "))) is not None
    refused = [r for r in caplog.records if "Refusing every bearer token" in r.getMessage()]
    assert len(refused) == 2
    assert "rotated" not in caplog.text
    path.write_text("again\n")  # a token again: accepted again
    assert run(checker.check(get(authorization="Bearer again"))) is None


def test_a_token_that_is_not_utf8_is_refused_not_an_error(tmp_path: Path) -> None:
    """aiohttp hands over header bytes it cannot decode as surrogates."""
    checker, _ = make(tmp_path, users=False, token=True)
    refusal = run(checker.check(get(authorization="Bearer \udcff\udcfe")))
    assert refusal is not None
    assert refusal.status == 401


def test_an_unknown_user_costs_what_the_dearest_known_user_costs() -> None:
    cheap = bcrypt.hashpw(b"a", bcrypt.gensalt(4)).decode()
    dear = bcrypt.hashpw(b"b", bcrypt.gensalt(6)).decode()
    auth = guard.BasicAuth({"cheap": cheap, "dear": dear})
    checked: list[bytes] = []
    real = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed)
        return real(password, hashed)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(guard.bcrypt, "checkpw", spy)
        assert run(auth.verify(basic("nobody", "x")[6:])) is guard.Outcome.WRONG_BASIC
    assert checked == [dear.encode()]


def test_a_missing_or_empty_token_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(guard.TokenFileError, match="nope"):
        guard.BearerToken(tmp_path / "nope")
    (tmp_path / "empty").write_text(" \n")
    with pytest.raises(guard.TokenFileError, match="is empty"):
        guard.BearerToken(tmp_path / "empty")
    with pytest.raises(guard.TokenFileError, match="directory"):
        guard.BearerToken(tmp_path)


def test_good_credentials_are_checked_by_bcrypt_once() -> None:
    registry = CollectorRegistry()
    metrics = guard.GuardMetrics.create(registry)
    auth = guard.BasicAuth({"prometheus": HASHED}, spent=metrics.bcrypt_seconds)
    assert run(auth.verify(basic("prometheus", PASSWORD)[6:])) is guard.Outcome.OK
    spent = registry.get_sample_value("sdstream_http_auth_bcrypt_seconds_total")
    for _ in range(20):
        assert run(auth.verify(basic("prometheus", PASSWORD)[6:])) is guard.Outcome.OK
    assert registry.get_sample_value("sdstream_http_auth_bcrypt_seconds_total") == spent


def test_wrong_passwords_are_checked_every_time_never_cached() -> None:
    clock = FakeClock(tick=0.001)
    auth = guard.BasicAuth({"prometheus": HASHED}, clock=clock)
    run(auth.verify(basic("prometheus", PASSWORD)[6:]))  # a good entry in the cache
    before = auth.budget.tokens
    for _ in range(3):
        assert run(auth.verify(basic("prometheus", "wrong")[6:])) is guard.Outcome.WRONG_BASIC
    assert auth.budget.tokens < before  # each wrong one paid for its bcrypt


def test_the_cache_is_bounded() -> None:
    users = {f"u{i}": HASHED for i in range(5)}
    auth = guard.BasicAuth(users, cache_entries=2)
    for name in users:
        assert run(auth.verify(basic(name, PASSWORD)[6:])) is guard.Outcome.OK
    assert len(auth._good) == 2


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=0, max_size=90))
def test_only_the_password_passes(password: str) -> None:
    """Whatever came before (the good password cached), another password never passes,
    and one that differs only past bcrypt's 72 bytes is the same password, as for Go."""
    auth = _CACHED
    outcome = run(auth.verify(basic("prometheus", password)[6:]))
    same = password.encode()[:72] == PASSWORD.encode()[:72]
    assert (outcome is guard.Outcome.OK) == same


_CACHED = guard.BasicAuth(
    {"prometheus": HASHED}, budget=guard.CpuBudget(rate=1e9, burst=1e9, now=0.0)
)
assert run(_CACHED.verify(basic("prometheus", PASSWORD)[6:])) is guard.Outcome.OK


def test_a_flood_of_wrong_passwords_is_throttled_and_good_ones_still_pass() -> None:
    clock = FakeClock(tick=0.1)  # each bcrypt "takes" 0.1 s
    checker, registry = make(clock=clock)
    assert run(checker.check(get(authorization=basic("prometheus", PASSWORD)))) is None  # cached
    started, spent_before = clock.now, bcrypt_seconds(registry)
    answers = [
        run(checker.check(get(authorization=basic("prometheus", f"guess{i}")))) for i in range(40)
    ]
    statuses = [a.status for a in answers if a is not None]
    spent = bcrypt_seconds(registry) - spent_before
    assert spent <= guard.BCRYPT_BURST_S + guard.BCRYPT_SHARE * (clock.now - started) + 0.1
    assert statuses[-1] == 429
    assert refusals(registry, "throttled") == statuses.count(429) > 20
    throttled = answers[-1]
    assert throttled is not None
    assert int(throttled.headers["Retry-After"]) >= 1
    assert "WWW-Authenticate" not in throttled.headers  # not a verdict on the password
    assert run(checker.check(get(authorization=basic("prometheus", PASSWORD)))) is None
    clock.now += 60  # the budget refills
    late = run(checker.check(get(authorization=basic("prometheus", "late guess"))))
    assert late is not None
    assert late.status == 401


def bcrypt_seconds(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("sdstream_http_auth_bcrypt_seconds_total") or 0.0


@given(
    st.lists(
        st.tuples(st.floats(0, 5), st.floats(0, 2)),  # (seconds passing, cost of a call)
        max_size=60,
    )
)
def test_the_budget_bounds_what_calls_spend(calls: list[tuple[float, float]]) -> None:
    """Over any run, the calls let through cost at most the burst, plus the rate times
    the time passed, plus one call (a call is never cut short)."""
    budget = guard.CpuBudget(rate=0.1, burst=0.5, now=0.0)
    now = spent = 0.0
    largest = 0.0
    for passing, cost in calls:
        now += passing
        if budget.allow(now):
            budget.spend(cost, now)
            spent += cost
            largest = max(largest, cost)
    assert spent <= 0.5 + 0.1 * now + largest + 1e-9


def test_refusals_never_log_or_answer_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checker, _ = make(tmp_path, token=True)
    with caplog.at_level(logging.DEBUG):
        replies = [
            run(checker.check(get(authorization=basic("prometheus", "hunter2-wrong")))),
            run(checker.check(get(authorization="Bearer tok-wrong-1234"))),
        ]
    for reply in replies:
        assert reply is not None
        shown = reply.body + repr(reply.headers).encode()
        assert b"hunter2" not in shown
        assert b"tok-wrong" not in shown
    assert "hunter2" not in caplog.text
    assert "tok-wrong" not in caplog.text
    assert PASSWORD not in caplog.text
    assert "Refused 1 requests" in caplog.text  # one line, not one per request


def test_a_guard_needs_something_to_check() -> None:
    with pytest.raises(ValueError, match="needs"):
        guard.AuthGuard(
            basic=None, bearer=None, metrics=guard.GuardMetrics.create(CollectorRegistry())
        )


_FUZZED, _ = make(users=True)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.builds(lambda s, b: f"{s} {b}", st.sampled_from(["Basic", "basic", "Bearer", "X"]),
                  st.text(max_size=120)),
        st.builds(lambda raw: "Basic " + base64.b64encode(raw).decode(), st.binary(max_size=120)),
    ),
    st.sampled_from(["/metrics", "/http_sd/web", "/", "/healthz", "/readyz"]),
)  # fmt: skip
def test_any_authorization_header_is_answered_never_raised(header: str, path: str) -> None:
    """Hostile headers get 401 (or 429 once the budget is spent), never an exception, and
    never pass, except on an open probe."""
    reply = run(_FUZZED.check(get(path, header)))
    if path in guard.PROBES:
        assert reply is None
    else:
        assert reply is not None
        assert reply.status in (401, 429)
