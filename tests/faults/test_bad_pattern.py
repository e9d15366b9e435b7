"""A `cluster_pattern` that is no regular expression used to hang the consumer at /readyz
503 (aiokafka's subscribe raised, then a client's stop never returned). It is refused at
load, one line and exit status 2; and whatever fails inside the fold's run, stopping its
Kafka clients is bounded, so a start-up failure ends the run instead of hanging it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from consumers.compactor import fold as folds
from consumers.compactor import kafka_loop
from consumers.compactor import metrics as fold_metrics
from schemas.config import KafkaSettings
from schemas.topics import targets_topic
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
    async with asyncio.timeout(3 * kafka_loop.STOP_TIMEOUT_S + 30):
        with pytest.raises(kafka_loop.FoldFailed, match="cluster_pattern"):
            await loop.run()
