"""docker-compose.yml cannot run here (no Docker engine), so its structure and its agreement with the
Prometheus, Alertmanager and Grafana configs are checked instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LONG_RUNNING = ["kafka", "worker", "prometheus", "alertmanager", "grafana"]


def load(path: str) -> Any:
    return yaml.safe_load((REPO / path).read_text())


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return dict(load("docker-compose.yml")["services"])


def container_ports(service: dict[str, Any]) -> set[int]:
    published = {int(str(p).split(":")[-1]) for p in service.get("ports", [])}
    return published | {int(p) for p in service.get("expose", [])}


def test_every_service_of_the_stack_exists(services: dict[str, Any]):
    assert set(services) == {
        "kafka",
        "kafka-init",
        "producer",
        "worker",
        "prometheus",
        "alertmanager",
        "alert-webhook",
        "grafana",
    }


def test_images_are_pinned(services: dict[str, Any]):
    for name, service in services.items():
        image = service["image"]
        tag = image.rpartition(":")[2] if ":" in image else ""
        assert tag and tag != "latest", f"{name}: pin the image version ({image})"
        if "build" not in service:
            assert re.search(r"\d", tag), f"{name}: {image} is not a version"


def test_long_running_services_have_health_checks(services: dict[str, Any]):
    for name in LONG_RUNNING:
        assert services[name]["healthcheck"]["test"], name


def test_mounted_files_exist_and_named_volumes_are_declared(services: dict[str, Any]):
    declared = set(load("docker-compose.yml")["volumes"])
    used = set()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                used.add(source)
    assert used == declared


def test_app_services_are_built_from_the_dockerfile_and_wait_for_topics(services: dict[str, Any]):
    assert (REPO / "Dockerfile").is_file()
    for name in ("producer", "worker"):
        assert services[name]["build"] == "."
        assert services[name]["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_kafka_address_agrees_with_the_app_commands(services: dict[str, Any]):
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "PLAINTEXT://kafka:9092" in advertised.split(",")
    for name in ("producer", "worker"):
        command = services[name]["command"]
        assert command[command.index("--bootstrap") + 1] == "kafka:9092", name
    assert services["producer"]["command"][:1] == ["produce"]
    assert services["worker"]["command"][:1] == ["worker"]
    assert "--bootstrap-server kafka:9092" in services["kafka-init"]["command"][0]


def test_workers_scale(services: dict[str, Any]):
    worker = services["worker"]
    assert worker["deploy"]["replicas"] >= 1
    assert "container_name" not in worker and "ports" not in worker, (
        "a fixed name or host port blocks --scale"
    )


def test_prometheus_scrapes_the_workers_and_finds_alertmanager(services: dict[str, Any]):
    config = load("deploy/prometheus/prometheus.yml")
    prometheus = services["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "livewatch"]
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["worker"] and discovery["type"] == "A"
    assert discovery["port"] in container_ports(services["worker"])
    assert "9464" in str(services["worker"]["healthcheck"]["test"])
    (alerting,) = config["alerting"]["alertmanagers"]
    (target,) = alerting["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in services and int(port) in container_ports(services[host])
    assert 9090 in container_ports(prometheus)


def test_alertmanager_webhooks_reach_the_webhook_service(services: dict[str, Any]):
    config = load("deploy/alertmanager/alertmanager.yml")
    assert "./deploy/alertmanager:/etc/alertmanager:ro" in services["alertmanager"]["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in services["alertmanager"]["command"]
    webhook = services["alert-webhook"]
    urls = [w["url"] for r in config["receivers"] for w in r.get("webhook_configs", [])]
    assert urls
    for url in urls:
        parts = urlsplit(url)
        assert parts.hostname == "alert-webhook"
        assert parts.port == int(webhook["environment"]["HTTP_PORT"]) and parts.port in container_ports(
            webhook
        )


def test_grafana_datasource_and_dashboard_links_agree(services: dict[str, Any]):
    (source,) = load("deploy/grafana/provisioning/datasources/prometheus.yml")["datasources"]
    parts = urlsplit(source["url"])
    assert parts.hostname in services and parts.port in container_ports(services[parts.hostname])
    grafana = services["grafana"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    mount = next(v for v in grafana["volumes"] if v.startswith("./deploy/grafana/dashboards:"))
    source_dir, target_dir = mount.split(":")[:2]
    assert home.startswith(target_dir + "/") and (REPO / source_dir / Path(home).name).is_file()
    rules = (REPO / "deploy" / "prometheus" / "rules" / "anomalies.yml").read_text()
    grafana_port = {int(str(p).split(":")[0]) for p in grafana["ports"]}
    for port in re.findall(r"http://localhost:(\d+)/d/", rules):
        assert int(port) in grafana_port, "alert dashboard links must point at Grafana's published port"
