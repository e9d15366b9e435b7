"""Kafka client noise: one line per family per episode, a summary when it ends, start-up
noise at DEBUG. Pure: times are given, nothing is logged."""

from __future__ import annotations

import logging

from aiokafka import errors

from sdstream import log_noise

FETCH = ("aiokafka.consumer.fetcher", "Failed fetch messages from %s: %s", "NodeNotReadyError")
CONNECT = ("aiokafka", "Unable connect to node with id %s: %s", "ConnectionRefusedError")
METADATA = ("aiokafka", "Unable to update metadata from %s", "Unable to update metadata from")


def running(now: float = 0.0) -> log_noise.NoiseGate:
    gate = log_noise.NoiseGate(now=now, quiet_s=5, repeat_s=60, startup_s=60)
    assert gate.started(now) == []
    return gate


def test_an_outage_keeps_the_first_line_of_each_family_and_drops_repeats() -> None:
    gate = running()
    verdicts = [gate.noise(key, 10 + i * 0.01)[0] for i, key in
                enumerate([CONNECT, METADATA, FETCH] * 300)]  # fmt: skip

    assert verdicts[:3] == ["keep"] * 3
    assert set(verdicts[3:]) == {"drop"}


def test_an_outage_ends_in_one_summary_once_quiet() -> None:
    gate = running()
    for i in range(100):
        gate.noise(FETCH, 10 + i * 0.08)  # ~8 s of noise
    assert gate.tick(19.0) == []  # 1.08 s quiet: not yet

    (summary,) = gate.tick(23.0)

    assert summary.level == logging.INFO
    text = summary.message % summary.args
    assert text.startswith("Kafka client errors stopped after 7.9 s (99 repeated")
    assert "NodeNotReadyError x99" in text
    assert gate.tick(30.0) == []


def test_the_summary_also_comes_before_the_next_episodes_first_line() -> None:
    gate = running()
    gate.noise(CONNECT, 10)
    gate.noise(CONNECT, 11)

    verdict, summaries = gate.noise(CONNECT, 100)

    assert verdict == "keep"
    assert [s.message % s.args for s in summaries] == [
        "Kafka client errors stopped after 1.0 s (1 repeated messages suppressed: "
        "ConnectionRefusedError x1)."
    ]


def test_a_single_line_needs_no_summary() -> None:
    gate = running()
    gate.noise(CONNECT, 10)
    assert gate.tick(100) == []


def test_a_long_outage_is_reminded_once_per_repeat_interval() -> None:
    gate = running()
    reminders = []
    for i in range(1500):  # 150 s of noise, one line per 0.1 s
        now = 10 + i * 0.1
        reminders += [s for s in gate.noise(CONNECT, now)[1] + gate.tick(now)]

    assert [r.level for r in reminders] == [logging.WARNING, logging.WARNING]
    assert (reminders[0].message % reminders[0].args).startswith(
        "Kafka client errors go on for 60 s"
    )


def test_start_up_noise_is_debug_and_summed_up_once_ready() -> None:
    gate = log_noise.NoiseGate(now=0, quiet_s=5, repeat_s=60, startup_s=60)
    verdicts = {gate.noise(key, 1 + i * 0.1)[0] for i, key in enumerate([CONNECT, FETCH] * 20)}

    (summary,) = gate.started(5.0)

    assert verdicts == {"debug"}
    assert summary.level == logging.INFO
    assert (summary.message % summary.args).startswith(
        "Kafka start-up: 40 retried client messages logged at DEBUG over 3.9 s"
    )
    assert gate.noise(CONNECT, 6.0)[0] == "keep"  # after ready: an outage


def test_start_up_that_takes_too_long_becomes_an_outage() -> None:
    gate = log_noise.NoiseGate(now=0, quiet_s=5, repeat_s=600, startup_s=60)
    early = {gate.noise(CONNECT, t)[0] for t in range(59)}

    assert early == {"debug"}
    assert gate.noise(CONNECT, 60)[0] == "keep"
    assert gate.noise(CONNECT, 61)[0] == "drop"


def test_families_are_retried_aiokafka_lines_only() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed")
    assert log_noise.family("aiokafka", CONNECT[1], (1, refused)) == CONNECT
    assert log_noise.family(FETCH[0], FETCH[1], (1, errors.NodeNotReadyError("1")))[2] == (
        "NodeNotReadyError"
    )
    no_leader = ("t", errors.LeaderNotAvailableError)
    topic_error = "Error fetching metadata for topic %s: %s"
    assert log_noise.family("aiokafka.cluster", topic_error, no_leader) == (
        "aiokafka.cluster",
        topic_error,
        "LeaderNotAvailableError",
    )
    assert log_noise.family("aiokafka", METADATA[1], ([1],)) == METADATA
    not_retried = errors.TopicAuthorizationFailedError()
    assert log_noise.family("aiokafka.cluster", "Denied %s", (not_retried,)) is None
    assert log_noise.family("sdstream.consume", CONNECT[1], (1, refused)) is None


def test_a_coordinator_marked_dead_is_retried_noise() -> None:
    """aiokafka marks the group coordinator dead on any failed request and finds it again;
    a slow broker at start-up did it once before the process was ready."""
    template = "Marking the coordinator dead (node %s)for group %s."
    name = "aiokafka.consumer.group_coordinator"
    assert log_noise.family(name, template, (1, "g")) is not None
