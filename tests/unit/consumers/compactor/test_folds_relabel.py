"""The fold relabels a job's groups before they are published (docs/relabeling.md §5):
dropped targets never leave it, an all-dropped group is a tombstone, __meta_* labels go
unless the job keeps them, and a job without rules is untouched."""

from __future__ import annotations

from typing import Any

from consumers.compactor import folds
from consumers.compactor.jobs import compile_jobs
from schemas.sd_config import ScrapeJob
from schemas.topics import ObjectKey, Resource
from tests.unit.consumers.compactor.test_folds import pod

KEEP_SCRAPED: list[dict[str, Any]] = [
    {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
     "regex": "true", "action": "keep"},
    {"source_labels": ["__meta_kubernetes_pod_container_port_number"], "regex": "8080",
     "action": "keep"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    {"source_labels": ["cluster"], "target_label": "k8s"},
]  # fmt: skip


def job(name: str, **extra: Any) -> ScrapeJob:
    return ScrapeJob.model_validate(
        {"job_name": name, "kubernetes_sd_configs": [{"role": "pod"}], **extra}
    )


def annotated(name: str, scrape: str, version: int) -> dict[str, Any]:
    obj = pod("ns", name, ip="10.0.0.1", node="n0", version=version)
    obj["metadata"]["annotations"] = {"prometheus.io/scrape": scrape}
    obj["spec"]["containers"][0]["ports"].append({"containerPort": 9090, "protocol": "TCP"})
    return obj


def test_relabeled_jobs_publish_final_targets_and_tombstones() -> None:
    views = compile_jobs([
        job("plain"),
        job("final", relabel_configs=KEEP_SCRAPED),
        job("debug", relabel_configs=KEEP_SCRAPED, keep_meta_labels=True),
    ])  # fmt: skip
    f = folds.Fold(views)
    f.apply("c1", Resource.PODS, ObjectKey("ns/web"), annotated("web", "true", 1))
    changes, errors = f.rebuild()
    assert errors == []
    groups = {c.key.split("/")[0]: c.group for c in changes}
    plain = groups["plain"]
    assert plain is not None
    assert len(plain.targets) == 2
    assert "__meta_kubernetes_pod_name" in plain.labels
    final = groups["final"]
    assert final is not None
    assert final.labels == {"pod": "web", "cluster": "c1", "k8s": "c1"}
    assert final.targets == [{"__address__": "10.0.0.1:8080"}]
    debug = groups["debug"]
    assert debug is not None
    assert debug.labels["__meta_kubernetes_pod_name"] == "web"

    f.apply("c1", Resource.PODS, ObjectKey("ns/web"), annotated("web", "false", 2))
    changes, _ = f.rebuild()
    after = {c.key.split("/")[0]: c.group for c in changes}
    assert after["final"] is None  # every target dropped: tombstones
    assert after["debug"] is None
    assert after["plain"] is not None  # the annotation changed
    assert f.totals["final"] == (0, 0)


def test_targets_relabeled_away_are_counted_per_job() -> None:
    f = folds.Fold(compile_jobs([job("final", relabel_configs=KEEP_SCRAPED)]))
    f.apply("c1", Resource.PODS, ObjectKey("ns/a"), annotated("a", "true", 1))
    f.apply("c1", Resource.PODS, ObjectKey("ns/b"), annotated("b", "false", 1))
    f.rebuild()
    assert f.left_out.totals["final"] == (3, 0)  # b's two ports, a's 9090
    f.apply("c1", Resource.PODS, ObjectKey("ns/b"), None)
    f.rebuild()
    assert f.left_out.totals["final"] == (1, 0)
    bad = annotated("c", "true", 1)
    f2 = folds.Fold(compile_jobs([job("x", relabel_configs=[{"target_label": "__address__",
                                                            "replacement": ""}])]))  # fmt: skip
    f2.apply("c1", Resource.PODS, ObjectKey("ns/c"), bad)
    f2.rebuild()
    assert f2.left_out.totals["x"] == (0, 2)


def held_dropped(f: folds.Fold, job_name: str) -> int:
    """Targets held as discovered for the page that the job's rules leave out."""
    return sum(
        1
        for key, group in f.discovered.items()
        if key.startswith(f"{job_name}/")
        for target in group.targets
        if target["__address__"].endswith(":9090")
        or group.labels["__meta_kubernetes_pod_annotation_prometheus_io_scrape"] != "true"
    )


def test_keep_dropped_targets_caps_what_the_page_holds_and_counts_the_rest() -> None:
    # Prometheus's scrape pool keeps the first keep_dropped_targets dropped targets for its
    # Service Discovery page and counts them all (scrape.go Sync, droppedTargetCounts).
    f = folds.Fold(compile_jobs([
        job("capped", relabel_configs=KEEP_SCRAPED, keep_dropped_targets=3),
        job("all", relabel_configs=KEEP_SCRAPED),
    ]))  # fmt: skip
    f.apply("c1", Resource.PODS, ObjectKey("ns/a"), annotated("a", "true", 1))  # 1 dropped
    f.apply("c1", Resource.PODS, ObjectKey("ns/b"), annotated("b", "false", 1))  # 2
    f.apply("c1", Resource.PODS, ObjectKey("ns/c"), annotated("c", "false", 1))  # 2
    f.rebuild()
    assert held_dropped(f, "capped") == 3  # a's and b's; c's are only counted
    assert held_dropped(f, "all") == 5
    assert f.not_kept() == {"capped": 2}
    assert f.left_out.totals["capped"] == (5, 0)  # every dropped target is counted
    assert not any(key.startswith("capped/c1/pod/ns/c") for key in f.discovered)
    # A served target is always held, the limit reached or not.
    f.apply("c1", Resource.PODS, ObjectKey("ns/d"), annotated("d", "true", 1))
    f.rebuild()
    d = f.discovered["capped/c1/pod/ns/d"]  # type: ignore[index]
    assert [t["__address__"] for t in d.targets] == ["10.0.0.1:8080"]
    assert f.not_kept() == {"capped": 3}
    # A group that goes frees its room for the next group built.
    f.apply("c1", Resource.PODS, ObjectKey("ns/b"), None)
    f.rebuild()
    assert held_dropped(f, "capped") == 1
    f.apply("c1", Resource.PODS, ObjectKey("ns/c"), annotated("c", "false", 2))
    f.rebuild()
    assert held_dropped(f, "capped") == 3
    assert f.not_kept() == {"capped": 1}  # d's 9090
    assert f.left_out.totals["capped"] == (4, 0)
