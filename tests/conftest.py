from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from detector.broker import EmbeddedBroker, configured_bootstrap


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka-compatible broker for the session: LIVEWATCH_BOOTSTRAP if set, else embedded Tansu."""
    external = configured_bootstrap()
    if external:
        yield external
        return
    log_path = Path(tmp_path_factory.mktemp("broker")) / "tansu.log"
    with EmbeddedBroker(log_path=log_path) as broker:
        yield broker.bootstrap
