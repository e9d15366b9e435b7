"""Relabel rules load and fail like Prometheus's (relabel.go Validate; TestRelabelValidate
L763-862): same defaults, same checks in the same order, same texts; docs/relabeling.md §2."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from schemas.relabel import RelabelConfig
from schemas.sd_config import ScrapeJob


def error(rule: dict[str, Any]) -> str:
    with pytest.raises(pydantic.ValidationError) as caught:
        RelabelConfig.model_validate(rule)
    errors = caught.value.errors()
    assert len(errors) == 1
    return str(errors[0]["msg"])


REQUIRES = "relabel configuration for {} action requires 'target_label' value"
ONLY_TWO = "{} action requires only 'source_labels' and `target_label`, and no other fields"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"action": None}, "relabel action cannot be empty"),
        ({"action": "foo"}, 'unknown relabel action "foo"'),
        ({"action": ""}, 'unknown relabel action ""'),
        ({"action": "hashmod", "target_label": "x"},
         "relabel configuration for hashmod requires non-zero modulus"),
        ({"action": "replace"}, REQUIRES.format("replace")),
        ({"action": "lowercase"}, REQUIRES.format("lowercase")),
        ({"action": "keepequal", "source_labels": ["a"]},
         "relabel configuration for keepequal action requires 'target_label' value"),
        ({"action": "uppercase", "target_label": "x", "replacement": "y"},
         "'replacement' can not be set for uppercase action"),
        ({"action": "labelmap", "replacement": ""},
         "\"\" is invalid 'replacement' for labelmap action"),
        ({"action": "keepequal", "target_label": "x", "regex": "(.*)"},
         ONLY_TWO.format("keepequal")),
        ({"action": "dropequal", "target_label": "x", "separator": ","},
         ONLY_TWO.format("dropequal")),
        ({"action": "labeldrop", "source_labels": []},
         "labeldrop action requires only 'regex', and no other fields"),
        ({"action": "labelkeep", "target_label": "x"},
         "labelkeep action requires only 'regex', and no other fields"),
        ({"source_labels": [""], "target_label": "x"}, '"" is not a valid label name'),
        ({"regex": "a{1001}", "target_label": "x"},
         "error parsing regexp: invalid repetition size: {1001}"),
        ({"regex": r"\C", "target_label": "x"},
         r"error parsing regexp: invalid escape sequence: `\C`"),
        ({"regex": "f(?=o)", "target_label": "x"},
         "error parsing regexp: invalid perl operator: (?="),
    ],
)  # fmt: skip
def test_prometheus_errors(rule: dict[str, Any], message: str) -> None:
    assert error(rule) == message


def test_defaults_and_nulls() -> None:
    rule = RelabelConfig.model_validate({"target_label": "x"})
    assert (rule.action, rule.separator, rule.regex_text, rule.replacement) == (
        "replace", ";", "(.*)", "$1")  # fmt: skip
    assert rule.default_regex
    assert rule.source_labels is None
    null = RelabelConfig.model_validate(
        {"target_label": "x", "separator": None, "regex": None, "replacement": None,
         "source_labels": None, "modulus": None}
    )  # fmt: skip
    assert (null.separator, null.regex, null.replacement, null.modulus) == ("", "", "", 0)
    assert not null.default_regex
    assert RelabelConfig.model_validate({"action": "KeepEqual", "target_label": "t"}).action == (
        "keepequal"
    )
    assert RelabelConfig.model_validate({"action": "labelkeep", "source_labels": None})
    assert RelabelConfig.model_validate({"action": "labeldrop", "separator": ";"})


def test_unknown_keys_and_null_rules_fail_with_their_path() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        ScrapeJob.model_validate({
            "job_name": "j", "kubernetes_sd_configs": [{"role": "pod"}],
            "relabel_configs": [{"target_label": "x"}, {"action": "drop", "regx": "a"}],
        })  # fmt: skip
    assert [e["loc"] for e in caught.value.errors()] == [("relabel_configs", 1, "regx")]
    with pytest.raises(pydantic.ValidationError, match="empty or null target relabeling rule"):
        ScrapeJob.model_validate(
            {"job_name": "j", "kubernetes_sd_configs": [{"role": "pod"}], "relabel_configs": [None]}
        )
    job = ScrapeJob.model_validate(
        {"job_name": "j", "kubernetes_sd_configs": [{"role": "pod"}], "relabel_configs": None}
    )
    assert job.relabel_configs == ()
    assert not job.keep_meta_labels
