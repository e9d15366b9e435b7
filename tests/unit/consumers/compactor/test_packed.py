"""The fold holds its groups packed: each the record it writes, deflated, and the same
group again when read."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consumers.compactor import folds, packed
from consumers.compactor.jobs import compile_jobs
from schemas import targets
from schemas.sd_config import ScrapeJob
from schemas.targets import TargetGroup
from schemas.topics import ObjectKey, Resource, TargetKey

names = st.text("abcdefgh_", min_size=1, max_size=8)
values = st.text(min_size=0, max_size=12)
label_sets = st.dictionaries(names, values, max_size=4)
groups = st.builds(
    TargetGroup,
    job=names, cluster=names, source=names, labels=label_sets,
    targets=st.lists(label_sets.map(lambda labels: {**labels, "__address__": "a:1"}), max_size=5),
)  # fmt: skip


@given(groups)
def test_a_packed_group_is_its_record_and_decodes_to_the_same_group(group: TargetGroup) -> None:
    held = packed.Packed.of(group)
    assert held.value() == targets.encode(group)
    assert held.group() == group
    assert (held.job, held.cluster, held.count) == (group.job, group.cluster, len(group.targets))


@given(groups)
def test_packing_from_the_fields_is_packing_the_model(group: TargetGroup) -> None:
    fields = (group.job, group.cluster, group.source, group.labels, group.targets)
    assert targets.encode_fields(*fields) == targets.encode(group)
    assert packed.Packed.build(*fields) == packed.Packed.of(group)


@given(groups, groups)
def test_packed_groups_are_equal_exactly_when_their_groups_are(
    one: TargetGroup, other: TargetGroup
) -> None:
    assert (packed.Packed.of(one) == packed.Packed.of(other)) == (one == other)
    same = one.model_copy(update={"labels": dict(reversed(one.labels.items()))})
    assert packed.Packed.of(same) == packed.Packed.of(one)  # the record is canonical


def pod(name: str) -> dict[str, object]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                     "resourceVersion": "1", "labels": {"app": "web", "tier": "front"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "app:1", "ports": [
            {"containerPort": p, "protocol": "TCP"} for p in (8080, 8081, 9090)]}]},
        "status": {"podIP": "10.0.0.1", "phase": "Running"},
    }  # fmt: skip


def test_the_fold_holds_each_group_packed_smaller_than_its_record() -> None:
    job = ScrapeJob.model_validate({"job_name": "pods", "kubernetes_sd_configs": [{"role": "pod"}]})
    fold = folds.Fold(compile_jobs([job]))
    for i in range(20):
        fold.apply("c1", Resource.PODS, ObjectKey(f"ns/p{i}"), pod(f"p{i}"))
    changes, errors = fold.rebuild()

    assert not errors
    assert len(changes) == 20
    key = TargetKey("pods/c1/pod/ns/p3")
    held = fold.groups.held(key)
    assert isinstance(held, packed.Packed)
    record = targets.encode(fold.groups[key])
    assert held.value() == record
    assert len(held.packed) * 3 < len(record)  # deflated: labels repeat per target
    assert fold.discovered.held(key) is held  # no rules: one object for both
    change = next(c for c in changes if c.key == key)
    assert change.value() == record
