"""Servers the tests start as subprocesses on a free port of 127.0.0.1 (moto, fakesnow), and stop again."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

STOP_TIMEOUT = 10


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def serving(
    command: Callable[[int], Sequence[str]],
    name: str,
    log: Path,
    environment: Mapping[str, str] | None = None,
    startup_timeout: float = 30,
) -> Generator[int]:
    """Run ``command(port)`` on a free port, its output in ``log``; the port, once the server accepts connections."""
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            list(command(port)),
            env=None if environment is None else dict(environment),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + startup_timeout
        while not _accepts_connections(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start on port {port}:\n{log.read_text()}")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def moto_server(log: Path) -> Generator[str]:
    """moto in server mode (S3, Glue, Athena, STS and the rest over HTTP); its endpoint URL."""
    executable = str(Path(sys.executable).with_name("moto_server"))
    with serving(lambda port: [executable, "-H", "127.0.0.1", "-p", str(port)], "moto_server", log) as port:
        yield f"http://127.0.0.1:{port}"
