"""``livewatch worker``: run one stream worker (both stages) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
from pathlib import Path

import faust
import typer
from prometheus_client import start_http_server
from rich.console import Console

from detector.broker import configured_bootstrap, kafka_bootstrap
from detector.stream.app import ComponentsError, create_stream_app, load_components
from detector.stream.settings import StreamSettings

console = Console(stderr=True)


def worker(
    bootstrap: str | None = typer.Option(
        None,
        help="Kafka bootstrap servers (else LIVEWATCH_BOOTSTRAP, else an embedded broker for this worker).",
    ),
    config: Path | None = typer.Option(
        None, help="Config file handed to the aggregation/scoring components."
    ),
    web_port: int | None = typer.Option(
        None, help="Faust web port (a second worker on a host needs its own)."
    ),
    metrics_port: int | None = typer.Option(None, help="Serve Prometheus metrics on this port."),
    components: str | None = typer.Option(None, help="module:factory building the StreamComponents."),
    app_id: str | None = typer.Option(None, help="Consumer group / Faust app id."),
    loglevel: str = typer.Option("warning", help="Log level of the worker."),
) -> None:
    """Run a stream worker: stage 1 (aggregate live-events) and stage 2 (score windows, publish alerts)."""
    if config is not None and not config.is_file():
        console.print(f"[red]error:[/] --config: no such file: {config}")
        raise typer.Exit(2)
    overrides = {
        "config": str(config) if config else None,
        "web_port": web_port,
        "metrics_port": metrics_port,
        "components": components,
        "app_id": app_id,
    }
    try:
        settings = StreamSettings.from_env(**overrides)
        resolved = load_components(settings.components, settings.config)
    except (ValueError, ComponentsError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    with kafka_bootstrap(configured_bootstrap(bootstrap)) as address:
        settings = StreamSettings.from_env(**overrides, bootstrap=address)
        stream = create_stream_app(settings, resolved)
        if settings.metrics_port:
            start_http_server(settings.metrics_port, addr=settings.web_host, registry=stream.metrics.registry)
        console.print(f"worker [bold]{settings.app_id}[/] on {address}, web port {settings.web_port}")
        logging.basicConfig(level=loglevel.upper())
        faust.Worker(stream.app, loglevel=loglevel, redirect_stdouts=False).execute_from_commandline()
