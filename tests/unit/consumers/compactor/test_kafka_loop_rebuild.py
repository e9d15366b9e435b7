"""The Kafka loop's rebuild gives the event loop turns (heartbeats, fetches, HTTP) while a
long rebuild runs, and returns exactly the fold's one-go result."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from consumers.compactor import fold_metrics, folds, kafka_loop
from consumers.compactor.jobs import compile_job
from schemas.config import KafkaSettings
from schemas.sd_config import ScrapeJob
from schemas.topics import ObjectKey, Resource, TargetKey, target_key

JOB = {"job_name": "pods", "kubernetes_sd_configs": [{"role": "pod"}]}


def loaded(count: int) -> folds.Fold:
    fold = folds.Fold(compile_job(ScrapeJob.model_validate(JOB)))
    for i in range(count):
        body = {"metadata": {"name": f"p{i}", "namespace": "ns", "uid": f"p{i}"},
                "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
                "status": {"podIP": f"10.0.{i // 250}.{i % 250}"}}  # fmt: skip
        fold.load("c1", Resource.PODS, ObjectKey(f"ns/p{i}"), body)
    fold.mark_all()
    return fold


async def test_a_rebuild_lets_other_tasks_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_loop, "REBUILD_SLICE_S", 0.0)  # a turn after every step
    fold, expected = loaded(1000), loaded(1000)
    turns = 0

    async def heartbeat() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    beating = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)
    turns = 0
    loop = SimpleNamespace(fold=fold)  # `_rebuilt` reads only the fold
    changes, errors = await kafka_loop.FoldLoop._rebuilt(loop)  # type: ignore[arg-type]
    beating.cancel()
    assert turns >= 1000 // folds.STEP_OWNERS - 1
    want, _ = expected.rebuild()
    assert errors == []
    assert sorted(c.key for c in changes) == sorted(c.key for c in want)
    assert fold.groups == expected.groups


async def test_a_rebalance_during_a_full_sync_tombstones_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The full sync yields while it builds and reads the targets topic; a partition gained
    meanwhile has not been read, so its published groups must not be tombstoned as if
    its objects were gone: this sync writes nothing, and the next one judges them."""
    loop = kafka_loop.FoldLoop(
        kafka=KafkaSettings(bootstrap="127.0.0.1:9", topic_prefix="p"), fold=loaded(3),
        metrics=fold_metrics.create(CollectorRegistry()), group_id="g",
        targets_topic="p.targets",
    )  # fmt: skip
    loop.owners.counts["c1"], loop.owners.assigned["c1"] = 1, {0}  # owns every partition
    gained = target_key("pods", "c1", "pod/other/q0")  # published by the partition's last owner

    async def digests(*_: object) -> dict[TargetKey, bytes]:
        loop._state.reassigned(lost=(), gained={})  # the rebalance, while the topic is read
        return {gained: b"digest"}

    monkeypatch.setattr(kafka_loop.kafka_targets_topic, "read_digests", digests)
    writes = list(await loop._full_sync())
    assert writes == []
    assert loop._state.need_sync  # the sync now due judges the gained partition

    loop._state.need_sync = False  # no rebalance this time: the stale group is tombstoned
    monkeypatch.setattr(kafka_loop.kafka_targets_topic, "read_digests",
                        lambda *_: asyncio.sleep(0, {gained: b"digest"}))  # fmt: skip
    writes = list(await loop._full_sync())
    assert (gained, None) in writes
    assert len(writes) == 4
