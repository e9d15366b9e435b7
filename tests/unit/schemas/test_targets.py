"""The target-group record: the hand-written encoder must stay the model's JSON form."""

from __future__ import annotations

import orjson

from schemas import targets


def test_encode_is_the_models_json_and_decodes_back() -> None:
    group = targets.TargetGroup(
        job="pods", cluster="c1", source="pod/ns/p",
        labels={"__meta_kubernetes_namespace": "ns", "cluster": "c1"},
        targets=[{"__address__": "10.0.0.1:80"}, {"__address__": "[fd00::1]:80"}],
    )  # fmt: skip

    encoded = targets.encode(group)

    assert orjson.loads(encoded) == group.model_dump(mode="json")
    assert targets.decode(encoded) == group
