"""HTTP SD fragments and entries: a fragment is the sorted entries' JSON, and splits back."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from consumers.sinks import sd_json
from schemas import targets

SORTED = orjson.OPT_SORT_KEYS


def test_http_sd_entries_put_target_labels_over_group_labels() -> None:
    group = targets.Group(
        source="pod/ns/p",  # type: ignore[arg-type]
        labels={"a": "group", "b": "group"},
        targets=[{"__address__": "h:1", "b": "target"}],
    )

    assert sd_json.http_sd_entries(group, extra={"c": "extra"}) == [
        {"targets": ["h:1"], "labels": {"a": "group", "b": "target", "c": "extra"}}
    ]


label_values = st.sampled_from(
    ["", "a", "b", "é", '"', "10.0.0.1:80", "[fd00::1]:80", '},{"labels":', '},"targets":["x"]}']
)
label_sets = st.dictionaries(st.sampled_from(["__address__", "x", "y", "ü"]), label_values)


@given(labels=label_sets, targets_=st.lists(label_sets, max_size=4))
def test_a_fragment_is_the_sorted_entries_json_without_brackets(
    labels: dict[str, str], targets_: list[dict[str, str]]
) -> None:
    group = targets.TargetGroup(job="j", cluster="c", source="s", labels=labels, targets=targets_)
    entries = sorted(
        sd_json.http_sd_entries(group),
        key=lambda e: (orjson.dumps(e["targets"]), orjson.dumps(e["labels"], option=SORTED)),
    )

    fragment = sd_json.http_sd_fragment(group)

    assert b"[" + fragment + b"]" == orjson.dumps(entries, option=SORTED)
    assert orjson.loads(b"[" + fragment + b"]") == entries


@given(labels=label_sets, targets_=st.lists(label_sets, max_size=4))
def test_a_fragment_splits_back_into_its_entries_with_their_addresses(
    labels: dict[str, str], targets_: list[dict[str, str]]
) -> None:
    """Label values that look like the separators must not cut an entry."""
    group = targets.TargetGroup(job="j", cluster="c", source="s", labels=labels, targets=targets_)
    fragment = sd_json.http_sd_fragment(group)

    entries = sd_json.fragment_entries(fragment)

    assert b",".join(entry for _, entry in entries) == fragment
    assert [address for address, _ in entries] == [
        orjson.loads(entry)["targets"][0] for _, entry in entries
    ]
    addresses = [{**labels, **t}.get("__address__", "") for t in targets_]
    assert sorted(a for a, _ in entries) == sorted(addresses)
