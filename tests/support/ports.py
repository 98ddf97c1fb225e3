"""Loopback ports for the servers the integration tests start (btcd, PostgreSQL, Spark, Thrift)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(server, port: int, output, seconds: float = 300) -> None:
    """Wait until something listens on 127.0.0.1:``port``; fail the test when ``server`` (a
    ``subprocess.Popen``) exits first, with the end of its ``output()``, or after ``seconds``."""
    import time

    import pytest

    deadline = time.time() + seconds
    while True:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}:\n{output()[-4000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.time() > deadline:
            pytest.fail(f"nothing listened on port {port} within {seconds:.0f} s")
        time.sleep(2)
