"""Our relabeling against Prometheus's, without servers (docs/relabeling.md).

Prometheus side: promtool reads our pod role's output through `file_sd_configs` and
applies the rules. Our side: `sdstream render --job` (its in-process core, and the real
command line once) applies the same rules to the same objects; promtool reads the result
through `file_sd_configs` with no rules, so both sides get the same scrape defaults and
only the relabeling can differ. Inputs: hypothesis-generated pods and rule lists (within
the RE2 syntax Go and RE2 both accept), and Prometheus's own relabel test vectors.

Generated rules stay off what sdstream knowingly does differently (docs/relabeling.md
§7): `labelkeep` keeps the scrape defaults (a removed default cannot be served: the
scraper adds it back from its own job); `labelmap` names never expand to "" (Prometheus
holds such a label, SD clients reject it). Generated rules may read `job`, `__scheme__`,
`__metrics_path__` and `__scrape_timeout__`; fixed rule sets also read and rewrite the
others (`__param_x`, intervals, histogram flags) with non-default scrape settings on
both sides.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from consumers import render
from consumers.compactor import jobs
from consumers.relabel import engine
from consumers.sinks.sd_json import http_sd_entries
from schemas.sd_config import ScrapeJob
from sdstream import render as render_cli
from tests.integration import relabel_oracle as oracle
from tests.relabel_rules import TYPICAL
from tests.unit.consumers.relabel.test_engine import PROMETHEUS_CASES

ROOT = Path(__file__).parents[2]
SD = {"role": "pod"}
VIEW = jobs.compile_job(
    ScrapeJob.model_validate({"job_name": "roles", "kubernetes_sd_configs": [SD]})
)[0]

# --- inputs ------------------------------------------------------------------------------

VALUES = ["web", "api", "true", "false", "8080", "9090", "/metrics", "/m", "a-b", "x.y",
          "Ünï", "ß", "line1\nline2", "10.0.0.9", "WEB", ""]  # fmt: skip
KEYS = ["app", "tier", "team", "prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path"]
PREFIXES = ["__meta_kubernetes_pod_", "__meta_kubernetes_pod_label_",
            "__meta_kubernetes_pod_annotation_", "__meta_kubernetes_pod_container_",
            "m_"]  # fmt: skip
SOURCES = ["__address__", "__meta_kubernetes_pod_name", "__meta_kubernetes_namespace",
           "__meta_kubernetes_pod_label_app", "__meta_kubernetes_pod_label_tier",
           "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
           "__meta_kubernetes_pod_annotation_prometheus_io_port",
           "__meta_kubernetes_pod_annotation_prometheus_io_path",
           "__meta_kubernetes_pod_container_port_number", "__meta_kubernetes_pod_container_name",
           "__meta_kubernetes_pod_phase", "m_app", "__tmp_x", "missing", "instance",
           "job", "__scheme__", "__metrics_path__", "__scrape_timeout__"]  # fmt: skip
TARGETS = ["m_app", "__tmp_x", "instance", "pod", "__address__", "__metrics_path__", "Ünï.x",
           "__meta_kubernetes_pod_label_app"]  # fmt: skip
DEFAULTS = ("job|__scheme__|__metrics_path__|__scrape_interval__|__scrape_timeout__|"
            "__convert_classic_histograms_to_nhcb__|__always_scrape_classic_histograms__|"
            "__scrape_native_histograms__")  # fmt: skip
PIECES = ["web", "true", "80", ".*", ".+", "(.*)", "(.+)", "([a-z]+)", r"(\d+)", "(?:x|y)",
          "[0-9]{1,3}", "(?i)WEB", r"\w+", r"\s*", "[[:alpha:]]+", r"\pL+", ";", ":", "-",
          "([^:]+)(?::\\d+)?", "(?P<n>[a-z])", "line1.*line2", "(|w)", "(.+?)(o*)"]  # fmt: skip
TEMPLATES = ["$1", "${1}", "$2", "x-$1", "$$", "$0", "${1}:9100", "$1x", "${n}", "$n.", "",
             "lit", "$01", "${1}_${2}"]  # fmt: skip


def value_regexes() -> st.SearchStrategy[str]:
    one = st.lists(st.sampled_from(PIECES), min_size=1, max_size=3).map("".join)
    return st.one_of(one, st.tuples(one, one).map("|".join))


def name_regexes() -> st.SearchStrategy[str]:
    """Regexes over label names that cannot match a scrape default, capturing the rest."""
    rest = st.sampled_from(["(.+)", "(.*)", "([a-z_]+)", "(app|tier)", "(a.*)"])
    return st.builds(lambda p, r: p + r, st.sampled_from(PREFIXES), rest)


sources = st.lists(st.sampled_from(SOURCES), min_size=1, max_size=3)
targets = st.sampled_from(TARGETS)
rules = st.one_of(
    st.fixed_dictionaries(
        {"source_labels": sources, "target_label": st.one_of(targets, st.just("${1}")),
         "regex": value_regexes(), "replacement": st.sampled_from(TEMPLATES)},
        optional={"separator": st.sampled_from([";", "", "/"])},
    ),
    st.fixed_dictionaries({"source_labels": sources, "target_label": targets}),  # defaults
    st.fixed_dictionaries({"source_labels": sources, "regex": value_regexes(),
                           "action": st.sampled_from(["keep", "drop", "KEEP"])}),
    st.fixed_dictionaries({"source_labels": sources, "target_label": targets,
                           "action": st.sampled_from(["keepequal", "dropequal"])}),
    st.fixed_dictionaries({"source_labels": sources, "target_label": targets,
                           "action": st.sampled_from(["lowercase", "uppercase"])}),
    st.fixed_dictionaries({"source_labels": sources, "target_label": targets,
                           "modulus": st.integers(1, 5), "action": st.just("hashmod")}),
    st.fixed_dictionaries({"regex": name_regexes(), "action": st.just("labelmap"),
                           "replacement": st.sampled_from(["m_$1", "k_${1}_x", "${1}_v"])}),
    st.fixed_dictionaries({"regex": name_regexes(), "action": st.just("labeldrop")}),
    st.fixed_dictionaries({"regex": name_regexes().map(lambda r: f"{r}|{DEFAULTS}|__address__"),
                           "action": st.just("labelkeep")}),
)  # fmt: skip


@st.composite
def pods(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 4))
    out = []
    for i in range(count):
        labels = draw(st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3))
        notes = draw(st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3))
        ports = draw(st.lists(st.sampled_from([8080, 9090, 80]), max_size=2, unique=True))
        out.append({
            "kind": "Pod",
            "metadata": {"name": f"p{i}", "namespace": "ns", "uid": f"u{i}",
                         "labels": labels, "annotations": notes},
            "spec": {"nodeName": "n0", "containers": [{"name": "app", "image": "i", "ports": [
                {"containerPort": p, "protocol": "TCP"} for p in ports]}]},
            "status": {"podIP": f"10.0.0.{i + 1}", "phase": "Running"},
        })  # fmt: skip
    return out


# --- the two sides -----------------------------------------------------------------------


def role_output(objects: list[dict[str, Any]]) -> list[dict[str, object]]:
    """What our pod role discovers: the input of Prometheus's relabeling here."""
    loaded = render.load(objects)
    return [e for g in render.render(loaded.objects, VIEW) for e in http_sd_entries(g)]


def ours(
    objects: list[dict[str, Any]], rule_list: list[dict[str, Any]], tmp: Path,
    scrape: dict[str, Any] | None = None,
) -> Any:  # fmt: skip
    """`render --job`'s output, computed in-process; the job named as promtool's."""
    job = tmp / "job.yml"
    spec = {"job_name": "oracle", "kubernetes_sd_configs": [SD], "relabel_configs": rule_list,
            **(scrape or {})}  # fmt: skip
    job.write_text(yaml.safe_dump(spec))
    _, views = render_cli.read_job(job, own_namespace=None)
    return render_cli.http_sd(render_cli.job_groups(views, objects))


def compare(
    promtool: Path, objects: list[dict[str, Any]], rule_list: list[Any], tmp: Path,
    *, outside_the_limit: bool = False,
) -> None:  # fmt: skip
    """`outside_the_limit`: discard (hypothesis) an example whose rules empty a scrape
    default: an HTTP SD entry cannot say a label is absent, so the scraper adds its own
    default back (docs/relabeling.md §7, a documented limit)."""
    theirs, mine = oracle.run_all(promtool, [
        oracle.file_sd(tmp, role_output(objects), rule_list),
        oracle.file_sd(tmp, ours(objects, rule_list, tmp)),
    ], tmp)  # fmt: skip
    if outside_the_limit:
        assume(all("__metrics_path__" in dict(target) for target in theirs))
    assert mine == theirs, f"rules {rule_list}:\n{oracle.describe(mine, theirs)}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects=pods(), rule_list=st.lists(rules, min_size=1, max_size=6))
def test_generated_rules_match_prometheus(
    promtool: Path, objects: list[dict[str, Any]], rule_list: list[dict[str, Any]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        compare(promtool, objects, rule_list, Path(tmp), outside_the_limit=True)


ANNOTATED = [
    {"kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "ns", "uid": f"u{i}",
     "labels": {"app": "web", "tier": str(i)},
     "annotations": {"prometheus.io/scrape": "true" if i % 3 else "false",
                     "prometheus.io/port": "9090", "prometheus.io/path": "/m" if i % 2 else ""}},
     "spec": {"nodeName": "n0", "containers": [{"name": "app", "image": "i", "ports": [
         {"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 9090, "protocol": "TCP"}]}]},
     "status": {"podIP": f"10.0.1.{i + 1}", "phase": "Running"}}
    for i in range(6)
]  # fmt: skip


def test_the_command_line_matches_prometheus_on_the_typical_rules(
    promtool: Path, tmp_path: Path
) -> None:
    """The real `sdstream render --job` on the annotation-driven rule set."""
    (tmp_path / "objects.json").write_text(json.dumps(ANNOTATED))
    spec = {"job_name": "pods", "kubernetes_sd_configs": [SD], "relabel_configs": TYPICAL}
    (tmp_path / "job.yml").write_text(yaml.safe_dump(spec))
    done = subprocess.run(
        [ROOT / ".venv" / "bin" / "sdstream", "render", "--job", tmp_path / "job.yml",
         tmp_path / "objects.json"], capture_output=True, text=True, check=True,
    )  # fmt: skip
    served = json.loads(done.stdout)
    assert len(served) == 4  # 4 of 6 pods annotated for scraping, ports collapsed into one
    assert all(not k.startswith("__meta_") for e in served for k in e["labels"])
    theirs, mine = oracle.run_all(promtool, [
        oracle.file_sd(tmp_path, role_output(ANNOTATED), TYPICAL),
        oracle.file_sd(tmp_path, served),
    ], tmp_path)  # fmt: skip
    assert mine == theirs, oracle.describe(mine, theirs)


@pytest.mark.parametrize(("labels", "rule_list", "expected"), PROMETHEUS_CASES)
def test_prometheus_relabel_vectors_through_promtool(
    promtool: Path, tmp_path: Path, labels: dict[str, str], rule_list: list[Any], expected: Any
) -> None:
    """The reference's section 9: each TestRelabel case, on a target with an address, judged by
    promtool rather than by the expected value transcribed in the unit test."""
    del expected
    discovered = {"__address__": "h:1", **labels}
    outcome = engine.process(discovered, engine.compile_rules(_rules(rule_list)))
    served = [] if outcome.final is None else [_entry(outcome.final)]
    theirs, mine = oracle.run_all(promtool, [
        oracle.file_sd(tmp_path, [_entry(discovered)], rule_list),
        oracle.file_sd(tmp_path, served),
    ], tmp_path)  # fmt: skip
    assert mine == theirs, oracle.describe(mine, theirs)


def _rules(rule_list: list[Any]) -> list[Any]:
    from schemas.relabel import RelabelConfig

    return [RelabelConfig.model_validate(r) for r in rule_list]


def _entry(labels: dict[str, str]) -> dict[str, Any]:
    rest = {k: v for k, v in labels.items() if k != "__address__"}
    return {"targets": [labels["__address__"]], "labels": rest}


def _wrong_hashmod(rule: engine.Rule, labels: dict[str, str]) -> bool:
    """hashmod on the md5's *first* 8 bytes: a plausible mistake."""
    value = rule.config.separator.join(labels.get(n, "") for n in rule.sources)
    digest = hashlib.md5(value.encode(), usedforsecurity=False).digest()
    labels[rule.config.target_label] = str(int.from_bytes(digest[:8], "big") % rule.config.modulus)
    return True


def test_the_vectors_can_fail(
    promtool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a deliberately wrong hashmod our side must disagree with promtool: the oracle
    is not comparing something with itself."""
    monkeypatch.setitem(engine._STEPS, "hashmod", _wrong_hashmod)
    rule_list = [{"source_labels": ["__address__"], "target_label": "h", "modulus": 1000,
                  "action": "hashmod"}]  # fmt: skip
    objects = ANNOTATED[:3]
    theirs, mine = oracle.run_all(promtool, [
        oracle.file_sd(tmp_path, role_output(objects), rule_list),
        oracle.file_sd(tmp_path, ours(objects, rule_list, tmp_path)),
    ], tmp_path)  # fmt: skip
    assert mine != theirs
    assert {dict(t)["__address__"] for t in mine} == {dict(t)["__address__"] for t in theirs}


# --- rules reading the scrape defaults ---------------------------------------------------

SCRAPE = {"scheme": "https", "metrics_path": "/probe", "scrape_interval": "90s",
          "params": {"x": ["v1", "v2"], "module": ["m"]}}  # fmt: skip
READING_DEFAULTS = {
    "job": [{"source_labels": ["job"], "target_label": "j"},
            {"source_labels": ["job"], "regex": "oracle", "action": "keep"}],
    "metrics_path": [
        {"source_labels": ["__metrics_path__"], "target_label": "path"},
        {"source_labels": ["__metrics_path__", "__meta_kubernetes_pod_label_app"],
         "separator": "/", "target_label": "__metrics_path__"}],
    "scheme": [{"source_labels": ["__scheme__", "__address__"], "separator": "://",
                "target_label": "url"},
               {"source_labels": ["__scheme__"], "regex": "https", "replacement": "http",
                "target_label": "__scheme__"}],
    "param": [{"source_labels": ["__param_x", "__param_module"], "target_label": "px"},
              {"source_labels": ["__param_x"], "regex": "v1", "action": "keep"},
              {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "__param_x"}],
    "interval": [{"source_labels": ["__scrape_interval__", "__scrape_timeout__",
                                    "__scrape_native_histograms__"], "target_label": "it"}],
    "interval_errors": [
        {"source_labels": ["__meta_kubernetes_pod_label_tier"], "regex": "1",
         "replacement": "", "target_label": "__scrape_interval__"},
        {"source_labels": ["__meta_kubernetes_pod_label_tier"], "regex": "2",
         "replacement": "2m", "target_label": "__scrape_timeout__"},
        {"source_labels": ["__meta_kubernetes_pod_label_tier"], "regex": "4",
         "replacement": "yes", "target_label": "__scrape_native_histograms__"},
        {"source_labels": ["__meta_kubernetes_pod_label_tier"], "regex": "5",
         "replacement": "0s", "target_label": "__scrape_timeout__"}],
    "job_rewritten": [{"source_labels": ["__meta_kubernetes_pod_name"],
                         "target_label": "job"},
                        {"source_labels": ["job"], "target_label": "j"}],
}  # fmt: skip
# A labelkeep removing every default, then rules reading them: Prometheus reads them empty.
REMOVED = [{"action": "labelkeep", "regex": "__address__|__meta_.*|__scrape_.*"},
           {"source_labels": ["job", "__scheme__", "__param_x"], "target_label": "k"},
           {"source_labels": ["__metrics_path__"], "regex": "", "action": "keep"}]  # fmt: skip


def scrape_defaults_compare(
    promtool: Path, rule_list: list[Any], tmp: Path, *, ignore: frozenset[str]
) -> None:
    """Both sides with the same scrape settings: Prometheus running the job on our role
    output, and a Prometheus with that job but no rules reading what we serve."""
    served = ours(ANNOTATED, rule_list, tmp, SCRAPE)
    jobs_ = [{**oracle.file_sd(tmp, role_output(ANNOTATED), rule_list), **SCRAPE},
             {**oracle.file_sd(tmp, served), **SCRAPE}]  # fmt: skip
    found = []
    for job in jobs_:
        done = subprocess.run(oracle.command(promtool, oracle.config(tmp, job), "500ms"),
                              capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        found.append(oracle.finals(done.stdout, ignore=oracle.SOURCE_LABELS | ignore))
    theirs, mine = found
    assert theirs, "the rules kept no target: the comparison would prove nothing"
    assert mine == theirs, f"rules {rule_list}:\n{oracle.describe(mine, theirs)}"


@pytest.mark.parametrize("name", sorted(READING_DEFAULTS))
def test_rules_reading_scrape_defaults_match_prometheus(
    promtool: Path, tmp_path: Path, name: str
) -> None:
    scrape_defaults_compare(promtool, READING_DEFAULTS[name], tmp_path, ignore=frozenset())


def test_rules_reading_removed_scrape_defaults_match_prometheus(
    promtool: Path, tmp_path: Path
) -> None:
    """A default a rule removed cannot be served (the scraper adds its own back), so the
    defaults' names are left out of the comparison; what later rules read is compared."""
    defaults = ScrapeJob.model_validate(
        {"job_name": "oracle", "kubernetes_sd_configs": [SD], **SCRAPE}
    ).scrape_defaults()
    scrape_defaults_compare(promtool, REMOVED, tmp_path, ignore=frozenset(defaults))


def test_served_labels_leave_unchanged_defaults_to_the_scraper(tmp_path: Path) -> None:
    """Only what the rules changed is served; an unchanged default is the scraper's."""
    served = ours(ANNOTATED, READING_DEFAULTS["scheme"], tmp_path, SCRAPE)
    assert served
    for entry in served:
        assert entry["labels"]["__scheme__"] == "http"  # changed by a rule: served
        assert entry["labels"]["url"].startswith("https://")
        assert not {"job", "__metrics_path__", "__param_x", "__scrape_interval__"} & set(
            entry["labels"]
        )
