"""The Kafka loop's rebuild gives the event loop turns (heartbeats, fetches, HTTP) while a
long rebuild runs, and returns exactly the fold's one-go result."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from consumers.compactor import folds, kafka_loop
from consumers.compactor.jobs import compile_job
from schemas.sd_config import ScrapeJob
from schemas.topics import ObjectKey, Resource

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
