"""Log lines as an operator reads them."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from aiokafka import errors

from sdstream import logs

COORDINATOR = "aiokafka.consumer.group_coordinator"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def logged(
    caplog: pytest.LogCaptureFixture, name: str, msg: str, *args: object
) -> logging.LogRecord:
    logs.setup()
    logger = logging.getLogger(name)
    logger.addHandler(caplog.handler)
    try:
        logger.error(msg, *args)
    finally:
        logger.removeHandler(caplog.handler)
    (record,) = [r for r in caplog.records if r.name == name]
    return record


def lookup_failed(caplog: pytest.LogCaptureFixture, err: Exception) -> logging.LogRecord:
    return logged(caplog, COORDINATOR, "Group Coordinator Request failed: %s", err)


def test_a_coordinator_lookup_that_is_retried_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = lookup_failed(caplog, errors.GroupCoordinatorNotAvailableError())

    assert record.levelname == "WARNING"


def test_a_coordinator_lookup_that_is_not_retried_stays_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = lookup_failed(caplog, errors.GroupAuthorizationFailedError())

    assert record.levelname == "ERROR"


def test_an_offset_lookup_on_a_partition_without_a_leader_yet_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = logged(caplog, "aiokafka.consumer.fetcher", "Failed fetch offsets from %s: %s", 1,
                    errors.NotLeaderForPartitionError())  # fmt: skip

    assert record.levelname == "WARNING"


def test_other_aiokafka_errors_stay_errors(caplog: pytest.LogCaptureFixture) -> None:
    record = logged(caplog, "aiokafka.consumer.fetcher", "Unexpected error: %s",
                    errors.NotLeaderForPartitionError())  # fmt: skip

    assert record.levelname == "ERROR"


def test_a_refused_connection_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    record = logged(caplog, "aiokafka", 'Unable connect to "%s:%s": %s', "127.0.0.1", 9092,
                    ConnectionRefusedError(111, "Connect call failed"))  # fmt: skip

    assert record.levelname == "WARNING"


def test_repeated_kafka_client_noise_reaches_the_log_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.setup()
    logs.started()
    refused = ConnectionRefusedError(111, "Connect call failed")
    for _ in range(50):
        logging.getLogger("aiokafka").error("Unable connect to node with id %s: %s", 1, refused)
    logging.getLogger("aiokafka.consumer.fetcher").error("Not retried: %s", "boom")

    lines = capsys.readouterr().err.splitlines()

    assert len([line for line in lines if "Unable connect to node" in line]) == 1
    assert any("Not retried: boom" in line for line in lines)
