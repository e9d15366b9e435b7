"""Unique names for test namespaces, topic prefixes and clusters, so tests sharing one
broker and one API server never see each other's objects."""

from __future__ import annotations

import uuid


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
