"""The relabeling engine against Prometheus's own vectors (model/relabel/relabel_test.go at
v3.14, TestRelabel, and the extra vectors run against Prometheus in the reference),
action by action; docs/relabeling.md §4."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.relabel import engine
from schemas.relabel import RelabelConfig

Labels = dict[str, str]


def run(labels: Labels, *rules: dict[str, Any]) -> Labels | None:
    """Prometheus's relabel.Process: the final labels, or None when dropped."""
    compiled = engine.compile_rules(RelabelConfig.model_validate(r) for r in rules)
    final, dropped_by = engine.relabel(labels, compiled)
    return None if dropped_by is not None else final


ABC = {"a": "foo", "b": "bar", "c": "baz"}

# (input, rules, expected) from relabel_test.go TestRelabel, line ranges as in the reference
PROMETHEUS_CASES: list[tuple[Labels, list[dict[str, Any]], Labels | None]] = [
    ({"a": "foo", "b": "bar", "c": "baz"},  # L36-58
     [{"source_labels": ["a"], "regex": "f(.*)", "target_label": "d",
       "separator": ";", "replacement": "ch${1}-ch${1}", "action": "replace"}],
     {"a": "foo", "b": "bar", "c": "baz", "d": "choo-choo"}),
    ({"a": "foo", "b": "bar", "c": "baz"},  # L59-89
     [{"source_labels": ["a", "b"], "regex": "f(.*);(.*)r", "target_label": "a",
       "replacement": "b${1}${2}m"},
      {"source_labels": ["c", "a"], "regex": "(b).*b(.*)ba(.*)", "target_label": "d",
       "replacement": "$1$2$2$3"}],
     {"a": "boobam", "b": "bar", "c": "baz", "d": "boooom"}),
    ({"a": "foo"},  # L90-123
     [{"source_labels": ["a"], "regex": ".*o.*", "action": "drop"},
      {"source_labels": ["a"], "regex": "f(.*)", "target_label": "d", "replacement": "ch$1-ch$1"}],
     None),
    ({"a": "foo", "b": "bar"},  # L124-142
     [{"source_labels": ["a"], "regex": ".*o.*", "action": "drop"}], None),
    ({"a": "abc"},
     [{"source_labels": ["a"], "regex": ".*(b).*", "target_label": "d", "replacement": "$1"}],
     {"a": "abc", "d": "b"}),
    ({"a": "foo"},  # L143-172
     [{"source_labels": ["a"], "regex": "no-match", "action": "drop"}], {"a": "foo"}),
    ({"a": "foo"}, [{"source_labels": ["a"], "regex": "f|o", "action": "drop"}], {"a": "foo"}),
    ({"a": "foo"},  # L173-200
     [{"source_labels": ["a"], "regex": "no-match", "action": "keep"}], None),
    ({"a": "foo"}, [{"source_labels": ["a"], "regex": "f.*", "action": "keep"}], {"a": "foo"}),
    ({"a": "boo"},  # L201-218
     [{"source_labels": ["a"], "regex": "f", "target_label": "b", "replacement": "bar"}],
     {"a": "boo"}),
    ({"a": "foo", "b": "bar", "c": "baz"},  # L219-237
     [{"source_labels": ["c"], "regex": "(b).*", "target_label": "f", "replacement": "$2"}],
     {"a": "foo", "b": "bar", "c": "baz"}),
    ({"a": "foo", "b": "bar", "c": "baz"},  # L238-259
     [{"source_labels": ["c"], "target_label": "d", "action": "hashmod", "modulus": 1000}],
     {"a": "foo", "b": "bar", "c": "baz", "d": "976"}),
    ({"a": "foo\nbar"},  # L260-277
     [{"source_labels": ["a"], "target_label": "b", "action": "hashmod", "modulus": 1000}],
     {"a": "foo\nbar", "b": "734"}),
    ({"a": "foo", "b1": "bar", "b2": "baz"},  # L278-301
     [{"regex": "(b.*)", "replacement": "bar_${1}", "action": "labelmap"}],
     {"a": "foo", "b1": "bar", "b2": "baz", "bar_b1": "bar", "bar_b2": "baz"}),
    ({"__meta_my_bar": "aaa", "__meta_my_baz": "bbb", "__meta_other": "ccc"},  # L302-321
     [{"regex": "__meta_(my.*)", "replacement": "${1}", "action": "labelmap"}],
     {"__meta_my_bar": "aaa", "__meta_my_baz": "bbb", "__meta_other": "ccc",
      "my_bar": "aaa", "my_baz": "bbb"}),
    ({"a": "some-name-value"},  # L322-387
     [{"source_labels": ["a"], "regex": "some-([^-]+)-([^,]+)", "target_label": "${1}",
       "replacement": "${2}"}],
     {"a": "some-name-value", "name": "value"}),
    ({"a": "some-name-value"},
     [{"source_labels": ["a"], "regex": "some-([^-]+)-([^,]+)", "target_label": "${1}",
       "replacement": "${3}"}],
     {"a": "some-name-value"}),
    ({"a": "some-name-value"},
     [{"source_labels": ["a"], "regex": "some-([^-]+)-([^,]+)", "target_label": "${3}",
       "replacement": "${1}"}],
     {"a": "some-name-value"}),
    ({"__meta_sd_tags": "path:/secret,job:some-job,label:foo=bar"},  # L388-421
     [{"source_labels": ["__meta_sd_tags"], "regex": "(?:.+,|^)path:(/[^,]+).*",
       "target_label": "__metrics_path__", "replacement": "${1}"},
      {"source_labels": ["__meta_sd_tags"], "regex": "(?:.+,|^)job:([^,]+).*",
       "target_label": "job", "replacement": "${1}"},
      {"source_labels": ["__meta_sd_tags"], "regex": "(?:.+,|^)label:([^=]+)=([^,]+).*",
       "target_label": "${1}", "replacement": "${2}"}],
     {"__meta_sd_tags": "path:/secret,job:some-job,label:foo=bar",
      "__metrics_path__": "/secret", "job": "some-job", "foo": "bar"}),
    ({"a": "foo", "b": "bar", "c": "baz"},  # L422-449, issue 12283
     [{"regex": "a", "action": "labeldrop"},
      {"source_labels": ["b"], "target_label": "port_name", "replacement": "metrics"},
      {"source_labels": ["port_name"], "regex": "metrics", "action": "keep"}],
     {"b": "bar", "c": "baz", "port_name": "metrics"}),
    ({"a": "foo", "b1": "bar", "b2": "baz"},  # L450-482
     [{"regex": "(b.*)", "action": "labelkeep"}], {"b1": "bar", "b2": "baz"}),
    ({"a": "foo", "b1": "bar", "b2": "baz"},
     [{"regex": "(b.*)", "action": "labeldrop"}], {"a": "foo"}),
    ({"foo": "bAr123Foo"},  # L483-504
     [{"source_labels": ["foo"], "action": "uppercase", "target_label": "foo_uppercase"},
      {"source_labels": ["foo"], "action": "lowercase", "target_label": "foo_lowercase"}],
     {"foo": "bAr123Foo", "foo_lowercase": "bar123foo", "foo_uppercase": "BAR123FOO"}),
    ({"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},  # L505-572
     [{"source_labels": ["__tmp_port"], "action": "keepequal", "target_label": "__port1"}],
     {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"}),
    ({"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
     [{"source_labels": ["__tmp_port"], "action": "dropequal", "target_label": "__port1"}],
     None),
    ({"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
     [{"source_labels": ["__tmp_port"], "action": "dropequal", "target_label": "__port2"}],
     {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"}),
    ({"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
     [{"source_labels": ["__tmp_port"], "action": "keepequal", "target_label": "__port2"}],
     None),
    ({"a": "line1\nline2"},  # L573-595
     [{"source_labels": ["a"], "regex": "line1.*line2", "target_label": "d",
       "replacement": "match${1}"}],
     {"a": "line1\nline2", "d": "match"}),
    ({"foo": "bar", "utf-8.label": "value"},  # L596-696 (UTF-8 names)
     [{"source_labels": ["utf-8.label"], "regex": "(.*)", "target_label": "utf-8.label${1}",
       "replacement": "x"}],
     {"foo": "bar", "utf-8.label": "value", "utf-8.labelvalue": "x"}),
    ({"foo": "bar"},
     [{"source_labels": ["foo"], "regex": "(?<second>.*)", "target_label": "$second",
       "replacement": "[${second}]"}],
     {"foo": "bar", "bar": "[bar]"}),
    ({"a": "foo"},  # L697-732
     [{"source_labels": ["a"], "target_label": "__type__", "replacement": "counter_$1"}],
     {"a": "foo", "__type__": "counter_foo"}),
]  # fmt: skip


@pytest.mark.parametrize(("labels", "rules", "expected"), PROMETHEUS_CASES)
def test_prometheus_relabel_vectors(
    labels: Labels, rules: list[dict[str, Any]], expected: Labels | None
) -> None:
    assert run(labels, *rules) == expected


AB = {"a": "foo", "b": "bar"}
T = {"source_labels": ["a"], "regex": "(f)(o+)", "target_label": "t"}


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [("$1x", None), ("${1}x", "fx"), ("<$01>", "<>"), ("$$1", "$1"), ("x$", "x$"),
     ("x$-y", "x$-y"), ("x${1y", "x${1y"), ("[$0]", "[foo]"), ("[$10]", "[]"),
     ("$1.", "f."), ("$1-", "f-"), ("$1é", None), ("${}", "${}"), ("$2$1", "oof")],
)  # fmt: skip
def test_go_template_expansion(replacement: str, expected: str | None) -> None:
    """docs/relabeling.md §3; an empty result deletes the label."""
    assert run(AB, {**T, "replacement": replacement}).get("t") == expected  # type: ignore[union-attr]


def test_named_groups_first_participating_one_wins() -> None:
    rule = {"source_labels": ["a"], "regex": "(?P<first>f)(o+)",
            "target_label": "t", "replacement": "[$first|${first}_|$first_]"}  # fmt: skip
    assert run(AB, rule) == {**AB, "t": "[f|f_|]"}
    twice = {"source_labels": ["a"], "regex": "(?P<n>x)|(?P<n>f)oo",
             "target_label": "t", "replacement": "<$n>"}  # fmt: skip
    assert run(AB, twice) == {**AB, "t": "<f>"}


def test_missing_sources_and_separators() -> None:
    assert run({"a": "x"}, {"source_labels": ["missing"], "target_label": "a"}) == {}
    assert run({"a": "x"}, {"source_labels": ["missing"], "target_label": "a",
                            "regex": "(.*)"}) == {}  # fmt: skip
    joined = {"source_labels": ["a", "missing", "b"], "separator": "|", "target_label": "t"}
    assert run(AB, joined) == {**AB, "t": "foo||bar"}
    assert run(AB, {"target_label": "a", "replacement": ""}) == {"b": "bar"}


def test_anchoring_and_re2_semantics() -> None:
    assert run(AB, {"source_labels": ["a"], "regex": "o", "action": "keep"}) is None
    assert run({"a": "foo\n"}, {"source_labels": ["a"], "regex": "foo", "action": "keep"}) is None
    assert run({"a": "\u212a"}, {"source_labels": ["a"], "regex": "(?i)k", "action": "keep"})
    # textual wrapping: `x)|(?:foo` is two branches of the wrapper
    assert run(AB, {"source_labels": ["a"], "regex": "x)|(?:foo", "action": "keep"})
    assert run({"a": "٣"}, {"source_labels": ["a"], "regex": r"\d", "action": "keep"}) is None
    assert run({"a": "x"}, {"source_labels": ["a"], "regex": "[[:alpha:]]", "action": "keep"})


def test_labelmap_labeldrop_edges() -> None:
    assert run(AB, {"action": "labelmap", "regex": "(a)", "replacement": "$2"}) == {**AB, "": "foo"}
    assert run(AB, {"action": "labelmap", "regex": "(a|b)", "replacement": "z"}) == {
        **AB, "z": "bar"}  # fmt: skip
    assert run({"a": "1", "ab": "2", "ba": "3"}, {"action": "labeldrop", "regex": "a|b.*"}) == {
        "ab": "2"}  # fmt: skip


def test_equal_actions_with_both_labels_absent() -> None:
    assert run({}, {"action": "keepequal", "source_labels": ["x"], "target_label": "y"}) == {}
    assert run({}, {"action": "dropequal", "source_labels": ["x"], "target_label": "y"}) is None


def test_hashmod_of_nothing() -> None:
    assert run({}, {"action": "hashmod", "target_label": "h", "modulus": 1000}) == {"h": "958"}


@pytest.mark.parametrize(
    ("text", "lower", "upper"),
    [("İ", "i", "İ"), ("ΣΑΣ", "\u03c3\u03b1\u03c3", "ΣΑΣ"), ("ß", "ß", "ß"), ("ﬁ", "ﬁ", "ﬁ"),
     ("ŉ", "ŉ", "ŉ"), ("ᾳ", "ᾳ", "ᾼ"), ("ǅ", "ǆ", "Ǆ"), ("\u212a", "k", "\u212a")],
)  # fmt: skip
def test_case_mapping_is_gos(text: str, lower: str, upper: str) -> None:
    assert (engine.go_lower(text), engine.go_upper(text)) == (lower, upper)


def test_process_reports_the_dropping_rule_and_target_errors() -> None:
    rules = engine.compile_rules(RelabelConfig.model_validate(r) for r in [
        {"source_labels": ["__meta_x"], "target_label": "x"},
        {"source_labels": ["x"], "regex": "drop-me", "action": "drop"},
    ])  # fmt: skip
    kept = engine.process({"__address__": "h:1", "__meta_x": "v", "__tmp": "t"}, rules)
    assert kept == engine.Outcome({"__address__": "h:1", "x": "v", "__tmp": "t"})
    meta = engine.process({"__address__": "h:1", "__meta_x": "v"}, rules, keep_meta=True)
    assert meta.final == {"__address__": "h:1", "__meta_x": "v", "x": "v"}
    assert engine.process({"__address__": "h:1", "__meta_x": "drop-me"}, rules) == engine.Outcome(
        None, dropped_by=1
    )
    assert engine.process({"__meta_x": "v"}, rules).error == "no address"
    assert engine.process({"__address__": "h/1"}, rules).error is not None
    assert engine.process({"__address__": "h:1", "e": ""}, ()).final == {"__address__": "h:1"}


def test_long_values_are_relabeled_but_not_remembered() -> None:
    """A rule reading a big annotation that differs per pod must not hold thousands of
    copies of it."""
    rule = engine.Rule(RelabelConfig.model_validate(
        {"source_labels": ["a"], "regex": "x(.*)", "target_label": "b"}
    ))  # fmt: skip
    long = "x" + "y" * (engine.MEMO_KEY_CHARS + 1)
    assert rule.memo(long, rule.match) == [long, long[1:]]
    assert rule.memo("xz", rule.match) == ["xz", "z"]
    assert list(rule._cache) == ["xz"]


DEFAULTS = {"job": "j", "__scheme__": "http", "__metrics_path__": "/metrics",
            "__scrape_interval__": "1m", "__scrape_timeout__": "10s"}  # fmt: skip


def test_scrape_defaults_go_in_where_missing_or_empty_and_discovered_labels_win() -> None:
    rules = engine.compile_rules(
        [
            RelabelConfig.model_validate(
                {"source_labels": ["job", "__scheme__"], "target_label": "k"}
            )
        ]
    )
    done = engine.process(
        {"__address__": "a:1", "__scheme__": "https", "job": ""}, rules, defaults=DEFAULTS
    )
    # `k` read both; the unchanged defaults are left to the scraper, the discovered one stays
    assert done.final == {"__address__": "a:1", "__scheme__": "https", "k": "j;https"}


@pytest.mark.parametrize(
    ("interval", "timeout", "error"),
    [("", "10s", "error parsing scrape interval"), ("0s", "10s", "scrape interval cannot be 0"),
     ("1m", "x", "error parsing scrape timeout"), ("1m", "0", "scrape timeout cannot be 0"),
     ("1m", "2m", 'scrape timeout cannot be greater than scrape interval ("2m" > "1m")')],
)  # fmt: skip
def test_broken_scrape_timing_is_refused_like_prometheus(
    interval: str, timeout: str, error: str
) -> None:
    labels = {"__address__": "a:1", "__scrape_interval__": interval, "__scrape_timeout__": timeout}
    rules = engine.compile_rules(
        [RelabelConfig.model_validate({"regex": "__address__|__scrape_.*", "action": "labelkeep"})]
    )
    done = engine.process(labels, rules, defaults={"job": "j"})
    assert done.final is None
    assert done.error is not None
    assert done.error.startswith(error)
