"""The ``livewatch`` command: one entry point, each sub-command defined beside the code it drives."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import typer
from rich.console import Console

from detector.alerting.explain_cli import explain_command
from detector.broker import BrokerError, EmbeddedBroker
from detector.config_cli import config_app
from producers.cli import produce
from detector.demo import demo_command
from producers.replay import replay_command
from detector.scoring.series_file import score_command
from detector.stream.cli import worker

app = typer.Typer(
    name="livewatch",
    help="Streaming anomaly detection for the core metrics of a live-streaming product.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
app.add_typer(config_app, name="config")
app.command("explain")(explain_command)


@app.command()
def broker(
    port: int = typer.Option(9092, help="Loopback port to listen on (0 picks a free one)."),
    log: Path | None = typer.Option(None, help="Write the broker's log to this file."),
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, in memory) until Ctrl-C."""
    try:
        embedded = EmbeddedBroker(port=port or None, log_path=log).start()
    except BrokerError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"embedded broker listening on [bold]{embedded.bootstrap}[/] (memory only; Ctrl-C stops it)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while embedded.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        embedded.stop()


app.command("produce")(produce)
app.command("replay")(replay_command)
app.command("demo")(demo_command)
app.command("score")(score_command)
app.command("worker")(worker)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
