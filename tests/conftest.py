"""Session fixtures: one real Kafka broker and one real etcd + kube-apiserver per run.

Shared by `tests/integration` (the pipeline against real servers) and `tests/faults`
(hostile objects, records, requests and settings against the same servers), so one
run starts the servers once. Tests in either folder are marked `integration`, tests in
`tests/faults` also `faults`.

The stack is started by `sdstream.devstack` in a temporary run directory, so it
never disturbs a developer's own `sdstream devstack up`. Each test gets its own
namespace and topic prefix, so tests never see each other's objects.

The broker is the secured one (`devstack up --secure`): `kafka_bootstrap` is its
PLAINTEXT listener, unauthenticated and a super user, so tests that do not care about
security use it as before; `secure_kafka` gives the SSL and SASL_SSL listeners, the
principals' settings and the ACL grant helper (tests/integration/secure_kafka.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from kubernetes import client, config

from sdstream.devstack import cache, stack
from tests.integration import objects
from tests.integration.secure_kafka import SecureKafka
from tests.naming import unique

# No per-example deadline: the suite shares 2 cores with Kafka, the API servers and
# sometimes other runs, and a slow example is not a wrong one (speed lives in bench/).
settings.register_profile("sdstream", deadline=None)
settings.load_profile("sdstream")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        parents = Path(item.path).parents
        if here / "integration" in parents or here / "faults" in parents:
            item.add_marker(pytest.mark.integration)
        if here / "faults" in parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session")
def stack_(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.Stack]:
    run_dir = tmp_path_factory.mktemp("devstack")
    running = stack.up(cache.cache_dir(), run_dir, secure=True)
    try:
        yield running
    finally:
        stack.down_stack(running)


@pytest.fixture(scope="session")
def kafka_bootstrap(stack_: stack.Stack) -> str:
    return stack_.kafka_bootstrap


@pytest.fixture(scope="session")
def secure_kafka(stack_: stack.Stack) -> SecureKafka:
    """The broker's SSL (mTLS) and SASL_SSL listeners, principals and ACL grants."""
    return SecureKafka(stack_)


@pytest.fixture(scope="session")
def kubeconfig(stack_: stack.Stack) -> Path:
    return Path(stack_.kubeconfig)


@pytest.fixture(scope="session")
def promtool(stack_: stack.Stack) -> Path:
    return Path(stack_.promtool)


@pytest.fixture(scope="session")
def kube_api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def namespace(kube_api: client.ApiClient) -> str:
    """A fresh namespace; never deleted (no controller would finish the deletion)."""
    name = unique("t")
    objects.create_namespace(kube_api, name)
    return name


@pytest.fixture
def topic_prefix() -> str:
    return unique("t")
