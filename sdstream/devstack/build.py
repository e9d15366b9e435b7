"""Fetch and build the real servers: Kafka from Maven Central; etcd, kube-apiserver,
kubectl, promtool and helm from the Go module proxy, and the prometheus-operator CRDs from its
module zip (the same proxy).

Each `ensure_*` returns the cached artefact at once when it exists, else
builds it. Go modules are verified by the checksum database (GOSUMDB) and Maven
downloads by their published checksums (`--strict-checksums`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sdstream.devstack import cache, versions
from sdstream.devstack.errors import DevstackError

_PROM_GO_MOD = """module sdstream.invalid/prom-build

go 1.25.8

replace cloud.google.com/go => cloud.google.com/go v0.123.0

exclude github.com/linode/linodego v1.0.0

exclude (
\tgithub.com/grpc-ecosystem/grpc-gateway v1.14.7
\tgoogle.golang.org/api v0.30.0
)
"""


def require_tool(name: str, *, why: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DevstackError(f"{name} not found on PATH; it is needed {why}")
    return path


def java_major() -> int:
    """The major version of `java` on PATH; the Kafka 4 broker needs 17 or later."""
    java = require_tool("java", why="to run the Kafka broker (Java 17 or later)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise DevstackError(f"cannot read the Java version from: {out.strip()[:200]}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def ensure_kafka(root: Path) -> Path:
    """The Kafka home ($CACHE/kafka-<ver>) with libs/ and log4j2.properties."""
    if java_major() < 17:
        raise DevstackError("Java 17 or later is needed for the Kafka 4 broker")
    home = root / f"kafka-{versions.KAFKA}"
    marker = home / "libs" / f"kafka_2.13-{versions.KAFKA}.jar"
    if not marker.exists():
        mvn = require_tool("mvn", why="to fetch the Kafka broker jars from Maven Central")
        with resources.as_file(resources.files("sdstream.devstack") / "kafka") as src:
            staged = root / "build" / "kafka"
            staged.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / "pom.xml", staged / "pom.xml")
            shutil.copy(src / "log4j2.properties", staged / "log4j2.properties")
        tmp_libs = home / "libs.partial"
        shutil.rmtree(tmp_libs, ignore_errors=True)
        plugin = (
            f"org.apache.maven.plugins:maven-dependency-plugin:{versions.MAVEN_DEPENDENCY_PLUGIN}"
        )
        cache.run_logged(
            [mvn, "-B", "--strict-checksums", "-f", staged / "pom.xml",
             f"-Dmaven.repo.local={root / 'm2'}", f"-Dkafka.version={versions.KAFKA}",
             f"-Dlog4j.version={versions.LOG4J}", f"{plugin}:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={tmp_libs}"],
            log=root / "logs" / f"kafka-{versions.KAFKA}-fetch.log",
            what=f"fetching Kafka {versions.KAFKA} jars from Maven Central",
        )  # fmt: skip
        shutil.rmtree(home / "libs", ignore_errors=True)
        tmp_libs.rename(home / "libs")
        shutil.copy(staged / "log4j2.properties", home / "log4j2.properties")
    return home


def _go_env(root: Path) -> dict[str, str]:
    return {
        "GOMODCACHE": str(root / "go" / "mod"),
        "GOCACHE": str(root / "go" / "build"),
        "GOFLAGS": "-modcacherw -buildvcs=false",
        "CGO_ENABLED": "0",
        "GOTOOLCHAIN": "local",
    }


def _go_version(go: str) -> str:
    return subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _binary(root: Path, name: str, version: str, go: str) -> Path:
    return root / "bin" / f"{name}-{version}-{_go_version(go)}"


def _go(root: Path, *args: str | Path, cwd: Path, what: str, log: str) -> None:
    go = require_tool("go", why="to build etcd, kube-apiserver and promtool")
    cache.run_logged([go, *args], cwd=cwd, env=_go_env(root), what=what,
                     log=root / "logs" / log)  # fmt: skip


@dataclass(frozen=True)
class GoTool:
    """A reference tool built from the Go module proxy inside a wrapper module of its own
    (`build/<work>/go.mod`), so its version and flags are ours, not a checkout's."""

    name: str  # the binary, bin/<name>-<version>-<go>
    version: str
    package: str  # the main package built
    module_version: str  # `go get <package>@<module_version>`
    go_mod: str
    work: str  # its directory under build/
    ldflags: str = ""
    tags: str = ""
    as_tool: bool = True  # `go get -tool`; a module with `replace` lines needs a plain get


def _wrapper(name: str, go: str = "1.25.0") -> str:
    return f"module sdstream.invalid/{name}-build\n\ngo {go}\n"


def build_go_tool(root: Path, tool: GoTool) -> Path:
    """The cached binary of `tool`, built once (fetch, then build, each logged)."""
    go = require_tool("go", why=f"to build {tool.name} from the Go module proxy")
    out = _binary(root, tool.name, tool.version, go)
    if out.exists():
        return out
    work = root / "build" / tool.work
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(tool.go_mod)
    log, what = f"{tool.name}-{tool.version}-build.log", f"{tool.name} {tool.version}"
    get = ("get", "-tool") if tool.as_tool else ("get",)
    _go(root, *get, f"{tool.package}@{tool.module_version}", cwd=work,
        what=f"fetching {what} modules", log=log)  # fmt: skip
    flags = [*(("-tags", tool.tags) if tool.tags else ()),
             *(("-ldflags", tool.ldflags) if tool.ldflags else ())]  # fmt: skip
    _go(root, "build", "-trimpath", *flags, "-o", out, tool.package, cwd=work,
        what=f"building {what}", log=log)  # fmt: skip
    return out


ETCD = GoTool(
    "etcd",
    versions.ETCD,
    "go.etcd.io/etcd/server/v3",
    versions.ETCD,
    _wrapper("etcd"),
    "etcd",
    ldflags=f"-X go.etcd.io/etcd/api/v3/version.GitSHA={versions.ETCD}",
)
# promtool with only Kubernetes SD (plus the always-built file and HTTP SD).
PROMTOOL = GoTool(
    "promtool",
    versions.PROMETHEUS,
    "github.com/prometheus/prometheus/cmd/promtool",
    versions.PROMETHEUS_MODULE,
    _PROM_GO_MOD,
    "prom",
    ldflags=f"-X github.com/prometheus/common/version.Version={versions.PROMETHEUS}",
    tags="netgo,remove_all_sd,enable_kubernetes_sd",
)
# helm (v4) for `helm lint` and `helm template` of deploy/helm in tests.
HELM = GoTool(
    "helm",
    versions.HELM,
    "helm.sh/helm/v4/cmd/helm",
    versions.HELM,
    _wrapper("helm", "1.26.0"),
    "helm",
    ldflags=f"-s -w -X helm.sh/helm/v4/internal/version.version={versions.HELM}",
)
# prometheus-operator, the judge of monitor jobs (docs/monitors.md): it writes the
# Prometheus config it generates into a Secret, with no kubelet. Its root go.mod has
# `replace` directives, so `go get -tool` is refused; a plain requirement builds it.
PROMETHEUS_OPERATOR = GoTool(
    "prometheus-operator",
    versions.PROMETHEUS_OPERATOR,
    "github.com/prometheus-operator/prometheus-operator/cmd/operator",
    versions.PROMETHEUS_OPERATOR,
    _wrapper("operator"),
    "prometheus-operator",
    as_tool=False,
)

# vmagent, the peer bench/consume.py measures beside promtool and sdstream (issue 19);
# built on demand by that bench only, so neither install nor the test run pays for it.
VMAGENT = GoTool(
    "vmagent",
    versions.VICTORIAMETRICS,
    "github.com/VictoriaMetrics/VictoriaMetrics/app/vmagent",
    versions.VICTORIAMETRICS,
    _wrapper("vmagent", "1.26.0"),
    "vmagent",
    ldflags="-s -w -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version="
    f"vmagent-{versions.VICTORIAMETRICS}",
)


def ensure_etcd(root: Path) -> Path:
    return build_go_tool(root, ETCD)


def _kube_replaces(root: Path, work: Path) -> list[str]:
    """k8s.io/kubernetes points its staging modules at ./staging; pin the published ones."""
    go = require_tool("go", why="to build kube-apiserver from the Go module proxy")
    info = subprocess.run(
        [go, "mod", "download", "-json", f"k8s.io/kubernetes@{versions.KUBERNETES}"],
        cwd=work, env={**os.environ, **_go_env(root)}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if info.returncode != 0:
        raise DevstackError(f"go mod download k8s.io/kubernetes failed: {info.stderr.strip()}")
    gomod = Path(json.loads(info.stdout)["GoMod"]).read_text()
    found = re.findall(r"^\s*(k8s\.io/\S+) => \./staging/src/k8s\.io/", gomod, re.MULTILINE)
    if not found:
        raise DevstackError("no staging replace lines in k8s.io/kubernetes go.mod")
    return found


def ensure_kube_apiserver(root: Path) -> Path:
    return _ensure_kube_command(root, "kube-apiserver", cold="several minutes")


def ensure_kubectl(root: Path) -> Path:
    """kubectl (with its built-in kustomize) for `kubectl apply -k --dry-run=server` of
    deploy/kubernetes in tests; it shares most packages with kube-apiserver's build."""
    return _ensure_kube_command(root, "kubectl", cold="a few minutes")


def _ensure_kube_command(root: Path, command: str, *, cold: str) -> Path:
    go = require_tool("go", why=f"to build {command} from the Go module proxy")
    out = _binary(root, command, versions.KUBERNETES, go)
    if out.exists():
        return out
    work = root / "build" / ("kube" if command == "kube-apiserver" else command)
    work.mkdir(parents=True, exist_ok=True)
    staging = versions.kube_staging()
    (work / "go.mod").write_text(f"module sdstream.invalid/{command}-build\n\ngo 1.26.0\n")
    replaces = "".join(f"replace {m} => {m} {staging}\n" for m in _kube_replaces(root, work))
    (work / "go.mod").write_text(
        f"module sdstream.invalid/{command}-build\n\ngo 1.26.0\n\n{replaces}"
    )
    log = f"{command}-{versions.KUBERNETES}-build.log"
    tool = f"k8s.io/kubernetes/cmd/{command}@{versions.KUBERNETES}"
    _go(root, "get", "-tool", tool, cwd=work,
        what=f"fetching Kubernetes {versions.KUBERNETES} modules", log=log)  # fmt: skip
    minor = versions.KUBERNETES.split(".")[1]
    ver, cgo = "k8s.io/component-base/version", "k8s.io/client-go/pkg/version"
    ldflags = " ".join(
        ["-s", "-w"]
        + [f"-X {pkg}.gitVersion={versions.KUBERNETES}" for pkg in (ver, cgo)]
        + [f"-X {pkg}.gitMajor=1 -X {pkg}.gitMinor={minor}" for pkg in (ver, cgo)]
        + [f"-X {ver}.gitTreeState=clean"]
    )
    _go(root, "build", "-trimpath", "-ldflags", ldflags, "-o", out,
        f"k8s.io/kubernetes/cmd/{command}", cwd=work,
        what=f"building {command} {versions.KUBERNETES} (cold: {cold})", log=log)  # fmt: skip
    return out


def ensure_promtool(root: Path) -> Path:
    return build_go_tool(root, PROMTOOL)


def ensure_helm(root: Path) -> Path:
    return build_go_tool(root, HELM)


def ensure_vmagent(root: Path) -> Path:
    return build_go_tool(root, VMAGENT)


def ensure_prometheus_operator(root: Path) -> Path:
    return build_go_tool(root, PROMETHEUS_OPERATOR)


MONITORING_CRDS = ("servicemonitors", "podmonitors", "prometheusrules")


def ensure_monitoring_crds(root: Path) -> Path:
    """A directory with the monitoring.coreos.com CRDs the chart may render, taken from
    the prometheus-operator module zip (example/prometheus-operator-crd/), checked by
    the Go checksum database like every module."""
    out = root / f"monitoring-crds-{versions.PROMETHEUS_OPERATOR}"
    if all((out / f"monitoring.coreos.com_{name}.yaml").exists() for name in MONITORING_CRDS):
        return out
    go = require_tool("go", why="to fetch the prometheus-operator CRDs from the Go module proxy")
    module = f"github.com/prometheus-operator/prometheus-operator@{versions.PROMETHEUS_OPERATOR}"
    work = root / "build" / "monitoring-crds"
    work.mkdir(parents=True, exist_ok=True)
    info = subprocess.run(
        [go, "mod", "download", "-json", module],
        cwd=work, env={**os.environ, **_go_env(root)}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if info.returncode != 0:
        raise DevstackError(f"go mod download {module} failed: {info.stdout.strip()[:300]}")
    src = Path(json.loads(info.stdout)["Dir"]) / "example" / "prometheus-operator-crd"
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in MONITORING_CRDS:
        shutil.copy(src / f"monitoring.coreos.com_{name}.yaml", partial)
    shutil.rmtree(out, ignore_errors=True)  # a cache from before a CRD was added to the list
    partial.rename(out)
    return out
