"""Finding and running the real Prometheus, promtool and Alertmanager binaries in tests.

CI must run these tests, so a missing binary fails there (CI=true); elsewhere it skips with the fix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

INSTALL_HINT = "apt-get install -y prometheus prometheus-alertmanager"
T = TypeVar("T")


def require_binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    if path:
        return path
    message = f"{name} not found on PATH; install it with: {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def run_tool(*argv: str, cwd: Path | None = None) -> str:
    """Run a command line tool; a non-zero exit fails the test with its output."""
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {result.returncode}:\n{output}")
    return output


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, log: Path | None = None) -> T:
    """Poll ``probe`` until it returns something truthy; on timeout fail naming ``what``, with the log."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")
        time.sleep(0.2)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextmanager
def running(
    argv: list[str], log: Path, ready_url: str, timeout: float = 20.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process, wait until ``ready_url`` answers 200, and always stop it afterwards."""
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_for(
            f"{Path(argv[0]).name} at {ready_url}",
            lambda: process.poll() is None and http_ok(ready_url),
            timeout,
            log,
        )
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
