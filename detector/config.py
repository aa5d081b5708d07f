"""The livewatch configuration: windows, metrics and their slices, detector settings, Kafka.

Built once at the entry point with :func:`config_from_yaml` (or :func:`config_from_dict`) and passed
down; every model is frozen and rejects unknown keys, so a typo is an error, not a silently ignored
setting. A bad file raises :class:`ConfigError` whose message names the file and the path of every bad
field, e.g. ``metrics[3].aggregation.ratio.min_denominator: Input should be greater than 0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

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

if TYPE_CHECKING:
    from detector.alerting.lifecycle import LifecycleSettings
    from detector.alerting.rca import RcaSettings
    from detector.scoring.ensemble import EnsembleParams

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


Rate = Annotated[float, Field(gt=0, le=1)]
Probability = Annotated[float, Field(ge=0, le=1)]


class SeasonalSettings(Frozen):
    """Seasonal baseline (``SeasonalParams``, docs/scoring-seasonal.md): a robust level and scale per slot."""

    slot_s: Annotated[int, Field(gt=0)] = 900  # slot width; divides 86400, a multiple of window.length_s
    seasons: tuple[Literal["daily", "weekly"], ...] = ("daily", "weekly")
    mode: Literal["additive", "multiplicative"] = "multiplicative"
    coverage: Annotated[float, Field(gt=0, lt=1)] = 0.99  # of the expected band
    level_rate: Rate = 0.05  # profile EWMA rate per slot visit
    scale_rate: Rate = 0.02
    growth_rate: Rate = 0.002  # level EWMA rate per window
    short_rate: Rate = 0.05  # short-term fallback while learning
    recent_rate: Rate = 0.5  # recent residual a re-base jumps by (3 windows after a jump: 87 % of it)
    clip: PositiveFloat = 3.0  # Huber clip, in scales
    min_scale_rel: Annotated[float, Field(ge=0)] = 1e-4
    min_scale_abs: PositiveFloat = 1e-6
    profile_dtype: Literal["float32", "float64"] = "float32"

    @field_validator("slot_s")
    @classmethod
    def _divides_a_day(cls, slot_s: int) -> int:
        if 86_400 % slot_s:
            raise ValueError(f"must divide 86400 (a day), got {slot_s}")
        return slot_s

    @field_validator("seasons")
    @classmethod
    def _some_season(cls, seasons: tuple[str, ...]) -> tuple[str, ...]:
        if not seasons or len(set(seasons)) != len(seasons):
            raise ValueError(f"must list daily and/or weekly once each, got {list(seasons)}")
        return seasons


class CusumSettings(Frozen):
    """Two-sided CUSUM on the residual z (``CusumParams``)."""

    k: Annotated[float, Field(ge=0)] = 0.5  # slack, in sd
    h: PositiveFloat = 5.0  # alarm threshold, in sd
    min_instances: Annotated[int, Field(ge=0)] = 10


class PageHinkleySettings(Frozen):
    """Page-Hinkley on the residual z (``PageHinkleyParams``, river's semantics)."""

    min_instances: Annotated[int, Field(ge=1)] = 30
    delta: Annotated[float, Field(ge=0)] = 0.5  # slack, in sd
    threshold: PositiveFloat = 25.0  # in sd
    alpha: Annotated[float, Field(gt=0, le=1)] = 0.9999


class BocpdSettings(Frozen):
    """Bayesian online change points on z (``BocpdParams``); runs only while a series looks unusual."""

    hazard_lambda: Annotated[float, Field(gt=1)] = 250.0  # expected windows between changes
    max_run_length: Annotated[int, Field(ge=2)] = 64
    window: Annotated[int, Field(ge=1)] = 10  # score = P(change within the last `window` windows)
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    prior_sd: PositiveFloat = 3.0  # sd of a new segment's mean, in sd of z

    @model_validator(mode="after")
    def _window_below_run_length(self) -> BocpdSettings:
        if self.window >= self.max_run_length:
            raise ValueError(f"window ({self.window}) must be below max_run_length ({self.max_run_length})")
        return self


class ChangePointSettings(Frozen):
    """The change-point families, all fed the seasonal baseline's standardised residual z."""

    cusum: CusumSettings = CusumSettings()
    page_hinkley: PageHinkleySettings = PageHinkleySettings()
    bocpd: BocpdSettings = BocpdSettings()


class EnsembleSettings(Frozen):
    """How the families combine into one score and kind (``EnsembleParams``, docs/scoring.md)."""

    gate_z: PositiveFloat = 2.5  # |z| that starts BOCPD for a series
    gate_cusum: PositiveFloat = 2.5  # CUSUM statistic that starts it
    gate_probability: Probability = 0.1  # BOCPD stops once its change probability is below this
    shift_z: PositiveFloat = 2.0  # recent segment mean (in sd) that makes a level shift
    confirm_windows: Annotated[int, Field(ge=1)] = 3
    abrupt_windows: Annotated[int, Field(ge=1)] = 5
    hold_windows: Annotated[int, Field(ge=0)] = 5  # a confirmed change holds its score this long
    half_life: PositiveFloat = 5.0  # then decays with this half-life, in windows
    confirmed_score: Probability = 0.95
    learning_cap: Probability = 0.5  # score cap while the baseline is still learning
    learning_extreme_z: PositiveFloat = 8.0  # ... unless |z| reaches this
    kind_threshold: Probability = 0.5  # below this score the kind is "none"
    change_clip: PositiveFloat = 10.0  # |z| fed to the change-point families is clipped here


class DetectorSettings(Frozen):
    """How one metric is scored and how scores become anomalies and alerts.

    Scores are in [0, 1]. ``threshold``: a window counts toward firing an alert; ``lower_threshold``: it is
    published on the anomalies topic; an alert fires after ``fire_after`` windows at or above
    ``threshold`` and resolves after ``resolve_after`` windows below ``resolve_threshold``; after resolving,
    the same series does not fire again for ``cooldown_windows``. ``critical_threshold``: a peak score at
    or above it makes the alert critical.
    """

    direction: Literal["both", "up", "down"] = "both"
    threshold: Probability = 0.9
    lower_threshold: Probability = 0.6
    resolve_threshold: Probability = 0.5
    critical_threshold: Probability = 0.99
    fire_after: Annotated[int, Field(ge=1)] = 2
    resolve_after: Annotated[int, Field(ge=1)] = 3
    cooldown_windows: Annotated[int, Field(ge=0)] = 10
    seasonal: SeasonalSettings = SeasonalSettings()
    changepoint: ChangePointSettings = ChangePointSettings()
    ensemble: EnsembleSettings = EnsembleSettings()

    @model_validator(mode="after")
    def _lower_below_threshold(self) -> DetectorSettings:
        if self.lower_threshold > self.threshold:
            raise ValueError(
                f"lower_threshold ({self.lower_threshold}) must not exceed threshold ({self.threshold})"
            )
        if self.resolve_threshold > self.threshold:
            raise ValueError(
                f"resolve_threshold ({self.resolve_threshold}) must not exceed threshold ({self.threshold})"
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


class RcaConfig(Frozen):
    """Root-cause attribution of fired alerts (``RcaSettings``, docs/rca.md); the same for every metric."""

    top_k: Annotated[int, Field(ge=1)] = 3  # causes listed per alert
    min_share: Probability = 0.1  # share of its group's deviation a slice must explain to be a candidate
    explain_target: Probability = 0.8  # causes up to this cumulative share are `in_minimal_set`
    pair_penalty: Probability = 0.05  # potential handicap of a two-dimension cause (a single wins ties)
    min_potential: Probability = 0.2  # weaker causes after the first are dropped unless in its dimensions


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
    rca: RcaConfig = RcaConfig()
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

    @model_validator(mode="after")
    def _slots_fit_windows(self) -> Config:
        length = self.window.length_s
        bad = [
            f"metrics[{i}].detector.seasonal.slot_s ({m.detector.seasonal.slot_s}) must be a multiple "
            f"of window.length_s ({length})"
            for i, m in enumerate(self.metrics)
            if m.detector.seasonal.slot_s % length
        ]
        if bad:
            raise ValueError("; ".join(bad))
        return self

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


def ensemble_params(settings: DetectorSettings, window_s: int) -> EnsembleParams:
    """The scoring ensemble's parameters for one metric's detector settings and the window length."""
    # Imported here: the scoring modules compile numba kernels, which `livewatch config check` never needs.
    from detector.scoring.bocpd import BocpdParams
    from detector.scoring.cusum import CusumParams
    from detector.scoring.ensemble import EnsembleParams
    from detector.scoring.page_hinkley import PageHinkleyParams
    from detector.scoring.seasonal import SeasonalParams

    change = settings.changepoint
    return EnsembleParams(
        seasonal=SeasonalParams(window_s=window_s, **settings.seasonal.model_dump()),
        cusum=CusumParams(**change.cusum.model_dump()),
        page_hinkley=PageHinkleyParams(mode="both", **change.page_hinkley.model_dump()),
        # min_instances only matters to a stand-alone BOCPD; it must be >= window.
        bocpd=BocpdParams(min_instances=change.bocpd.window, **change.bocpd.model_dump()),
        **settings.ensemble.model_dump(),
    )


def lifecycle_settings(settings: DetectorSettings) -> LifecycleSettings:
    """Alert lifecycle settings (hysteresis, cooldown) for one metric."""
    from detector.alerting.lifecycle import LifecycleSettings

    return LifecycleSettings(
        fire_threshold=settings.threshold,
        resolve_threshold=settings.resolve_threshold,
        critical_threshold=settings.critical_threshold,
        fire_after=settings.fire_after,
        resolve_after=settings.resolve_after,
        cooldown_windows=settings.cooldown_windows,
    )


def rca_settings(config: RcaConfig) -> RcaSettings:
    """Root-cause attribution settings for the alerts of every metric."""
    from detector.alerting.rca import RcaSettings

    return RcaSettings(**config.model_dump())
