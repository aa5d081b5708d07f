"""The livewatch configuration: windows, metrics and their slices, detector settings, Kafka.

Built once at the entry point with :func:`config_from_yaml` (or :func:`config_from_dict`) and passed
down; every model is frozen and rejects unknown keys, so a typo is an error, not a silently ignored
setting. A bad file raises :class:`ConfigError` whose message names the file and the path of every bad
field, e.g. ``metrics[3].aggregation.ratio.min_denominator: Input should be greater than 0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from detector.events import DIMENSIONS, EventType

PositiveFloat = Annotated[float, Field(gt=0)]


def _not_empty(items: tuple[Any, ...]) -> tuple[Any, ...]:
    # An after-validator rather than min_length: it runs only when every item is valid, so a bad item
    # is reported once, not also as an empty list.
    if not items:
        raise ValueError("must list at least one item")
    return items


EventTypes = Annotated[tuple[EventType, ...], AfterValidator(_not_empty)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WindowConfig(Frozen):
    """Event-time tumbling windows, aligned to the Unix epoch."""

    length_s: Annotated[int, Field(gt=0)] = 60
    allowed_lateness_s: Annotated[int, Field(ge=0)] = 120
    max_future_skew_s: Annotated[int, Field(ge=0)] = 300
    idle_partition_s: Annotated[float, Field(gt=0)] = 60.0


class Tally(Frozen):
    """Events of some types, counted (``count``) or with their ``value`` summed (``sum``)."""

    kind: Literal["count", "sum"]
    events: EventTypes
    positive_only: bool = False  # only events with value > 0


class CountAggregation(Tally):
    kind: Literal["count"]


class SumAggregation(Tally):
    kind: Literal["sum"]


class RatioAggregation(Frozen):
    """numerator / denominator per window; missing (NaN) while the denominator is below ``min_denominator``.

    A tiny denominator makes a ratio noise (1 stall in 2 view starts is not a 50% stall rate), so such a
    window is not a value at all rather than an extreme one.
    """

    kind: Literal["ratio"]
    numerator: Tally
    denominator: Tally
    min_denominator: PositiveFloat = 1.0


class GaugeAggregation(Frozen):
    """A running level: +1 per ``up`` event, -1 per ``down`` event, carried from window to window.

    The value of a window is the level at its end (e.g. viewers watching). When ``down_value_is_duration``
    the ``value`` of a down event is the session length in seconds (``view_end`` carries watch seconds), so
    a down event whose session started before the aggregator's first window is ignored: its up event was
    never counted, and counting the down would drive the level below zero after every restart of history.
    """

    kind: Literal["gauge"]
    up: EventTypes
    down: EventTypes
    down_value_is_duration: bool = True


class DistinctAggregation(Frozen):
    """Distinct ids among the events (HyperLogLog; relative error about 1.04 / sqrt(2**lg_k))."""

    kind: Literal["distinct"]
    events: EventTypes
    field: Literal["user_id", "room_id", "creator_id"] = "user_id"
    positive_only: bool = False
    lg_k: Annotated[int, Field(ge=4, le=21)] = 12


class QuantileAggregation(Frozen):
    """The ``q`` quantile of event values, from a mergeable sketch.

    ``log_histogram`` (default): counts in log-spaced buckets, each value known within
    ``relative_accuracy``; deterministic and exactly mergeable, so partitions merged equal one aggregator
    and live equals replay. ``kll``: Apache DataSketches KLL (rank error about 1.65% at k=200), whose
    compactions use random bits: the same events can give slightly different quantiles run to run.
    """

    kind: Literal["quantile"]
    events: EventTypes
    q: Annotated[float, Field(ge=0, le=1)] = 0.5
    positive_only: bool = False
    sketch: Literal["log_histogram", "kll"] = "log_histogram"
    relative_accuracy: Annotated[float, Field(gt=0, lt=1)] = 0.01
    k: Annotated[int, Field(ge=8, le=65535)] = 200


Aggregation = Annotated[
    CountAggregation
    | SumAggregation
    | RatioAggregation
    | GaugeAggregation
    | DistinctAggregation
    | QuantileAggregation,
    Field(discriminator="kind"),
]
Dimension = Literal["region", "platform", "app_version", "creator_tier", "network"]


class SeasonalSettings(Frozen):
    """Seasonal baseline: a robust level and scale per time slot of each season."""

    slot_s: Annotated[int, Field(gt=0)] = 3600  # one slot per hour of the season
    seasons: tuple[Literal["daily", "weekly"], ...] = ("daily", "weekly")
    mode: Literal["additive", "multiplicative"] = "multiplicative"
    min_coverage: Annotated[float, Field(ge=0, le=1)] = 0.5  # share of slots seen before a season is trusted
    warmup_windows: Annotated[int, Field(ge=0)] = 30
    band_width: PositiveFloat = 3.0  # half-width of the expected band, in robust scale units


class ChangePointSettings(Frozen):
    """Change-point detectors: Page-Hinkley / CUSUM and Bayesian online change point."""

    enabled: bool = True
    method: Literal["page_hinkley", "cusum", "bocpd"] = "page_hinkley"
    delta: Annotated[float, Field(ge=0)] = 0.5  # drift tolerated, in robust scale units
    threshold: PositiveFloat = 8.0  # cumulative deviation that signals a change
    hazard: Annotated[float, Field(gt=0, lt=1)] = 1 / 250  # bocpd: prior probability of a change per window
    max_run_length: Annotated[int, Field(gt=0)] = 300  # bocpd: run-length truncation


class DetectorSettings(Frozen):
    """How scores become anomalies and alerts for one metric.

    ``threshold`` is the score at which a window counts toward firing an alert; ``lower_threshold`` the
    score at which it is published on the anomalies topic. An alert fires after ``fire_after`` windows
    above ``threshold`` and resolves after ``resolve_after`` windows below it; after resolving, the same
    series does not fire again for ``cooldown_windows``.
    """

    direction: Literal["both", "up", "down"] = "both"
    threshold: PositiveFloat = 5.0
    lower_threshold: PositiveFloat = 3.0
    fire_after: Annotated[int, Field(ge=1)] = 2
    resolve_after: Annotated[int, Field(ge=1)] = 3
    cooldown_windows: Annotated[int, Field(ge=0)] = 10
    seasonal: SeasonalSettings = SeasonalSettings()
    changepoint: ChangePointSettings = ChangePointSettings()

    @model_validator(mode="after")
    def _lower_below_threshold(self) -> DetectorSettings:
        if self.lower_threshold > self.threshold:
            raise ValueError(
                f"lower_threshold ({self.lower_threshold}) must not exceed threshold ({self.threshold})"
            )
        return self


class MetricConfig(Frozen):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
    description: str = ""
    aggregation: Aggregation
    dimensions: tuple[Dimension, ...] = ()
    pairs: tuple[tuple[Dimension, Dimension], ...] = ()
    max_series: Annotated[int, Field(ge=1)] = 2000
    min_volume: Annotated[float, Field(ge=0)] = 0.0
    detector: DetectorSettings = DetectorSettings()

    @field_validator("dimensions")
    @classmethod
    def _no_repeated_dimension(cls, dimensions: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(dimensions)) != len(dimensions):
            raise ValueError(f"a dimension is listed twice: {list(dimensions)}")
        return dimensions

    @field_validator("pairs")
    @classmethod
    def _pairs_of_two_dimensions(cls, pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        seen: set[frozenset[str]] = set()
        for first, second in pairs:
            if first == second:
                raise ValueError(f"a pair needs two different dimensions, got [{first}, {second}]")
            if frozenset((first, second)) in seen:
                raise ValueError(f"pair [{first}, {second}] is listed twice")
            seen.add(frozenset((first, second)))
        return pairs

    def slices(self) -> tuple[tuple[str, ...], ...]:
        """The total ``()``, each dimension and each pair, dimensions in :data:`DIMENSIONS` order."""
        order = {d: i for i, d in enumerate(DIMENSIONS)}
        canonical = [(d,) for d in self.dimensions] + [
            tuple(sorted(p, key=order.__getitem__)) for p in self.pairs
        ]
        return ((), *canonical)


class KafkaTopics(Frozen):
    events: str = "live-events"
    metric_windows: str = "metric-windows"
    anomalies: str = "anomalies"
    alerts: str = "alerts"
    dead_letter: str = "live-events-dlq"


class KafkaConfig(Frozen):
    bootstrap: str | None = None  # None: LIVEWATCH_BOOTSTRAP or the embedded broker
    topics: KafkaTopics = KafkaTopics()
    partitions: Annotated[int, Field(ge=1)] = 4
    consumer_group: str = "livewatch"


class Config(Frozen):
    window: WindowConfig = WindowConfig()
    metrics: Annotated[tuple[MetricConfig, ...], AfterValidator(_not_empty)]
    kafka: KafkaConfig = KafkaConfig()
    # Expected number of values per dimension, for series estimates (`livewatch config check`).
    cardinality: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: {
            "region": 12,
            "platform": 4,
            "app_version": 20,
            "creator_tier": 4,
            "network": 5,
        }
    )

    @field_validator("cardinality")
    @classmethod
    def _known_dimensions(cls, cardinality: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(cardinality) - set(DIMENSIONS))
        if unknown:
            raise ValueError(f"unknown dimensions {unknown}, expected some of {list(DIMENSIONS)}")
        return cardinality

    @field_validator("metrics")
    @classmethod
    def _unique_names(cls, metrics: tuple[MetricConfig, ...]) -> tuple[MetricConfig, ...]:
        names = [m.name for m in metrics]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"metric names must be unique, repeated: {repeated}")
        return metrics

    def metric(self, name: str) -> MetricConfig:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(name)


class ConfigError(ValueError):
    """A configuration that cannot be used; ``errors`` lists ``(path, message)`` for every bad field."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {path}: {message}" for path, message in errors)
        super().__init__(f"invalid config {source}:\n{lines}")


def _path(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def config_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [(_path(e["loc"]), e["msg"]) for e in exc.errors()]) from None


def config_from_yaml(path: str | Path) -> Config:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), [("(file)", exc.strerror or str(exc))]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [("(yaml)", str(exc))]) from None
    if not isinstance(data, Mapping):
        raise ConfigError(str(path), [("(top level)", f"expected a mapping, got {type(data).__name__}")])
    return config_from_dict(data, source=str(path))
