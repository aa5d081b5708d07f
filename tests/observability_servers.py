"""Finding and running the real Prometheus, promtool and Alertmanager binaries in tests.

CI must run these tests, so a missing binary fails there (CI=true); elsewhere it skips with the fix.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import yaml

from detector.broker import free_port

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


REPO = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
ALERTMANAGER_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


def alertmanager_config_for_test(sink_url: str) -> dict[str, Any]:
    """The committed config with webhooks sent to ``sink_url`` (same paths) and 1 s group timings."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = sink_url + urlsplit(webhook["url"]).path

    def shorten(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route:  # routes without them inherit the root's
                route[key] = "1s"
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    return config


def prometheus_config_for_test(
    target: str, rule_files: list[str], alertmanager: str | None = None
) -> dict[str, Any]:
    """The committed config scraping ``target`` every second instead of discovering workers by DNS."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = rule_files
    if alertmanager:
        config["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [alertmanager]}]
    else:
        config.pop("alerting")
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "livewatch"]
    job.pop("dns_sd_configs")
    job["static_configs"] = [{"targets": [target]}]
    config["scrape_configs"] = [job]
    return config


@contextmanager
def alertmanager_server(workdir: Path, config: dict[str, Any]) -> Iterator[str]:
    """A real Alertmanager on a free loopback port (no clustering); yields its base URL."""
    binary = require_binary("prometheus-alertmanager")
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(argv, workdir / "alertmanager.log", f"{url}/-/ready"):
        yield url


@contextmanager
def prometheus_server(workdir: Path, config: dict[str, Any]) -> Iterator[str]:
    """A real Prometheus on a free loopback port with temporary storage; yields its base URL."""
    binary = require_binary("prometheus")
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
        # Alerts that fire before Alertmanager is discovered are re-sent after this, not after 1 minute.
        "--rules.alert.resend-delay=1s",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(argv, workdir / "prometheus.log", f"{url}/-/ready"):
        yield url


def prometheus_api(url: str, path: str, **params: str | list[str]) -> Any:
    query_string = urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(f"{url}/api/v1/{path}?{query_string}", timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]
