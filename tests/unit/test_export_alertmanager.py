from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from detector.broker import free_port
from detector.export.alertmanager import AlertmanagerClient, AlertmanagerError, PostableAlert

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ALERT = PostableAlert(
    labels={"alertname": "LivewatchIncident", "incident_id": "inc-1", "severity": "critical"},
    starts_at=NOW,
    ends_at=NOW + timedelta(minutes=3),
    annotations={"summary": "viewers dropped"},
)


@contextmanager
def scripted_server(statuses: list[int]) -> Iterator[tuple[str, list[object]]]:
    """Answers each POST with the next status (the last one repeats), recording the bodies."""
    bodies: list[object] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            status = statuses[min(len(bodies), len(statuses)) - 1]
            payload = b"" if status < 300 else b'{"message": "labels: alertname missing"}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", bodies
    finally:
        server.shutdown()
        server.server_close()


def client(*urls: str, sleeps: list[float] | None = None) -> AlertmanagerClient:
    async def record(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    return AlertmanagerClient(list(urls), attempts=3, backoff_seconds=0.5, timeout_seconds=2, sleep=record)


def test_posts_v2_json():
    with scripted_server([200]) as (url, bodies):
        asyncio.run(client(url).post([ALERT]))
    assert bodies == [
        [
            {
                "labels": {"alertname": "LivewatchIncident", "incident_id": "inc-1", "severity": "critical"},
                "annotations": {"summary": "viewers dropped"},
                "startsAt": "2026-11-23T12:00:00+00:00",
                "endsAt": "2026-11-23T12:03:00+00:00",
            }
        ]
    ]


def test_retries_server_errors_with_exponential_backoff():
    sleeps: list[float] = []
    with scripted_server([503, 502, 200]) as (url, bodies):
        asyncio.run(client(url, sleeps=sleeps).post([ALERT]))
    assert len(bodies) == 3
    assert sleeps == [0.5, 1.0]


def test_gives_up_after_the_last_attempt():
    with scripted_server([503]) as (url, bodies), pytest.raises(AlertmanagerError, match="gave up after 3"):
        asyncio.run(client(url).post([ALERT]))
    assert len(bodies) == 3


def test_a_rejected_request_fails_at_once_with_the_servers_reason():
    with (
        scripted_server([400]) as (url, bodies),
        pytest.raises(AlertmanagerError, match=r"400.*alertname missing"),
    ):
        asyncio.run(client(url).post([ALERT]))
    assert len(bodies) == 1


def test_one_reachable_alertmanager_of_a_pair_is_enough():
    dead = f"http://127.0.0.1:{free_port()}"
    with scripted_server([200]) as (url, bodies):
        asyncio.run(client(dead, url).post([ALERT]))
    assert len(bodies) == 1
    with pytest.raises(AlertmanagerError, match="unreachable"):
        asyncio.run(client(dead).post([ALERT]))


def test_nothing_to_send_sends_nothing():
    with scripted_server([200]) as (url, bodies):
        asyncio.run(client(url).post([]))
    assert bodies == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": {"severity": "critical"}}, "alertname"),
        ({"labels": {"alertname": "X", "bad-name": "1"}}, "bad-name"),
        ({"labels": {"alertname": "X"}, "starts_at": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_bad_alerts_are_refused_with_the_field_named(kwargs: dict, message: str):
    with pytest.raises(ValueError, match=message):
        PostableAlert(**{"starts_at": NOW, **kwargs})


def test_client_needs_a_url():
    with pytest.raises(ValueError, match="urls"):
        AlertmanagerClient([])
