"""Posting alerts straight to Alertmanager's v2 API, for users who don't want rule-evaluation delay.

Alertmanager forgets an alert at its ``endsAt``; so while an alert is active, post it again
periodically (e.g. every minute) with ``ends_at`` a few minutes ahead, and post it once with
``ends_at=now`` to resolve it. Like Prometheus, the client posts to every Alertmanager of an HA
group and succeeds when at least one accepted the alerts.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Worth another try: the server is restarting, overloaded or briefly unreachable.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class AlertmanagerError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class PostableAlert:
    labels: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    generator_url: str = ""

    def __post_init__(self) -> None:
        if not self.labels.get("alertname"):
            raise ValueError(f"alert labels need a non-empty 'alertname', got {dict(self.labels)}")
        for name in self.labels:
            if not LABEL_NAME.match(name):
                raise ValueError(f"invalid label name {name!r} (must match {LABEL_NAME.pattern})")
        for moment in (self.starts_at, self.ends_at):
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"alert times must be timezone-aware UTC, got naive {moment.isoformat()}")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": self.starts_at.isoformat(),
        }
        if self.ends_at is not None:
            body["endsAt"] = self.ends_at.isoformat()
        if self.generator_url:
            body["generatorURL"] = self.generator_url
        return body


class AlertmanagerClient:
    def __init__(
        self,
        urls: Sequence[str],
        *,
        attempts: int = 4,
        backoff_seconds: float = 0.5,
        timeout_seconds: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        if not urls:
            raise ValueError("urls: give at least one Alertmanager base URL, e.g. http://alertmanager:9093")
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.urls = [url.rstrip("/") for url in urls]
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.timeout_seconds = timeout_seconds
        self.sleep = sleep

    async def post(self, alerts: Sequence[PostableAlert]) -> None:
        """Send ``alerts`` to every Alertmanager; raise AlertmanagerError only if none accepted them."""
        if not alerts:
            return
        body = [alert.to_json() for alert in alerts]
        timeout = aiohttp.ClientTimeout(total=self.timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            results = await asyncio.gather(
                *(self._post_with_retries(session, url, body) for url in self.urls), return_exceptions=True
            )
        errors = [result for result in results if isinstance(result, BaseException)]
        if len(errors) == len(self.urls):
            raise AlertmanagerError("; ".join(str(error) for error in errors))

    async def _post_with_retries(
        self, session: aiohttp.ClientSession, url: str, body: list[dict[str, Any]]
    ) -> None:
        endpoint = f"{url}/api/v2/alerts"
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                await self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                async with session.post(endpoint, json=body) as response:
                    if response.status < 300:
                        return
                    text = (await response.text()).strip()
                    problem = f"{endpoint} answered {response.status}: {text}"
                    if response.status not in RETRYABLE_STATUS:
                        raise AlertmanagerError(
                            problem
                        )  # the alerts themselves are wrong; retrying won't help
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{endpoint} unreachable: {exc!r}"
        raise AlertmanagerError(f"{problem} (gave up after {self.attempts} attempts)")
