"""Faust's aiokafka transport with a configurable fetch wait.

faust-streaming 0.15.3 creates its consumer with ``fetch_max_wait_ms=1500`` hard-coded. Tansu answers a
fetch only when that wait expires if the fetched partitions had nothing new when the request arrived
(measured: window-final -> alert p50 1.5 s, one full wait per hop), so the wait is what bounds latency.
This module subclasses the transport to set aiokafka's wait from ``StreamSettings.fetch_max_wait_ms``.
It touches one private attribute of aiokafka's consumer (read when the consumer starts its fetcher);
``test_stream_state.py`` checks it still exists.
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    fetch_max_wait_ms: ClassVar[int] = 1500

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


def transport_class(fetch_max_wait_ms: int) -> type[faust_aiokafka.Transport]:
    thread = type("ConsumerThread", (_ConsumerThread,), {"fetch_max_wait_ms": fetch_max_wait_ms})

    class TunedConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return thread(self, loop=self.loop, beacon=self.beacon)

    return type("TunedTransport", (faust_aiokafka.Transport,), {"Consumer": TunedConsumer})


class FetchTunedApp(faust.App):
    """A Faust app whose consumer waits at most ``fetch_max_wait_ms`` for new records."""

    fetch_max_wait_ms: int = 1500

    def _new_transport(self) -> TransportT:
        return transport_class(self.fetch_max_wait_ms)(self.conf.broker_consumer, self)
