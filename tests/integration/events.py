"""Write object events to Kafka exactly as the producer's contract says, for consumer tests.

Keys `namespace/name`, partition by namespace (`schemas.topics.partition_for`), value an
`ObjectEvent`, tombstone on delete, headers naming event, cluster and resource.
"""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas import events
from schemas.objects import meta
from schemas.topics import Resource, object_key, object_topic, partition_for
from tests.integration import kafka_helpers

PARTITIONS = 3


async def create_topics(
    bootstrap: str, prefix: str, cluster: str, resources: list[Resource] | None = None
) -> None:
    for resource in resources or list(Resource):
        await kafka_helpers.create_topic(
            bootstrap, object_topic(prefix, cluster, resource), partitions=PARTITIONS
        )


class Writer:
    """A producer stand-in: `await writer.put(cluster, resource, obj)` / `.delete(...)`."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.prefix = prefix
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=True, acks="all"
        )
        self._version = 0

    async def __aenter__(self) -> Writer:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def put(self, cluster: str, resource: Resource, obj: dict[str, Any]) -> None:
        self._version += 1
        m = meta(obj)
        body = {**obj, "metadata": {**m, "resourceVersion": str(self._version)}}
        event = events.ObjectEvent(
            type=events.EventType.MODIFIED, cluster=cluster, resource=resource,
            resource_version=str(self._version), observed_at=time.time(), object=body,
        )  # fmt: skip
        key = object_key(m.get("namespace"), m.get("name") or "")
        await self._send(cluster, resource, key, events.encode(event), "MODIFIED")

    async def delete(self, cluster: str, resource: Resource, namespace: str, name: str) -> None:
        await self._send(cluster, resource, object_key(namespace, name), None, "DELETED")

    async def raw(self, cluster: str, resource: Resource, key: bytes, value: bytes) -> None:
        """A record that breaks the contract (poison), on partition 0."""
        await self._producer.send_and_wait(
            object_topic(self.prefix, cluster, resource), value, key=key, partition=0
        )

    async def _send(
        self, cluster: str, resource: Resource, key: str, value: bytes | None, kind: str
    ) -> None:
        headers = events.headers(
            event=events.EventType(kind), cluster=cluster, resource=resource,
            resource_version=str(self._version),
        )  # fmt: skip
        await self._producer.send_and_wait(
            object_topic(self.prefix, cluster, resource), value, key=key.encode(),
            partition=partition_for(key, PARTITIONS), headers=headers,
        )  # fmt: skip
