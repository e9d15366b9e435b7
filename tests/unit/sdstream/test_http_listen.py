"""An address the HTTP server cannot listen on is a one-line ListenError naming the setting."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import CollectorRegistry

from schemas.config import HttpSettings
from sdstream import http


async def test_a_port_in_use_names_http_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        server = http.HttpServer(HttpSettings(port=port), registry=CollectorRegistry(),
                                 ready=lambda: None)  # fmt: skip

        with pytest.raises(http.ListenError, match=f"http.port: cannot listen on 127.0.0.1:{port}"):
            await server.start()
