"""`Fold.rebuilding`: a rebuild in steps the Kafka loop can yield between. Objects folded
between steps are never lost, and the result is the one-go rebuild's."""

from __future__ import annotations

from typing import Any

from consumers.compactor import folds
from consumers.compactor.jobs import compile_job
from schemas.sd_config import ScrapeJob
from schemas.topics import ObjectKey, Resource

JOB = {"job_name": "pods", "kubernetes_sd_configs": [{"role": "pod"}]}
VIEWS = compile_job(ScrapeJob.model_validate(JOB))


def pod(name: str, ip: str, version: str = "1") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": name, "resourceVersion": version},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
        "status": {"podIP": ip, "phase": "Running"},
    }


def loaded(count: int, *, ip: str = "10.0.0.") -> folds.Fold:
    fold = folds.Fold(VIEWS)
    for i in range(count):
        address = f"{ip}{i}" if ip else ""
        fold.load("c1", Resource.PODS, ObjectKey(f"ns/p{i}"), pod(f"p{i}", address))
    fold.mark_all()
    return fold


def finish(steps: Any) -> tuple[list[folds.Change], list[folds.BuildError]]:
    try:
        while True:
            next(steps)
    except StopIteration as done:
        result: tuple[list[folds.Change], list[folds.BuildError]] = done.value
        return result


def test_steps_give_the_one_go_result() -> None:
    one, stepped = loaded(10), loaded(10)
    steps = stepped.rebuilding(step=3)
    taken = 0
    for _ in steps:
        taken += 1
        if taken == 2:
            break
    assert taken == 2  # it stopped between steps
    changes, errors = finish(steps)
    expected, _ = one.rebuild()
    assert errors == []
    assert sorted(c.key for c in changes) == sorted(c.key for c in expected)
    assert stepped.groups == one.groups


def test_objects_folded_between_steps_are_rebuilt_next_time() -> None:
    """A catch-up's first build (no groups yet: pods without IPs, so `load` would not
    mark): an object the walk has passed changes, and one is added, between two steps."""
    fold = loaded(4, ip="")
    steps = fold.rebuilding(step=1)
    next(steps)
    next(steps)  # p0 and p1 are built
    fold.load("c1", Resource.PODS, ObjectKey("ns/p0"), pod("p0", "10.9.9.9", "2"))
    fold.load("c1", Resource.PODS, ObjectKey("ns/p9"), pod("p9", "10.0.0.9"))
    finish(steps)
    assert fold.marked() == {(0, "c1", ObjectKey("ns/p0")), (0, "c1", ObjectKey("ns/p9"))}
    changes, _ = fold.rebuild()
    assert {c.key.rsplit("/", 1)[-1] for c in changes} == {"p0", "p9"}
    addresses = {t["__address__"] for g in fold.groups.values() for t in g.targets}
    assert "10.9.9.9:80" in addresses
    assert "10.0.0.9:80" in addresses
