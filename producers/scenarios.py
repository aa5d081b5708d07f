"""Incident scenarios: YAML files that set the model's parameters and inject incidents with ground truth.

A scenario names base parameters for :class:`producers.model.ModelParams` and a list of incidents.
Each incident has a ``kind``, a span ``[start, end)`` given as offsets from the simulation start
(``90m``, ``2h30m``) and kind-specific fields. :meth:`Scenario.effects` turns incidents into the
model's rate/value/extra/drop effects; :meth:`Scenario.labels` writes down what a detector should
find: the affected metrics, slices and span.

Scenario files live in ``configs/scenarios/NAME.yaml``; :func:`load_scenario` takes a name or a path.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from detector.events import DIMENSIONS, EventType
from producers.durations import format_utc, parse_duration
from producers.model import (
    CELL_DIMENSIONS,
    ROOM_ID_BASE,
    TIERS,
    DropEffect,
    Effect,
    ExtraEffect,
    ModelParams,
    RateEffect,
    ValueEffect,
    tier_of_rank,
)

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "configs" / "scenarios"

METRICS: tuple[str, ...] = (
    "concurrent_viewers",
    "view_starts",
    "watch_time",
    "gift_revenue",
    "gifting_users",
    "comments",
    "stall_rate",
    "stall_p95_ms",
    "report_rate",
    "streams_started",
)

# A metric a drift or level shift can move, the event type behind it, and every metric that moves with it.
_METRIC_EVENTS: dict[str, tuple[EventType, tuple[str, ...]]] = {
    "view_starts": (EventType.VIEW_START, ("view_starts", "concurrent_viewers", "watch_time")),
    "concurrent_viewers": (EventType.VIEW_START, ("view_starts", "concurrent_viewers", "watch_time")),
    "watch_time": (EventType.VIEW_START, ("view_starts", "concurrent_viewers", "watch_time")),
    "gift_revenue": (EventType.GIFT, ("gift_revenue", "gifting_users")),
    "gifting_users": (EventType.GIFT, ("gift_revenue", "gifting_users")),
    "comments": (EventType.COMMENT, ("comments",)),
    "stall_rate": (EventType.STALL, ("stall_rate",)),
    "report_rate": (EventType.REPORT, ("report_rate",)),
}
ShiftableMetric = Literal[
    "view_starts",
    "concurrent_viewers",
    "watch_time",
    "gift_revenue",
    "gifting_users",
    "comments",
    "stall_rate",
    "report_rate",
]


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the file and the field."""


def _offset(value: object) -> object:
    return parse_duration(str(value)) if isinstance(value, str | int | float) else value


class _Incident(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64)
    start: timedelta
    end: timedelta
    description: str = ""

    _check_offsets = field_validator("start", "end", mode="before")(_offset)

    @model_validator(mode="after")
    def _ordered(self) -> _Incident:
        if self.start < timedelta(0):
            raise ValueError("start must not be negative")
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    def slices_used(self) -> list[dict[str, str]]:
        """Slices whose values must exist in the model (checked by the scenario)."""
        return []


class _SliceIncident(_Incident):
    slice: dict[str, str] = Field(default_factory=dict)

    def slices_used(self) -> list[dict[str, str]]:
        return [self.slice]


class StallSpike(_SliceIncident):
    """Stalls per view in ``slice`` multiplied by ``factor``, and stalls last ``ms_factor`` times longer."""

    kind: Literal["stall_spike"]
    factor: float = Field(default=6.0, gt=1)
    ms_factor: float = Field(default=2.0, gt=0)


class Compound(StallSpike):
    """A stall spike that only exists where two (or more) dimensions meet, e.g. region=IN AND network=3g."""

    kind: Literal["compound"]  # type: ignore[assignment]

    @model_validator(mode="after")
    def _two_dimensions(self) -> Compound:
        if len(self.slice) < 2:
            raise ValueError("slice of a compound incident must name at least two dimensions")
        return self


class GiftOutage(_Incident):
    """Gift payments fail in one region: only ``success`` of gifts go through."""

    kind: Literal["gift_outage"]
    region: str
    success: float = Field(default=0.02, ge=0, lt=1)

    def slices_used(self) -> list[dict[str, str]]:
        return [{"region": self.region}]


class ViralSurge(_Incident):
    """One room (by popularity rank, 0 = most popular) gets ``factor`` times its viewers, gifts, comments."""

    kind: Literal["viral_surge"]
    room_rank: int = Field(default=25, ge=0)
    factor: float = Field(default=15.0, gt=1)


class CommentBotFlood(_SliceIncident):
    """``bots`` accounts post comments so that comments in ``slice`` reach ``factor`` times normal."""

    kind: Literal["comment_bot_flood"]
    factor: float = Field(default=6.0, gt=1)
    bots: int = Field(default=40, ge=1)


class SlowDecline(_SliceIncident):
    """``metric`` in ``slice`` drifts linearly down to ``factor`` of normal by ``end``, then recovers."""

    kind: Literal["slow_decline"]
    metric: ShiftableMetric
    factor: float = Field(default=0.5, gt=0, lt=1)


class LevelShift(_SliceIncident):
    """``metric`` in ``slice`` jumps to ``factor`` of normal at ``start`` and stays there (a new normal);
    the label covers [start, end), the time a detector has to notice before the level counts as normal."""

    kind: Literal["level_shift"]
    metric: ShiftableMetric
    factor: float = Field(default=0.7, gt=0)

    @field_validator("factor")
    @classmethod
    def _not_one(cls, value: float) -> float:
        if value == 1:
            raise ValueError("factor 1 is no shift")
        return value


class IngestGap(_Incident):
    """No events at all arrive from one region."""

    kind: Literal["ingest_gap"]
    region: str

    def slices_used(self) -> list[dict[str, str]]:
        return [{"region": self.region}]


Incident = Annotated[
    StallSpike | Compound | GiftOutage | ViralSurge | CommentBotFlood | SlowDecline | LevelShift | IngestGap,
    Field(discriminator="kind"),
]
INCIDENT_KINDS: tuple[str, ...] = (
    "stall_spike",
    "gift_outage",
    "viral_surge",
    "comment_bot_flood",
    "slow_decline",
    "level_shift",
    "ingest_gap",
    "compound",
)


class Label(msgspec.Struct, frozen=True, kw_only=True):
    """Ground truth for one incident, one JSON line in the labels file."""

    incident_id: str
    kind: str
    metrics: list[str]
    slices: list[dict[str, str]]
    start: str  # ISO 8601 UTC with Z
    end: str
    description: str


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    description: str = ""
    model: ModelParams = Field(default_factory=ModelParams)
    incidents: list[Incident] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_slices(self) -> Scenario:
        vocab = self.model.vocab()
        ids = [incident.id for incident in self.incidents]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"incident ids must be unique, repeated: {', '.join(duplicates)}")
        for index, incident in enumerate(self.incidents):
            for slice_ in incident.slices_used():
                for dimension, value in slice_.items():
                    where = f"incidents[{index}] ({incident.id})"
                    if dimension not in DIMENSIONS:
                        raise ValueError(
                            f"{where}: unknown dimension {dimension!r} (known: {', '.join(DIMENSIONS)})"
                        )
                    if dimension not in CELL_DIMENSIONS:
                        raise ValueError(
                            f"{where}: incidents can target {', '.join(CELL_DIMENSIONS)}, not {dimension}"
                        )
                    if value not in vocab[dimension]:
                        raise ValueError(
                            f"{where}: unknown {dimension} {value!r} (known: {', '.join(vocab[dimension])})"
                        )
            if isinstance(incident, ViralSurge) and incident.room_rank >= self.model.rooms:
                raise ValueError(
                    f"incidents[{index}] ({incident.id}): room_rank must be < rooms ({self.model.rooms})"
                )
        return self

    def with_rate(self, rate: float | None) -> Scenario:
        """The same scenario at another event rate (the ``--rate`` option)."""
        if rate is None:
            return self
        return self.model_copy(update={"model": self.model.model_copy(update={"rate": rate})})

    def _within(self, duration: timedelta) -> list[Any]:
        return [incident for incident in self.incidents if incident.start < duration]

    def effects(self, start: datetime, duration: timedelta) -> list[Effect]:
        """The incidents that begin within the run, as model effects."""
        start_ms = int(start.timestamp() * 1000)
        effects: list[Effect] = []
        for incident in self._within(duration):
            begin = start_ms + int(incident.start.total_seconds() * 1000)
            end = start_ms + int(incident.end.total_seconds() * 1000)
            effects += _incident_effects(incident, begin, end)
        return effects

    def labels(self, start: datetime, duration: timedelta) -> list[Label]:
        """Ground truth for the incidents that begin within the run (spans cut at its end)."""
        return [
            Label(
                incident_id=incident.id,
                kind=incident.kind,
                metrics=list(_affected_metrics(incident)),
                slices=_label_slices(incident, self.model),
                start=format_utc(start + incident.start),
                end=format_utc(start + min(incident.end, duration)),
                description=incident.description or _default_description(incident),
            )
            for incident in self._within(duration)
        ]


def _incident_effects(incident: Any, begin: int, end: int) -> list[Effect]:
    match incident:
        case StallSpike(slice=slice_, factor=factor, ms_factor=ms_factor):
            return [
                RateEffect(begin, end, (EventType.STALL,), slice_, factor),
                ValueEffect(begin, end, (EventType.STALL,), slice_, ms_factor),
            ]
        case GiftOutage(region=region, success=success):
            return [RateEffect(begin, end, (EventType.GIFT,), {"region": region}, success)]
        case ViralSurge(room_rank=rank, factor=factor):
            types = (
                EventType.VIEW_START,
                EventType.GIFT,
                EventType.COMMENT,
                EventType.LIKE,
                EventType.SHARE,
                EventType.FOLLOW,
                EventType.STALL,
            )
            return [ExtraEffect(begin, end, types, {}, factor, room_rank=rank)]
        case CommentBotFlood(slice=slice_, factor=factor, bots=bots):
            return [ExtraEffect(begin, end, (EventType.COMMENT,), slice_, factor, users=bots)]
        case SlowDecline(slice=slice_, metric=metric, factor=factor):
            return [RateEffect(begin, end, (_METRIC_EVENTS[metric][0],), slice_, factor, ramp=True)]
        case LevelShift(slice=slice_, metric=metric, factor=factor):
            return [RateEffect(begin, end, (_METRIC_EVENTS[metric][0],), slice_, factor, persist=True)]
        case IngestGap(region=region):
            return [DropEffect(begin, end, {"region": region})]
    raise AssertionError(f"unhandled incident kind {incident.kind}")


def _default_description(incident: Any) -> str:
    if isinstance(incident, ViralSurge):
        return f"room {ROOM_ID_BASE + incident.room_rank} (popularity rank {incident.room_rank}) goes viral"
    where = ", ".join(f"{k}={v}" for s in incident.slices_used() for k, v in s.items()) or "all traffic"
    return f"{incident.kind.replace('_', ' ')} on {where}"


def _affected_metrics(incident: Any) -> tuple[str, ...]:
    match incident:
        case StallSpike():
            return ("stall_rate", "stall_p95_ms")
        case GiftOutage():
            return ("gift_revenue", "gifting_users")
        case ViralSurge():
            return ("concurrent_viewers", "view_starts", "watch_time", "gift_revenue", "comments")
        case CommentBotFlood():
            return ("comments",)
        case SlowDecline(metric=metric) | LevelShift(metric=metric):
            return _METRIC_EVENTS[metric][1]
        case IngestGap():
            return METRICS
    raise AssertionError(f"unhandled incident kind {incident.kind}")


def _label_slices(incident: Any, params: ModelParams) -> list[dict[str, str]]:
    if isinstance(incident, ViralSurge):
        return [{"creator_tier": TIERS[tier_of_rank(incident.room_rank, params.rooms)]}]
    slices = incident.slices_used()
    return [dict(s) for s in slices] if slices else [{}]


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """``NAME`` -> ``configs/scenarios/NAME.yaml``; anything that looks like a path is taken as one."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text or Path(text).is_file():
        return Path(text)
    return SCENARIO_DIR / f"{text}.yaml"


def available_scenarios() -> list[str]:
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read and validate a scenario; :class:`ScenarioError` names the file and every bad field."""
    path = resolve_scenario_path(name_or_path)
    if not path.is_file():
        known = ", ".join(available_scenarios())
        raise ScenarioError(
            f"scenario {str(name_or_path)!r} not found (no file {path}; known names: {known})"
        )
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ScenarioError(f"{path}: expected a mapping with 'incidents' (and optionally 'model')")
    document.setdefault("name", path.stem)
    return parse_scenario(document, source=str(path))


def parse_scenario(document: dict[str, Any], *, source: str = "<scenario>") -> Scenario:
    try:
        return Scenario.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ScenarioError(f"{source}: {problems}") from None


def write_labels(labels: list[Label], path: Path | str) -> None:
    encoder = msgspec.json.Encoder()
    with Path(path).open("wb") as file:
        for label in labels:
            file.write(encoder.encode(label) + b"\n")


def read_labels(path: Path | str) -> list[Label]:
    decoder = msgspec.json.Decoder(Label)
    return [decoder.decode(line) for line in Path(path).read_bytes().splitlines() if line.strip()]
