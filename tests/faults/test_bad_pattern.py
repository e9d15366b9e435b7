"""A `cluster_pattern` that is no regular expression used to hang the consumer at /readyz
503 (aiokafka's subscribe raised, then a client's stop never returned). It is refused at
load, one line and exit status 2; and whatever fails inside the fold's or the sinks
reader's run, stopping its Kafka clients is bounded and cannot turn the failure into a
silent cancellation, so a start-up failure ends the run with its own error."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError
from prometheus_client import CollectorRegistry

from consumers.compactor import fold_metrics, folds, kafka_loop
from consumers.sinks import sink_metrics
from consumers.sinks.kafka_targets import TargetsReader, TargetsReadFailed
from consumers.sinks.views import TargetView
from lifecycle import stopping
from schemas.config import KafkaSettings
from schemas.topics import targets_topic
from tests.integration.test_sinks import WEB_0, targets, upsert
from tests.naming import unique

BAD = "prod-("


async def test_a_bad_cluster_pattern_exits_2_naming_the_field(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    config = tmp_path / "consumer.yml"
    config.write_text(f'cluster_pattern: "{BAD}"\n')
    sdstream = Path(sys.executable).parent / "sdstream"
    proc = await asyncio.create_subprocess_exec(
        sdstream, "consume", "--config", str(config), "--bootstrap", kafka_bootstrap,
        "--http-port", "0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2, lines
    assert len(lines) == 1, lines
    assert "cluster_pattern" in lines[0]
    assert "Traceback" not in lines[0]


async def test_a_failure_inside_run_stops_the_fold_within_a_bound(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The pattern bypasses validation here, so subscribing fails after every Kafka
    client started: run() must raise, not hang in a client's stop."""
    loop = kafka_loop.FoldLoop(
        kafka=KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix),
        fold=folds.Fold([]), metrics=fold_metrics.create(CollectorRegistry()),
        group_id=unique("g"), cluster_pattern=BAD, targets_topic=targets_topic(topic_prefix),
    )  # fmt: skip
    async with asyncio.timeout(3 * stopping.STOP_TIMEOUT_S + 30):
        with pytest.raises(kafka_loop.FoldFailed, match="cluster_pattern"):
            await loop.run()


def refuse_assign(*_: object) -> None:
    raise IllegalStateError("assign refused")


async def test_a_failure_right_after_start_ends_the_sinks_reader_with_that_error(
    kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader's consumer has no group: stopped right after start, aiokafka's stop()
    raises CancelledError, which used to replace the error, so the process's task group
    took the reader for cancelled. The real consumer fails where a refused assign would."""
    await targets(kafka_bootstrap, topic_prefix, [upsert(WEB_0)])
    monkeypatch.setattr(AIOKafkaConsumer, "assign", refuse_assign)
    reader = TargetsReader(
        KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix),
        view=TargetView(), metrics=sink_metrics.create(CollectorRegistry()), retry_s=0.2,
    )  # fmt: skip
    async with asyncio.timeout(stopping.STOP_TIMEOUT_S + 30):
        with pytest.raises(TargetsReadFailed, match="assign refused"):
            await reader.run()
