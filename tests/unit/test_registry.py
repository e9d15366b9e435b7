"""Every consumer of the resource registry covers every row, and the role rows hold together.

A new row that one consumer misses fails here: the producer (path, trim, selectors), the
fold (partitioned or global topic set), render and test lookups (kind), the join seam, the
selector engine, the ClusterRole in deploy/kubernetes, and the roles that read it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumers import render
from consumers.compactor import dependencies, fold, jobs, kafka_loop, records
from consumers.monitors import jobs as monitor_jobs
from consumers.roles import lookup as lookups
from consumers.roles import table
from consumers.selectors import field_matches
from producers import trim
from producers.kubeapi import api
from schemas import config, discovery_roles, resources, selectors
from schemas.discovery_roles import Role
from schemas.resources import FoldRead, Resource, Row
from schemas.sd_config import ScrapeJob
from schemas.topics import object_key, object_topic

CHART_PRODUCER = (
    Path(__file__).parents[2] / "deploy" / "helm" / "sdstream" / "templates" / "producer.yaml"
)
CLUSTER_ROLE = (
    Path(__file__).parents[2] / "deploy" / "kubernetes" / "base" / "producer" / "clusterrole.yaml"
)


def _object(row: Row) -> dict[str, Any]:
    namespace = None if row.resource.cluster_scoped else "ns"
    return {"kind": row.kind, "metadata": {"name": "x", "namespace": namespace}}


def _cluster_role_grants() -> set[tuple[str, str, tuple[str, ...]]]:
    doc = yaml.safe_load(CLUSTER_ROLE.read_text())
    return {
        (group, resource, tuple(rule["verbs"]))
        for rule in doc["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }


def _view_reading(resource: Resource) -> jobs.JobView:
    """A job view of a role that reads `resource`, with every attach option on."""
    role = min(discovery_roles.readers(resource))
    attach = dict.fromkeys(discovery_roles.ATTACH_FLAGS, True)
    job = {"job_name": "j", "kubernetes_sd_configs": [{"role": role, "attach_metadata": attach}]}
    (view,) = jobs.compile_job(ScrapeJob.model_validate(job))
    return view


@pytest.mark.parametrize("row", resources.ROWS.values(), ids=lambda row: row.resource.value)
def test_every_consumer_covers_the_row(row: Row) -> None:
    r, obj = row.resource, _object(row)
    key = object_key(obj["metadata"]["namespace"], "x")
    # The producer: where to list it, what to keep, whether its selectors apply.
    assert api.PATHS[r] == row.api
    assert trim.SPECS[r] is row.trim
    assert trim.trim(r, obj, drop_annotations=trim.DropAnnotations())["metadata"] == obj["metadata"]
    assert (r in config.UNFILTERED) is not row.filtered
    # The fold reads its topics exactly one way, and its topic pattern matches them.
    sets = {FoldRead.PARTITIONED: kafka_loop.NAMESPACED, FoldRead.GLOBAL: kafka_loop.GLOBAL}
    assert [fold_read for fold_read, read in sets.items() if r in read] == [row.fold]
    pattern = records.topic_pattern("sd", ".*", sets[row.fold])
    assert re.match(pattern, object_topic("sd", "c1", r))
    # Render and test lookups know its kind; every lookup serves it by one `get`.
    loaded = render.load([obj])
    assert loaded.ignored == 0
    assert loaded.objects.get(r, key) == obj
    assert lookups.MemoryLookup.from_kinds([obj]).get(r, key) is obj
    # Field selectors: the server's field set, or none at all.
    if row.fields is None:
        with pytest.raises(selectors.SelectorError, match="no field selectors"):
            selectors.parse_field_selector("metadata.name=x", kind=r)
    else:
        assert field_matches(selectors.parse_field_selector("metadata.name=x", kind=r), obj)
    # RBAC: the producer may do exactly what it needs.
    assert (row.api_group, r.value, row.verbs) in _cluster_role_grants()
    if r in resources.MONITORS:
        # No role reads a monitor: monitors make jobs (consumers/monitors), so they are
        # read whole by every fold member, and the producer never filters them.
        assert row.fold is FoldRead.GLOBAL
        assert not row.filtered
        assert row.optional
        assert r in monitor_jobs.KINDS.values()
        return
    view = _view_reading(r)
    visible = fold.VisibleLookup(loaded.objects, view, "ns")
    recording = dependencies.RecordingLookup(visible)
    assert recording.get(r, key) == obj
    assert recording.deps == {(r, key)}
    # Some role reads it, so the fold needs it.
    assert discovery_roles.readers(r)


def test_the_cluster_role_is_the_registry_s() -> None:
    doc = yaml.safe_load(CLUSTER_ROLE.read_text())
    expected = resources.rbac_rules()
    assert doc["rules"] == expected, "rules should be:\n" + yaml.safe_dump(
        {"rules": expected}, default_flow_style=None, sort_keys=False
    )


def test_the_chart_s_cluster_role_is_the_registry_s() -> None:
    """The Helm chart's copy, read from its template (tests/integration/test_chart.py
    checks the rendered one too)."""
    text = CHART_PRODUCER.read_text()
    block = text.split("kind: ClusterRole\n", 1)[1].split("\n---", 1)[0]
    rules = yaml.safe_load(block[block.index("rules:") :])["rules"]
    expected = resources.rbac_rules()
    assert rules == expected, "rules should be:\n" + yaml.safe_dump(
        {"rules": expected}, default_flow_style=None, sort_keys=False
    )


def test_every_role_has_its_code_and_builds_from_a_row() -> None:
    assert set(table.ROLES) == set(discovery_roles.ROLES)
    for role, spec in discovery_roles.ROLES.items():
        assert table.ROLES[role].role is role
        assert {spec.resource, *spec.watches(discovery_roles.ATTACH_FLAGS)} <= set(resources.ROWS)
        assert set(spec.selector_roles) <= set(discovery_roles.ROLES)


def test_rows_are_keyed_by_their_resource_and_cover_the_enum() -> None:
    assert list(resources.ROWS) == list(Resource)
    assert all(r is row.resource for r, row in resources.ROWS.items())
    assert len(render.KINDS) == len(resources.ROWS)  # no two rows share a kind


_POD_LABELS = {Role.POD, Role.ENDPOINTS, Role.ENDPOINTSLICE}  # roles that build pod labels


@pytest.mark.parametrize(
    ("resource", "roles"),
    [
        (Resource.PODS, _POD_LABELS),
        (Resource.SERVICES, {Role.SERVICE, Role.ENDPOINTS, Role.ENDPOINTSLICE}),
        (Resource.ENDPOINTS, {Role.ENDPOINTS}),
        (Resource.ENDPOINTSLICES, {Role.ENDPOINTSLICE}),
        (Resource.INGRESSES, {Role.INGRESS}),
        (Resource.NODES, {Role.NODE, *_POD_LABELS}),
        (Resource.NAMESPACES, set(Role) - {Role.NODE}),
        (Resource.REPLICASETS, _POD_LABELS),
        (Resource.JOBS, _POD_LABELS),
    ],
)
def test_which_roles_read_each_resource(resource: Resource, roles: set[Role]) -> None:
    """The registry's "read by" column, derived from the role rows (all options on)."""
    assert discovery_roles.readers(resource) == roles
