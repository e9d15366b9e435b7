"""Label and field selectors against Kubernetes semantics.

Expected values come from apimachinery (pkg/labels/selector.go: Parse's grammar, its
documented example, Requirement.Matches and String; pkg/fields/selector.go: ParseSelector,
EscapeValue) and from the API server's field sets (pkg/registry/core/pod/strategy.go
ToSelectableFields, the Node and Service GetAttrs, pkg/apis/core/v1/conversion.go field
label conversions), not from this implementation's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers import selectors
from schemas.topics import Resource


def _labels_match(text: str, labels: Mapping[str, str]) -> bool:
    return selectors.label_matches(selectors.parse_label_selector(text), labels)


def _fields_match(text: str, kind: Resource, obj: dict[str, Any]) -> bool:
    return selectors.field_matches(selectors.parse_field_selector(text, kind=kind), obj)


# --- label selectors: parsing ------------------------------------------------------------

# (text, canonical form as apimachinery's String() prints it: requirements sorted by key,
# set values sorted and unique, operators kept as written).
LABEL_CANONICAL = [
    ("", ""),
    (" \t\r\n", ""),
    ("a=b", "a=b"),
    ("a = b", "a=b"),
    ("a==b", "a==b"),
    ("a!=b", "a!=b"),
    ("a", "a"),
    ("!a", "!a"),
    ("! a", "!a"),
    ("a in (y,x)", "a in (x,y)"),
    ("a in (x,x)", "a in (x)"),
    ("a notin (x)", "a notin (x)"),
    ("a in(x)", "a in (x)"),
    ("b=1,a=2", "a=2,b=1"),
    # the example of Parse's doc comment
    ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
    ("a=", "a="),
    ("a=,b", "a=,b"),
    ("a in (,a)", "a in (,a)"),
    ("a in (a,)", "a in (,a)"),
    ("a in (,)", "a in ()"),
    ("a in (a,,,)", "a in (,a)"),  # three commas close a list; two do not (see errors)
    ("in in (in)", "in in (in)"),  # keywords are operators only where one is expected
    ("notin=in", "notin=in"),
    ("example.com/app=web", "example.com/app=web"),
    ("a>5", "a>5"),
    ("a < 10", "a<10"),
    ("a=b,\tc\n!=d", "a=b,c!=d"),
    ("A_b.c-9=Z.z_1-x", "A_b.c-9=Z.z_1-x"),
]


@pytest.mark.parametrize(("text", "canonical"), LABEL_CANONICAL)
def test_label_selector_canonical_form(text: str, canonical: str) -> None:
    assert str(selectors.parse_label_selector(text)) == canonical


def test_label_selector_structure() -> None:
    parsed = selectors.parse_label_selector("z notin (), !y, x in (b,a)")
    assert parsed.requirements == (
        selectors.Requirement("x", selectors.Operator.IN, ("a", "b")),
        selectors.Requirement("y", selectors.Operator.DOES_NOT_EXIST),
        selectors.Requirement("z", selectors.Operator.NOT_IN, ("",)),
    )


# (text, position of the error, the offending part)
LABEL_ERRORS = [
    ("a=b,", 4, ""),  # identifier expected after ','
    (",a", 0, ","),
    ("a b", 2, "b"),  # an operator expected
    ("a in b", 5, "b"),  # '(' expected
    ("a notin", 7, ""),
    ("a in (b", 7, ""),
    ("a in (b c)", 8, "c"),
    ("a in (", 6, ""),
    ("a in (a,,)", 9, ")"),  # apimachinery: two commas consume, then expect a value
    ("a in (,,)", 8, ")"),
    ("a in ()x", 7, "x"),
    ("a=(b)", 2, "("),
    ("a===b", 3, "="),
    ("!a=b", 2, "="),  # `!key` takes no value
    ("!!a", 1, "!"),
    ("=a", 0, "="),
    ("a/b/c=x", 0, "a/b/c"),  # at most one '/'
    ("/a=x", 0, "/a"),  # empty prefix
    ("A.com/x=y", 0, "A.com/x"),  # the prefix is a lower-case DNS subdomain
    ("-a=b", 0, "-a"),  # the name starts alphanumeric
    ("a.=b", 0, "a."),  # ... and ends so
    ("k" * 64, 0, "k" * 64),  # the name is at most 63 characters
    ("a=-b", 2, "-b"),  # values too
    ("a=" + "v" * 64, 2, "v" * 64),
    ("a in (x,-y)", 8, "-y"),
    ("a>b", 2, "b"),  # gt/lt need an integer
    ("a>-1", 2, "-1"),  # that is also a valid label value
    ("a<99999999999999999999", 2, "99999999999999999999"),  # int64
    ("a=ü", 2, "ü"),
    ("a\0=b", 1, "\\0"),
]


@pytest.mark.parametrize(("text", "position", "part"), LABEL_ERRORS)
def test_label_selector_errors_name_part_and_position(text: str, position: int, part: str) -> None:
    with pytest.raises(selectors.SelectorError) as caught:
        selectors.parse_label_selector(text)
    assert (caught.value.position, caught.value.part) == (position, part)
    assert f"at position {position}" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_longest_valid_key_and_value() -> None:
    key, value = "p" * 253 + "/" + "n" * 63, "v" * 63
    assert str(selectors.parse_label_selector(f"{key}={value}")) == f"{key}={value}"
    with pytest.raises(selectors.SelectorError):
        selectors.parse_label_selector("p" * 254 + "/n")


# --- label selectors: matching -----------------------------------------------------------

# Requirement.Matches: `!=` and `notin` match objects without the key; `in`, `=`, `==`,
# `>` and `<` need it; `>`/`<` compare label values parsed as int64 (sign allowed there).
LABEL_MATCHES = [
    ("", {}, True),
    ("a=b", {"a": "b"}, True),
    ("a=b", {"a": "c"}, False),
    ("a=b", {}, False),
    ("a==b", {"a": "b"}, True),
    ("a!=b", {}, True),
    ("a!=b", {"a": "b"}, False),
    ("a!=b", {"a": "c"}, True),
    ("a in (x,y)", {"a": "y"}, True),
    ("a in (x,y)", {"a": "z"}, False),
    ("a in (x,y)", {}, False),
    ("a notin (x,y)", {}, True),
    ("a notin (x,y)", {"a": "x"}, False),
    ("a notin (x,y)", {"a": "z"}, True),
    ("a", {"a": ""}, True),
    ("a", {"b": "a"}, False),
    ("!a", {}, True),
    ("!a", {"a": ""}, False),
    ("a=", {"a": ""}, True),
    ("a=", {}, False),
    ("a in ()", {"a": ""}, True),
    ("a in ()", {"a": "x"}, False),
    ("a notin ()", {}, True),
    ("a>5", {"a": "6"}, True),
    ("a>5", {"a": "5"}, False),
    ("a>5", {"a": "x"}, False),
    ("a>5", {}, False),
    ("a<5", {"a": "-1"}, True),
    ("a<5", {"a": "+4"}, True),
    ("a<5", {"a": "99999999999999999999"}, False),  # not an int64
    ("a=b,c", {"a": "b"}, False),
    ("a=b,c", {"a": "b", "c": ""}, True),
    ("app.kubernetes.io/name=web", {"app.kubernetes.io/name": "web"}, True),
]


@pytest.mark.parametrize(("text", "labels", "expected"), LABEL_MATCHES)
def test_label_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert _labels_match(text, labels) is expected


# --- label selectors: properties ---------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "app", "example.com/tier", "x-y.z_1", "in"])
VALUES = st.sampled_from(["", "x", "y", "web", "1", "10", "in"])
LABEL_SETS = st.dictionaries(KEYS, VALUES, max_size=4)
# `(a,b)`, `(,a)` (adds ""), `()` (only ""); never `(,,)`, which apimachinery rejects
VALUE_SETS = st.one_of(
    st.just("()"),
    st.builds(
        lambda lead, values: f"({lead}{','.join(values)})",
        st.sampled_from(["", ","]),
        st.lists(st.sampled_from(["x", "y", "web", "1", "in"]), min_size=1, max_size=3),
    ),
)


@st.composite
def requirements(draw: st.DrawFn) -> str:
    key = draw(KEYS)
    form = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!", ">", "<"]))
    if form in ("in", "notin"):
        return f"{key} {form} {draw(VALUE_SETS)}"
    if form in (">", "<"):
        return f"{key}{form}{draw(st.sampled_from(['0', '1', '10']))}"
    return {"exists": key, "!": f"!{key}"}.get(form, f"{key}{form}{draw(VALUES)}")


@given(st.lists(requirements(), max_size=4))
def test_label_selector_round_trips(parts: list[str]) -> None:
    parsed = selectors.parse_label_selector(",".join(parts))
    assert selectors.parse_label_selector(str(parsed)) == parsed


@given(requirements(), requirements(), LABEL_SETS)
def test_comma_is_and(left: str, right: str, labels: Mapping[str, str]) -> None:
    both = _labels_match(f"{left},{right}", labels)
    each = [_labels_match(part, labels) for part in (left, right)]
    assert both is all(each)


@given(KEYS, VALUE_SETS, LABEL_SETS)
def test_notin_is_the_negation_of_in(key: str, values: str, labels: dict[str, str]) -> None:
    inside = _labels_match(f"{key} in {values}", labels)
    assert _labels_match(f"{key} notin {values}", labels) is not inside


@given(KEYS, VALUES, LABEL_SETS)
def test_not_equals_and_not_exists_are_negations(
    key: str, value: str, labels: dict[str, str]
) -> None:
    def match(text: str) -> bool:
        return _labels_match(text, labels)

    assert match(f"{key}!={value}") is not match(f"{key}={value}")
    assert match(f"!{key}") is not match(key)


# --- field selectors ---------------------------------------------------------------------

# (text, kind, canonical form: terms sorted, `==` printed `=`, values escaped)
FIELD_CANONICAL = [
    ("", Resource.PODS, ""),
    (",,", Resource.PODS, ""),
    ("metadata.name=web", Resource.PODS, "metadata.name=web"),
    ("spec.nodeName==n1", Resource.PODS, "spec.nodeName=n1"),
    ("status.phase!=Running", Resource.PODS, "status.phase!=Running"),
    ("status.phase=Running,metadata.name=a", Resource.PODS, "metadata.name=a,status.phase=Running"),
    ("spec.host=n1", Resource.PODS, "spec.nodeName=n1"),  # legacy alias (conversion.go)
    ("metadata.name=a\\,b\\=c\\\\d", Resource.PODS, "metadata.name=a\\,b\\=c\\\\d"),
    ("metadata.name=", Resource.SERVICES, "metadata.name="),
    ("metadata.name=a b", Resource.SERVICES, "metadata.name=a b"),  # nothing is trimmed
    ("metadata.name=!x", Resource.SERVICES, "metadata.name=!x"),
    ("spec.type=LoadBalancer,spec.clusterIP=None", Resource.SERVICES,
     "spec.clusterIP=None,spec.type=LoadBalancer"),
    ("metadata.namespace=ns", Resource.ENDPOINTS, "metadata.namespace=ns"),
    ("metadata.namespace=ns", Resource.ENDPOINTSLICES, "metadata.namespace=ns"),
    ("metadata.namespace=ns", Resource.INGRESSES, "metadata.namespace=ns"),
    ("spec.unschedulable=true", Resource.NODES, "spec.unschedulable=true"),
    ("status.phase=Active", Resource.NAMESPACES, "status.phase=Active"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "kind", "canonical"), FIELD_CANONICAL)
def test_field_selector_canonical_form(text: str, kind: Resource, canonical: str) -> None:
    assert str(selectors.parse_field_selector(text, kind=kind)) == canonical


def test_field_selector_structure() -> None:
    parsed = selectors.parse_field_selector("status.phase!=Failed,spec.host=n", kind=Resource.PODS)
    assert parsed.terms == (
        selectors.FieldTerm("spec.nodeName", selectors.FieldOperator.EQUALS, "n"),
        selectors.FieldTerm("status.phase", selectors.FieldOperator.NOT_EQUALS, "Failed"),
    )


# (text, kind, position, what the message names)
FIELD_ERRORS = [
    ("spec.foo=x", Resource.PODS, 0, "'spec.foo'"),
    ("metadata.name=x,spec.foo=y", Resource.PODS, 16, "'spec.foo'"),
    ("spec.unschedulable=true", Resource.PODS, 0, "'spec.unschedulable'"),
    ("spec.nodeName=n", Resource.NODES, 0, "'spec.nodeName'"),
    # Node and Namespace conversions know no metadata.namespace (cluster-scoped)
    ("metadata.namespace=", Resource.NODES, 0, "'metadata.namespace'"),
    ("metadata.namespace=", Resource.NAMESPACES, 0, "'metadata.namespace'"),
    ("spec.type=ClusterIP", Resource.ENDPOINTS, 0, "'spec.type'"),
    ("spec.ingressClassName=x", Resource.INGRESSES, 0, "'spec.ingressClassName'"),
    ("addressType=IPv4", Resource.ENDPOINTSLICES, 0, "'addressType'"),
    (" metadata.name=x", Resource.PODS, 0, "' metadata.name'"),  # not trimmed
    ("=x", Resource.PODS, 0, "''"),
    ("metadata.name", Resource.PODS, 0, "field=value"),
    ("metadata.name=a=b", Resource.PODS, 15, "'='"),
    ("metadata.name=a\\x", Resource.PODS, 15, "'\\\\x'"),
    ("metadata.name=a\\", Resource.PODS, 15, "'\\'"),
    ("metadata.name=x", Resource.REPLICASETS, 0, "replicasets"),
]


@pytest.mark.parametrize(("text", "kind", "position", "named"), FIELD_ERRORS)
def test_field_selector_errors(text: str, kind: Resource, position: int, named: str) -> None:
    with pytest.raises(selectors.SelectorError) as caught:
        selectors.parse_field_selector(text, kind=kind)
    assert caught.value.position == position
    assert named in str(caught.value)


POD: dict[str, Any] = {
    "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {
        "nodeName": "n1",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "web",
    },
    "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}]},
}

# Values as the server's field sets format them: FormatBool for booleans (false when
# unset), "" for absent strings, podIP = status.podIP else podIPs[0] (v1 conversion).
FIELD_MATCHES = [
    (POD, "metadata.name=web-0,metadata.namespace=shop", True),
    (POD, "metadata.name=web-1", False),
    (POD, "spec.nodeName=n1", True),
    (POD, "spec.nodeName!=n1", False),
    (POD, "spec.restartPolicy=Always,spec.schedulerName=default-scheduler", True),
    (POD, "spec.serviceAccountName=web", True),
    (POD, "spec.hostNetwork=false", True),
    ({"spec": {"hostNetwork": True}}, "spec.hostNetwork=true", True),
    ({"spec": {"hostNetwork": True}}, "spec.hostNetwork!=false", True),
    (POD, "status.phase=Running,status.podIP=10.0.0.1", True),
    ({"status": {"podIPs": [{"ip": "fd00::1"}]}}, "status.podIP=fd00::1", True),
    ({"status": {"podIP": "10.0.0.2", "podIPs": [{"ip": "10.0.0.3"}]}},
     "status.podIP=10.0.0.2", True),
    # accepted by the conversion, absent from ToSelectableFields: always ""
    (POD, "status.podIPs=10.0.0.1", False),
    (POD, "status.podIPs=", True),
    (POD, "status.nominatedNodeName=", True),
    ({"spec": {"serviceAccount": "legacy"}}, "spec.serviceAccountName=legacy", True),
    ({}, "spec.nodeName=", True),
    ({}, "spec.nodeName!=", False),
    ({"spec": {"nodeName": None}}, "spec.nodeName=", True),
    (POD, "", True),
]  # fmt: skip


@pytest.mark.parametrize(("pod", "text", "expected"), FIELD_MATCHES)
def test_pod_field_values(pod: dict[str, Any], text: str, expected: bool) -> None:
    assert _fields_match(text, Resource.PODS, pod) is expected


OTHER_MATCHES = [
    (Resource.NODES, {"metadata": {"name": "n1"}}, "spec.unschedulable=false", True),
    (Resource.NODES, {"spec": {"unschedulable": True}}, "spec.unschedulable=true", True),
    (Resource.NODES, {"metadata": {"name": "n1"}}, "metadata.name!=n1", False),
    (Resource.SERVICES, {"spec": {"type": "ClusterIP", "clusterIP": "None"}},
     "spec.type=ClusterIP,spec.clusterIP=None", True),
    (Resource.SERVICES, {"spec": {}}, "spec.type=", True),
    (Resource.NAMESPACES, {"status": {"phase": "Terminating"}}, "status.phase!=Active", True),
    (Resource.ENDPOINTSLICES, {"metadata": {"namespace": "a"}}, "metadata.namespace=a", True),
    (Resource.INGRESSES, {"metadata": {"name": "a,b"}}, "metadata.name=a\\,b", True),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "obj", "text", "expected"), OTHER_MATCHES)
def test_other_kinds_field_values(
    kind: Resource, obj: dict[str, Any], text: str, expected: bool
) -> None:
    assert _fields_match(text, kind, obj) is expected


FIELD_VALUES = st.text(alphabet="ab\\,=! ", max_size=6)
FIELD_NAMES = st.sampled_from(["metadata.name", "spec.type"])
FIELD_TERMS = st.tuples(FIELD_NAMES, st.sampled_from(["=", "==", "!="]), FIELD_VALUES)


@given(st.lists(FIELD_TERMS, max_size=4))
def test_field_selector_round_trips(terms: list[tuple[str, str, str]]) -> None:
    text = ",".join(f"{f}{op}{selectors.escape_field_value(v)}" for f, op, v in terms)
    parsed = selectors.parse_field_selector(text, kind=Resource.SERVICES)
    assert sorted(t.value for t in parsed.terms) == sorted(v for _, _, v in terms)
    assert selectors.parse_field_selector(str(parsed), kind=Resource.SERVICES) == parsed


@given(FIELD_VALUES, FIELD_VALUES, FIELD_VALUES)
def test_field_terms_are_anded(name: str, wanted: str, kind: str) -> None:
    service = {"metadata": {"name": name}, "spec": {"type": kind}}
    first = f"metadata.name={selectors.escape_field_value(wanted)}"
    second = f"spec.type!={selectors.escape_field_value(kind)}"

    def match(text: str) -> bool:
        return selectors.field_matches(
            selectors.parse_field_selector(text, kind=Resource.SERVICES), service
        )

    assert match(f"{first},{second}") is (match(first) and match(second))
    assert match(first) is (name == wanted)
    assert not match(second)


# --- ObjectFilter ------------------------------------------------------------------------


def test_object_filter_needs_label_and_field() -> None:
    web = selectors.ObjectFilter.parse(Resource.PODS, label="app=web", field="status.phase=Running")
    assert web.matches(POD)
    assert not web.matches({**POD, "status": {"phase": "Pending"}})
    assert not web.matches({**POD, "metadata": {"name": "web-0", "labels": {"app": "db"}}})
    assert web.kind is Resource.PODS
    assert not web.empty


def test_object_filter_reads_labels_defensively() -> None:
    absent = selectors.ObjectFilter.parse(Resource.PODS, label="!app")
    assert absent.matches({})
    assert absent.matches({"metadata": {"labels": None}})
    assert selectors.ObjectFilter.parse(Resource.NODES).matches({})
    assert selectors.ObjectFilter.parse(Resource.NODES).empty


def test_object_filter_reports_bad_selectors() -> None:
    with pytest.raises(selectors.SelectorError, match="not selectable on nodes"):
        selectors.ObjectFilter.parse(Resource.NODES, field="spec.nodeName=x")
