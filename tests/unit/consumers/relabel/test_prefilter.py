"""engine.prefilter / drops: the leading rules run on a partial label set never drop a
target the full rules keep, for any rules and any target agreeing on covered names."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from consumers.relabel import engine
from schemas.relabel import RelabelConfig

COVERED = ("c1", "job")
OTHER = ("u1",)
NAMES = COVERED + OTHER
VALUES = st.sampled_from(("", "a", "b"))


def rules_of(*configs: dict[str, Any]) -> engine.Rules:
    return engine.compile_rules(RelabelConfig.model_validate(c) for c in configs)


def covered(name: str) -> bool:
    return name in COVERED


@st.composite
def rule_configs(draw: st.DrawFn) -> dict[str, Any]:
    action = draw(st.sampled_from(("keep", "replace", "labelmap", "drop", "labeldrop",
                                   "keepequal", "lowercase", "hashmod")))  # fmt: skip
    sources = [draw(st.sampled_from(NAMES))]
    regex = draw(st.sampled_from(("a", "(.*)", "a|b")))
    target = draw(st.sampled_from(NAMES))
    if action in ("labeldrop",):
        return {"action": action, "regex": regex}
    if action == "labelmap":
        return {"action": action, "regex": "u(.)", "replacement": "c$1"}
    config: dict[str, Any] = {"action": action, "source_labels": sources, "regex": regex}
    if action in ("replace", "keepequal", "lowercase", "hashmod"):
        config["target_label"] = target
    if action in ("hashmod", "keepequal", "lowercase"):
        config.pop("regex")
    if action == "hashmod":
        config["modulus"] = 2
    return config


@settings(max_examples=500)
@example(  # a write from an uncovered label, then a keep on what it wrote
    configs=[
        {"source_labels": ["u1"], "target_label": "c1"},
        {"action": "keep", "source_labels": ["c1"], "regex": "a"},
    ],
    shared={"c1": "b"},
    full_rest={"u1": "a"},
    partial_rest={},
    defaults={},
)
@example(  # labelmap can write any covered name
    configs=[
        {"action": "labelmap", "regex": "u(.)", "replacement": "c$1"},
        {"action": "keep", "source_labels": ["c1"], "regex": "a"},
    ],
    shared={"c1": "b"},
    full_rest={"u1": "a"},
    partial_rest={},
    defaults={},
)
@given(
    configs=st.lists(rule_configs(), max_size=4),
    shared=st.dictionaries(st.sampled_from(COVERED), VALUES),
    full_rest=st.dictionaries(st.sampled_from(OTHER), VALUES),
    partial_rest=st.dictionaries(st.sampled_from(OTHER), VALUES),
    defaults=st.dictionaries(st.sampled_from(("job", "c1")), VALUES),
)
def test_a_prefiltered_drop_is_a_full_drop(
    configs: list[dict[str, Any]], shared: dict[str, str], full_rest: dict[str, str],
    partial_rest: dict[str, str], defaults: dict[str, str],
) -> None:  # fmt: skip
    rules = rules_of(*configs)
    program = engine.prefilter(rules, covered)
    if program is not None and engine.drops({**shared, **partial_rest}, program, defaults=defaults):
        full = {**shared, **full_rest, "__address__": "h:1"}
        assert engine.process(full, rules, defaults=defaults).final is None


def test_the_operators_pod_rules_prefilter_on_phase_and_selector() -> None:
    rules = rules_of(
        {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
        {"action": "drop", "source_labels": ["c1"], "regex": "(Failed|Succeeded)"},
        {"action": "keep", "source_labels": ["c1", "job"], "regex": "(x);true"},
        {"action": "keep", "source_labels": ["u1"], "regex": "metrics"},
        {"source_labels": ["c1"], "target_label": "u1"},
    )
    program = engine.prefilter(rules, covered)
    assert program is not None
    assert [r.action for r in program.rules] == ["drop", "keep"]
    assert engine.drops({"c1": "Failed"}, program)


def test_writes_before_a_filter_are_run_when_it_reads_them() -> None:
    rules = rules_of(
        {"source_labels": ["c1"], "target_label": "job", "regex": "(a)", "replacement": "x"},
        {"action": "keep", "source_labels": ["job"], "regex": "x"},
    )
    program = engine.prefilter(rules, covered)
    assert program is not None
    assert len(program.rules) == 2
    assert not engine.drops({"c1": "a"}, program)
    assert engine.drops({"c1": "b"}, program)


def test_a_label_written_from_unknown_sources_is_no_longer_covered() -> None:
    rules = rules_of(
        {"source_labels": ["u1"], "target_label": "c1"},
        {"action": "keep", "source_labels": ["c1"], "regex": "a"},
    )
    assert engine.prefilter(rules, covered) is None


def test_labelmap_ends_the_prefilter() -> None:
    rules = rules_of(
        {"action": "labelmap", "regex": "u(.)", "replacement": "c$1"},
        {"action": "keep", "source_labels": ["c1"], "regex": "a"},
    )
    assert engine.prefilter(rules, covered) is None


def test_only_the_leading_filters_pre_filter() -> None:
    """A filter reading a name the partial set lacks (a port) ends the walk: a monitor's
    own rules after it are not pre-filtered, so what they drop is built and shown
    dropped on the discovery page, with the rule that dropped it."""
    rules = engine.compile_rules([
        RelabelConfig(action="keep", source_labels=["app"], regex="web"),
        RelabelConfig(action="keep", source_labels=["port"], regex="metrics"),
        RelabelConfig(action="drop", source_labels=["tier"], regex="batch"),
    ])  # fmt: skip
    program = engine.prefilter(rules, lambda name: name in {"app", "tier"})
    assert program is not None
    assert [tuple(r.config.source_labels) for r in program.rules] == [("app",)]
