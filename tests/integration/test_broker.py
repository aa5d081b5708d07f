from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from detector.broker import BrokerError, EmbeddedBroker, kafka_answers, kafka_bootstrap

pytestmark = pytest.mark.integration


def test_embedded_broker_round_trip(tmp_path) -> None:
    log = tmp_path / "tansu.log"
    with EmbeddedBroker(log_path=log) as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic("round-trip", num_partitions=3, replication_factor=1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type="gzip")
        for i in range(50):
            producer.send("round-trip", key=str(i % 5).encode(), value=f"m{i}".encode())
        producer.flush()
        producer.close()
        consumer = KafkaConsumer(
            bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=2000
        )
        consumer.assign([TopicPartition("round-trip", p) for p in range(3)])
        values = sorted(int(record.value[1:]) for record in consumer)
        consumer.close()
        assert values == list(range(50))
        port = broker.port
    assert not kafka_answers("127.0.0.1", port), "broker must be stopped on exit"
    assert "listening on" in log.read_text()


def test_external_bootstrap_is_used_as_given(monkeypatch) -> None:
    monkeypatch.setenv("LIVEWATCH_BOOTSTRAP", "kafka.example:9092")
    with kafka_bootstrap() as bootstrap:
        assert bootstrap == "kafka.example:9092"
    with kafka_bootstrap("other:9093") as bootstrap:
        assert bootstrap == "other:9093"


def test_missing_binary_is_a_clear_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("LIVEWATCH_TANSU_BIN", str(tmp_path / "nope"))
    with pytest.raises(BrokerError, match="Tansu binary not found"):
        EmbeddedBroker().start()


def test_broker_dies_with_its_parent(tmp_path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from detector.broker import EmbeddedBroker
        broker = EmbeddedBroker().start()
        print(broker.port, broker._process.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    assert parent.stdout is not None
    port, child_pid = (int(x) for x in parent.stdout.readline().split())
    assert kafka_answers("127.0.0.1", port)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _gone_or_zombie(child_pid):
        time.sleep(0.1)
    assert not kafka_answers("127.0.0.1", port, timeout=0.2)
    assert _gone_or_zombie(child_pid)


def _gone_or_zombie(pid: int) -> bool:
    # The orphaned broker is re-parented; whether its zombie is reaped depends on the init process.
    try:
        with open(f"/proc/{pid}/status") as status:
            return any(line.split()[1] == "Z" for line in status if line.startswith("State:"))
    except FileNotFoundError:
        return True
