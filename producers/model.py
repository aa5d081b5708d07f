"""A synthetic Live product: rooms, creators, viewers and what they do, as a seeded event stream.

The simulation runs chunk by chunk over event time (a minute per chunk at ordinary rates). In each
chunk the expected number of events of each type in each *cell* — region x platform x app version x
network — follows from the configured rate, the region's local time of day and day of week, the
platform and network mix, the app-version rollout at that moment, and any incident effects. One
Poisson draw per cell gives the counts; everything per event (room, user, time stamp, value) is then
drawn as whole arrays. That is what makes generating days of history a matter of seconds.

What is modelled:

* **Rooms** have Zipf popularity by rank; the top 1 % of creators are tier ``top``, the next 9 %
  ``mid``, the rest ``long_tail``. A room is live for a lognormal span (longer for bigger creators),
  then offline until its creator starts again, more likely in the evening of the creator's region.
  ``stream_start`` / ``stream_end`` mark the spans; viewer events only happen in live rooms.
* **Viewing sessions**: each ``view_start`` schedules a ``view_end`` after a lognormal watch time,
  cut short when the stream ends; ``value`` of ``view_end`` is the watch time in seconds.
* **Engagement**: likes, comments, shares, follows, reports at fixed shares of activity; gifts come
  from a small set of gifting users with lognormal coin values (heavy tail).
* **Stalls** (``value`` = stall ms) happen per view at a probability that depends on platform, app
  version and network; slow networks also make stalls longer.

Time zones are fixed UTC offsets (daylight saving is ignored on purpose: it would only move the
curves by an hour twice a year and cost a tz database dependency).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from detector.events import DIMENSIONS, EVENT_TYPE_CODE, EventFrame, EventType
from producers.durations import parse_duration

TIERS: tuple[str, ...] = ("top", "mid", "long_tail")
# Room and creator ids follow popularity rank: room_id = ROOM_ID_BASE + rank (one room per creator).
ROOM_ID_BASE = 10_000
CREATOR_ID_BASE = 1_000_000

# Local hour -> relative activity (evening peak, trough before dawn); normalised to a mean of 1.
_HOURLY_ACTIVITY = np.array(
    [
        0.62,
        0.45,
        0.32,
        0.24,
        0.2,
        0.21,
        0.27,
        0.4,
        0.55,
        0.64,
        0.7,
        0.76,
        0.85,
        0.86,
        0.82,
        0.81,
        0.86,
        0.96,
        1.12,
        1.32,
        1.52,
        1.62,
        1.45,
        1.0,
    ]
)
_HOURLY_ACTIVITY = _HOURLY_ACTIVITY / _HOURLY_ACTIVITY.mean()
# Monday .. Sunday in local time; weekends are busier.
_WEEKDAY_ACTIVITY = np.array([0.93, 0.92, 0.94, 0.97, 1.05, 1.12, 1.07])
_WEEKDAY_ACTIVITY = _WEEKDAY_ACTIVITY / _WEEKDAY_ACTIVITY.mean()

# Activity shares per event type: per unit of the configured rate (view_end mirrors view_start and
# stalls follow views, so the total comes out close to the configured rate).
_ACTIVITY_SHARES: dict[EventType, float] = {
    EventType.VIEW_START: 0.14,
    EventType.LIKE: 0.44,
    EventType.COMMENT: 0.18,
    EventType.GIFT: 0.03,
    EventType.SHARE: 0.025,
    EventType.FOLLOW: 0.02,
    EventType.REPORT: 0.002,
}
# Types drawn per cell: the activity types, plus stalls (per view).
CELL_TYPES: tuple[EventType, ...] = (*_ACTIVITY_SHARES, EventType.STALL)

_DEVELOPED_NETWORKS = {"wifi": 0.62, "5g": 0.2, "4g": 0.16, "3g": 0.02}
_EMERGING_NETWORKS = {"wifi": 0.45, "5g": 0.08, "4g": 0.39, "3g": 0.08}
_MOBILE_FIRST_NETWORKS = {"wifi": 0.35, "5g": 0.1, "4g": 0.43, "3g": 0.12}


class RegionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    utc_offset_hours: float = Field(ge=-12, le=14)
    weight: float = Field(gt=0)
    networks: dict[str, float] = Field(default_factory=lambda: dict(_EMERGING_NETWORKS))


class AppVersionSpec(BaseModel):
    """An app version: released at an offset from the simulation start (negative: before it), adopted
    linearly over ``rollout`` up to ``adoption`` of the users of older versions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    released: timedelta
    rollout: timedelta = timedelta(days=7)
    adoption: float = Field(default=0.85, gt=0, le=1)
    stall_factor: float = Field(default=1.0, gt=0)

    @field_validator("released", "rollout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            negative = value.strip().startswith("-")
            parsed = parse_duration(value.strip().lstrip("-"))
            return -parsed if negative else parsed
        return value


def _default_regions() -> list[RegionSpec]:
    table = [
        ("US", -6, 0.22, _DEVELOPED_NETWORKS),
        ("BR", -3, 0.14, _EMERGING_NETWORKS),
        ("IN", 5.5, 0.18, _MOBILE_FIRST_NETWORKS),
        ("ID", 7, 0.12, _MOBILE_FIRST_NETWORKS),
        ("DE", 1, 0.08, _DEVELOPED_NETWORKS),
        ("JP", 9, 0.08, _DEVELOPED_NETWORKS),
        ("MX", -6, 0.08, _EMERGING_NETWORKS),
        ("PH", 8, 0.10, _EMERGING_NETWORKS),
    ]
    return [RegionSpec(name=n, utc_offset_hours=o, weight=w, networks=dict(m)) for n, o, w, m in table]


def _default_versions() -> list[AppVersionSpec]:
    return [
        AppVersionSpec(name="31.5", released=timedelta(days=-90), rollout=timedelta(days=14)),
        AppVersionSpec(name="31.8", released=timedelta(days=-40), rollout=timedelta(days=10)),
        AppVersionSpec(name="32.0", released=timedelta(days=-12), rollout=timedelta(days=7)),
        AppVersionSpec(name="32.1", released=timedelta(hours=2), rollout=timedelta(days=2)),
    ]


class ModelParams(BaseModel):
    """Base parameters of the simulation; every field has a sensible default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: float = Field(default=2000.0, gt=0, description="mean events per second over a week")
    rooms: int = Field(default=2000, ge=10)
    users_per_region: int = Field(default=200_000, ge=100)
    zipf_exponent: float = Field(default=1.1, gt=0)
    regions: list[RegionSpec] = Field(default_factory=_default_regions, min_length=1)
    platforms: dict[str, float] = Field(
        default_factory=lambda: {"android": 0.55, "ios": 0.3, "web": 0.1, "tv": 0.05}, min_length=1
    )
    platform_stall_factor: dict[str, float] = Field(
        default_factory=lambda: {"android": 1.3, "ios": 0.7, "web": 1.0, "tv": 1.1}
    )
    network_stall_factor: dict[str, float] = Field(
        default_factory=lambda: {"wifi": 0.5, "5g": 0.6, "4g": 1.2, "3g": 3.0}, min_length=1
    )
    app_versions: list[AppVersionSpec] = Field(default_factory=_default_versions, min_length=1)
    stall_probability: float = Field(default=0.06, gt=0, le=1, description="stalls per view, before factors")
    stall_ms_median: float = Field(default=900.0, gt=0)
    gift_coins_median: float = Field(default=5.0, gt=0)
    gift_coins_sigma: float = Field(default=1.5, gt=0)
    watch_seconds_median: float = Field(default=90.0, gt=0)
    gifting_user_share: float = Field(default=0.03, gt=0, le=1)

    @model_validator(mode="after")
    def _consistent(self) -> ModelParams:
        networks = set(self.network_stall_factor)
        for region in self.regions:
            if set(region.networks) != networks:
                raise ValueError(
                    f"regions[{region.name}].networks must name exactly the networks {sorted(networks)}"
                )
        names = [r.name for r in self.regions]
        if len(set(names)) != len(names):
            raise ValueError("regions: names must be unique")
        if set(self.platform_stall_factor) != set(self.platforms):
            raise ValueError("platform_stall_factor must name exactly the platforms")
        versions = [v.name for v in self.app_versions]
        if len(set(versions)) != len(versions):
            raise ValueError("app_versions: names must be unique")
        if sorted(self.app_versions, key=lambda v: v.released) != list(self.app_versions):
            raise ValueError("app_versions must be listed oldest release first")
        return self

    def vocab(self) -> dict[str, tuple[str, ...]]:
        """Every value each dimension can take, in code order."""
        return {
            "region": tuple(r.name for r in self.regions),
            "platform": tuple(self.platforms),
            "app_version": tuple(v.name for v in self.app_versions),
            "creator_tier": TIERS,
            "network": tuple(self.network_stall_factor),
        }


def tier_of_rank(rank: int, rooms: int) -> int:
    """Creator tier (index into TIERS) of the room with popularity ``rank`` (0 = most popular)."""
    share = rank / rooms
    return 0 if share < 0.01 else 1 if share < 0.10 else 2


# Dimensions that make up a cell; creator_tier follows from the room an event lands in.
CELL_DIMENSIONS: tuple[str, ...] = ("region", "platform", "app_version", "network")


@dataclass(frozen=True, slots=True)
class RateEffect:
    """Multiply the rate of ``event_types`` in ``slice`` by ``factor`` over [start_ms, end_ms).

    ``ramp``: the factor moves linearly from 1 to ``factor`` across the span (a drift).
    ``persist``: the factor stays after ``end_ms`` (a new normal).
    """

    start_ms: int
    end_ms: int
    event_types: tuple[EventType, ...]
    slice: dict[str, str]
    factor: float
    ramp: bool = False
    persist: bool = False


@dataclass(frozen=True, slots=True)
class ValueEffect:
    """Multiply ``value`` (stall ms, coins, watch seconds) of ``event_types`` in ``slice``."""

    start_ms: int
    end_ms: int
    event_types: tuple[EventType, ...]
    slice: dict[str, str]
    factor: float


@dataclass(frozen=True, slots=True)
class ExtraEffect:
    """Add events of ``event_types`` so their rate becomes ``factor`` times the baseline.

    With ``room_rank`` the baseline is that room's (it is kept live over the span, its events keep
    their viewers' cells); without, the baseline is the slice's. With ``users`` the added events come
    from that many dedicated accounts (a bot farm).
    """

    start_ms: int
    end_ms: int
    event_types: tuple[EventType, ...]
    slice: dict[str, str]
    factor: float
    room_rank: int | None = None
    users: int | None = None


@dataclass(frozen=True, slots=True)
class DropEffect:
    """No events at all from ``slice`` over [start_ms, end_ms) (the ingest pipeline lost them)."""

    start_ms: int
    end_ms: int
    slice: dict[str, str]


Effect = RateEffect | ValueEffect | ExtraEffect | DropEffect


def chunk_seconds_for(rate: float) -> int:
    """Event-time length of one chunk: a minute, shorter at high rates so a chunk stays ~200k events."""
    return int(np.clip(200_000 // max(rate, 1.0), 1, 60))


@dataclass(slots=True)
class _Columns:
    """Events of one chunk under construction (codes for dimensions, as in EventFrame)."""

    ts: list[np.ndarray] = field(default_factory=list)
    type: list[np.ndarray] = field(default_factory=list)
    room: list[np.ndarray] = field(default_factory=list)
    user: list[np.ndarray] = field(default_factory=list)
    dims: dict[str, list[np.ndarray]] = field(default_factory=lambda: {d: [] for d in DIMENSIONS})
    value: list[np.ndarray] = field(default_factory=list)

    def add(
        self,
        ts: np.ndarray,
        type_: np.ndarray | int,
        room: np.ndarray,
        user: np.ndarray,
        dims: dict[str, np.ndarray],
        value: np.ndarray | float,
    ) -> None:
        n = ts.shape[0]
        self.ts.append(ts.astype(np.int64, copy=False))
        self.type.append(np.broadcast_to(np.asarray(type_, dtype=np.int8), (n,)))
        self.room.append(room.astype(np.int64, copy=False))
        self.user.append(user.astype(np.int64, copy=False))
        for d in DIMENSIONS:
            self.dims[d].append(dims[d].astype(np.int32, copy=False))
        self.value.append(np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)))


# A pending view_end, scheduled when its view_start is generated.
_SESSION = np.dtype(
    [
        ("ts", "i8"),
        ("room", "i8"),
        ("user", "i8"),
        ("region", "i4"),
        ("platform", "i4"),
        ("app_version", "i4"),
        ("creator_tier", "i4"),
        ("network", "i4"),
        ("value", "f8"),
    ]
)


class LiveModel:
    """The simulation over [start, start + duration); iterate :meth:`chunks` for EventFrames in time order.

    Deterministic: the same parameters, effects, seed, start and duration give the same events.
    """

    def __init__(
        self,
        params: ModelParams,
        *,
        seed: int,
        start: datetime,
        duration: timedelta,
        effects: Sequence[Effect] = (),
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be time-zone aware (UTC)")
        if duration <= timedelta(0):
            raise ValueError("duration must be positive")
        self.params = params
        self.seed = seed
        self.start = start.astimezone(UTC)
        self.duration = duration
        self.effects = tuple(effects)
        self.vocab = params.vocab()
        self._codes = {d: {v: i for i, v in enumerate(values)} for d, values in self.vocab.items()}
        for effect in self.effects:
            self._check_slice(effect.slice)
        self.start_ms = int(self.start.timestamp() * 1000)
        self.end_ms = self.start_ms + int(duration.total_seconds() * 1000)
        self.chunk_ms = chunk_seconds_for(params.rate) * 1000
        self.id_prefix = hashlib.blake2b(f"livewatch:{seed}".encode(), digest_size=4).hexdigest()

    def _check_slice(self, slice_: dict[str, str]) -> None:
        for dimension, value in slice_.items():
            if dimension not in self._codes:
                raise ValueError(f"unknown dimension {dimension!r} (known: {', '.join(DIMENSIONS)})")
            if value not in self._codes[dimension]:
                raise ValueError(f"unknown {dimension} {value!r} (known: {', '.join(self.vocab[dimension])})")

    def chunks(self) -> Iterator[EventFrame]:
        return _Simulation(self).run()


class _Simulation:
    """The running state of one pass over a LiveModel (rooms, pending sessions, counters)."""

    def __init__(self, model: LiveModel) -> None:
        p = model.params
        self.model = model
        self.p = p
        self.rng = np.random.default_rng(model.seed)
        rng = self.rng
        self.n_regions = len(p.regions)
        self.region_weight = np.array([r.weight for r in p.regions])
        self.region_weight /= self.region_weight.sum()
        self.region_offset_ms = np.array([r.utc_offset_hours * 3_600_000 for r in p.regions], dtype=np.int64)
        self.platform_share = np.array(list(p.platforms.values()))
        self.platform_share /= self.platform_share.sum()
        networks = list(p.network_stall_factor)
        self.network_share = np.array([[r.networks[n] for n in networks] for r in p.regions])
        self.network_share /= self.network_share.sum(axis=1, keepdims=True)
        self.stall_prob = (
            p.stall_probability
            * np.array([p.platform_stall_factor[x] for x in p.platforms])[:, None, None]
            * np.array([v.stall_factor for v in p.app_versions])[None, :, None]
            * np.array([p.network_stall_factor[n] for n in networks])[None, None, :]
        ).clip(0, 1)
        # Slow networks stall longer as well as more often.
        self.network_stall_ms = np.sqrt(np.array([p.network_stall_factor[n] for n in networks]))
        self.shape = (len(CELL_TYPES), self.n_regions, len(p.platforms), len(p.app_versions), len(networks))
        self.type_codes = np.array([EVENT_TYPE_CODE[t] for t in CELL_TYPES], dtype=np.int8)
        self.view_start_index = CELL_TYPES.index(EventType.VIEW_START)
        self.stall_index = CELL_TYPES.index(EventType.STALL)
        self.activity_share = np.array([_ACTIVITY_SHARES.get(t, 0.0) for t in CELL_TYPES])

        # Rooms: rank r has popularity (r+1)^-s; tiers by rank; home region, platform, network per creator.
        n_rooms = p.rooms
        self.popularity = 1.0 / np.arange(1, n_rooms + 1) ** p.zipf_exponent
        self.room_tier = np.array([tier_of_rank(rank, n_rooms) for rank in range(n_rooms)], dtype=np.int32)
        self.room_region = rng.choice(self.n_regions, size=n_rooms, p=self.region_weight).astype(np.int32)
        self.room_platform = rng.choice(len(p.platforms), size=n_rooms, p=self.platform_share).astype(
            np.int32
        )
        self.room_network = np.array(
            [rng.choice(len(networks), p=self.network_share[r]) for r in self.room_region], dtype=np.int32
        )
        self.room_id = np.arange(n_rooms, dtype=np.int64) + ROOM_ID_BASE
        self.creator_id = np.arange(n_rooms, dtype=np.int64) + CREATOR_ID_BASE
        # Streams: mean span per tier, and the share of time a tier's rooms are live on average.
        self.stream_mean_ms = np.array([3.0, 2.0, 1.0])[self.room_tier] * 3_600_000
        live_share = np.array([0.6, 0.35, 0.15])[self.room_tier]
        self.start_rate_per_ms = live_share / ((1 - live_share) * self.stream_mean_ms)
        t0 = model.start_ms
        self.live_start = np.full(n_rooms, np.iinfo(np.int64).min // 4, dtype=np.int64)
        self.live_end = np.full(n_rooms, t0 - 1, dtype=np.int64)
        live = rng.random(n_rooms) < live_share
        # In steady state a live stream's remaining time is its own length's residual: length-biased.
        remaining = self._stream_lengths(np.flatnonzero(live), length_biased=True) * rng.random(
            int(live.sum())
        )
        self.live_start[live] = t0 - 1
        self.live_end[live] = t0 + remaining.astype(np.int64) + 1

        self.users_per_region = p.users_per_region
        self.bot_base = self.n_regions * p.users_per_region
        self.pending: dict[int, list[np.ndarray]] = {}
        self.sequence = 0
        self._seed_sessions_in_progress()

    # -- helpers --------------------------------------------------------------------------------------

    def _stream_lengths(self, rooms: np.ndarray, *, length_biased: bool = False) -> np.ndarray:
        sigma = 0.6
        mu = np.log(self.stream_mean_ms[rooms]) - sigma**2 / 2
        if length_biased:
            mu = mu + sigma**2
        lengths = self.rng.lognormal(mu, sigma)
        return np.maximum(lengths, 5 * 60_000.0)

    def _watch_ms(self, n: int, *, length_biased: bool = False) -> np.ndarray:
        sigma = 1.2
        mu = np.log(self.p.watch_seconds_median * 1000)
        if length_biased:
            mu += sigma**2
        return np.clip(self.rng.lognormal(mu, sigma, n), 1000.0, 4 * 3_600_000.0)

    def _seasonality(self, t_ms: int) -> np.ndarray:
        """Activity per region at ``t_ms``: local hour-of-day curve (interpolated) times weekday factor."""
        local_ms = t_ms + self.region_offset_ms
        hours = (local_ms % 86_400_000) / 3_600_000
        low = np.floor(hours).astype(int)
        frac = hours - low
        daily = _HOURLY_ACTIVITY[low] * (1 - frac) + _HOURLY_ACTIVITY[(low + 1) % 24] * frac
        weekday = ((local_ms // 86_400_000) + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
        return np.asarray(daily * _WEEKDAY_ACTIVITY[weekday])

    def _version_share(self, t_ms: int) -> np.ndarray:
        """Share of users on each app version: newer versions take over from older ones as they roll out."""
        offset = t_ms - self.model.start_ms
        adopted = np.array(
            [
                v.adoption
                * np.clip(
                    (offset - v.released.total_seconds() * 1000) / (v.rollout.total_seconds() * 1000), 0, 1
                )
                for v in self.p.app_versions
            ]
        )
        share = np.zeros_like(adopted)
        remaining = 1.0
        for i in range(len(adopted) - 1, 0, -1):
            share[i] = remaining * adopted[i]
            remaining -= share[i]
        share[0] = remaining
        return share

    def _cell_mask(self, slice_: dict[str, str]) -> np.ndarray:
        """Boolean (region, platform, version, network) mask of the cells in a slice."""
        mask = np.ones(self.shape[1:], dtype=bool)
        for axis, dimension in enumerate(CELL_DIMENSIONS):
            if dimension in slice_:
                keep = np.zeros(self.shape[1 + axis], dtype=bool)
                keep[self.model._codes[dimension][slice_[dimension]]] = True
                mask &= keep.reshape([-1 if a == axis else 1 for a in range(4)])
        return mask

    def _type_mask(self, event_types: tuple[EventType, ...]) -> np.ndarray:
        return np.array([t in event_types for t in CELL_TYPES])

    def _region_users(self, regions: np.ndarray, share: float = 1.0) -> np.ndarray:
        span = max(1, int(self.users_per_region * share))
        return regions.astype(np.int64) * self.users_per_region + self.rng.integers(0, span, regions.shape[0])

    def _seed_sessions_in_progress(self) -> None:
        """Views already running at the start, so view_end and concurrency start at their steady level."""
        t0 = self.model.start_ms
        base = self._cell_rates(t0)[self.view_start_index]
        mean_watch_ms = self.p.watch_seconds_median * 1000 * np.exp(1.2**2 / 2)
        counts = self.rng.poisson(base * mean_watch_ms / 1000).reshape(-1)
        cells = np.repeat(np.arange(counts.size), counts)
        region, platform, version, network = np.unravel_index(cells, self.shape[1:])
        eligible = self.live_end > t0
        rooms = self._choose_rooms(cells.size, eligible, np.ones_like(self.popularity))
        length = self._watch_ms(cells.size, length_biased=True)
        ends = t0 + (length * self.rng.random(cells.size)).astype(np.int64)
        ends = np.minimum(ends, self.live_end[rooms])
        self._schedule(
            ends,
            rooms,
            self._region_users(region),
            region,
            platform,
            version,
            network,
            np.round(length / 1000, 1),
        )

    def _cell_rates(self, t_ms: int) -> np.ndarray:
        """Expected events per second per (type, region, platform, version, network), before effects."""
        regional = self.p.rate * self.region_weight * self._seasonality(t_ms)
        activity = (
            regional[:, None, None, None]
            * self.platform_share[None, :, None, None]
            * self._version_share(t_ms)[None, None, :, None]
            * self.network_share[:, None, None, :]
        )
        rates = self.activity_share[:, None, None, None, None] * activity[None]
        rates[self.stall_index] = rates[self.view_start_index] * self.stall_prob[None]
        return rates

    def _choose_rooms(self, n: int, eligible: np.ndarray, boost: np.ndarray) -> np.ndarray:
        weights = np.cumsum(self.popularity * boost * eligible)
        if n == 0 or weights[-1] <= 0:
            return np.zeros(0, dtype=np.int64) if n == 0 else np.full(n, int(np.argmax(self.popularity)))
        return np.searchsorted(weights, self.rng.random(n) * weights[-1], side="right").clip(
            0, len(weights) - 1
        )

    def _schedule(
        self,
        ends: np.ndarray,
        rooms: np.ndarray,
        users: np.ndarray,
        region: np.ndarray,
        platform: np.ndarray,
        version: np.ndarray,
        network: np.ndarray,
        value: np.ndarray,
    ) -> None:
        sessions = np.empty(ends.shape[0], dtype=_SESSION)
        sessions["ts"] = ends
        sessions["room"] = rooms
        sessions["user"] = users
        sessions["region"] = region
        sessions["platform"] = platform
        sessions["app_version"] = version
        sessions["creator_tier"] = self.room_tier[rooms]
        sessions["network"] = network
        sessions["value"] = value
        keep = ends < self.model.end_ms
        sessions = sessions[keep]
        chunk = (sessions["ts"] - self.model.start_ms) // self.model.chunk_ms
        order = np.argsort(chunk, kind="stable")
        sessions, chunk = sessions[order], chunk[order]
        boundaries = np.flatnonzero(np.diff(chunk)) + 1
        for part in np.split(sessions, boundaries):
            if part.size:
                key = int((part["ts"][0] - self.model.start_ms) // self.model.chunk_ms)
                self.pending.setdefault(key, []).append(part)

    # -- one chunk --------------------------------------------------------------------------------------

    def run(self) -> Iterator[EventFrame]:
        model = self.model
        for index, t0 in enumerate(range(model.start_ms, model.end_ms, model.chunk_ms)):
            frame = self._chunk(index, t0, min(t0 + model.chunk_ms, model.end_ms))
            if len(frame):
                yield frame

    def _active(self, t0: int, t1: int) -> list[Effect]:
        """Effects on this chunk: rates and values switch at chunk resolution (by the chunk's midpoint),
        a drop applies to exactly its span."""
        mid = (t0 + t1) // 2
        return [
            e
            for e in self.model.effects
            if (
                (e.start_ms < t1 and e.end_ms > t0)
                if isinstance(e, DropEffect)
                else (e.start_ms <= mid and (mid < e.end_ms or (isinstance(e, RateEffect) and e.persist)))
            )
        ]

    def _chunk(self, index: int, t0: int, t1: int) -> EventFrame:
        rng = self.rng
        dt_s = (t1 - t0) / 1000
        mid = (t0 + t1) // 2
        active = self._active(t0, t1)
        out = _Columns()

        # Streams: ends due in this chunk, then offline creators going live (evenings more likely).
        self._force_live(active, t0, t1, out)
        ending = np.flatnonzero((self.live_end >= t0) & (self.live_end < t1))
        self._stream_events(ending, self.live_end[ending], EventType.STREAM_END, out)
        offline = np.flatnonzero(self.live_end < t0)
        start_p = 1 - np.exp(
            -self.start_rate_per_ms[offline] * (t1 - t0) * self._seasonality(mid)[self.room_region[offline]]
        )
        starting = offline[rng.random(offline.size) < start_p]
        starts = t0 + (rng.random(starting.size) * (t1 - t0)).astype(np.int64)
        self.live_start[starting] = starts
        self.live_end[starting] = starts + self._stream_lengths(starting).astype(np.int64)
        self._stream_events(starting, starts, EventType.STREAM_START, out)
        eligible = (self.live_start < t1) & (self.live_end > t0)

        # Viewer activity: Poisson counts per cell on the seasonal, effect-modified rate.
        base = self._cell_rates(mid)
        multiplier = np.ones(self.shape)
        value_multiplier = np.ones(self.shape)
        for effect in active:
            if isinstance(effect, RateEffect):
                factor = effect.factor
                if effect.ramp and mid < effect.end_ms:
                    progress = (mid - effect.start_ms) / (effect.end_ms - effect.start_ms)
                    factor = 1 + (effect.factor - 1) * progress
                cells = self._cell_mask(effect.slice)
                for k in np.flatnonzero(self._type_mask(effect.event_types)):
                    multiplier[k][cells] *= factor
            elif isinstance(effect, ValueEffect):
                cells = self._cell_mask(effect.slice)
                for k in np.flatnonzero(self._type_mask(effect.event_types)):
                    value_multiplier[k][cells] *= effect.factor
        counts = rng.poisson(base * multiplier * dt_s)
        self._cell_events(counts, value_multiplier, t0, t1, eligible, None, None, out)

        for effect in active:
            if isinstance(effect, ExtraEffect) and effect.factor > 1:
                extra = base * multiplier * dt_s * (effect.factor - 1)
                extra[~self._type_mask(effect.event_types)] = 0
                extra[:, ~self._cell_mask(effect.slice)] = 0
                room = None
                if effect.room_rank is not None:
                    room = effect.room_rank
                    weights = self.popularity * eligible
                    extra *= weights[room] / max(weights.sum(), 1e-12)
                counts = rng.poisson(extra)
                self._cell_events(counts, value_multiplier, t0, t1, eligible, room, effect.users, out)

        # Views ending in this chunk (scheduled when they started).
        due = self.pending.pop(index, [])
        if due:
            sessions = np.concatenate(due)
            dims = {d: sessions[d] for d in DIMENSIONS}
            out.add(
                sessions["ts"],
                EVENT_TYPE_CODE[EventType.VIEW_END],
                sessions["room"],
                sessions["user"],
                dims,
                sessions["value"],
            )
        return self._frame(out, active)

    def _force_live(self, active: list[Effect], t0: int, t1: int, out: _Columns) -> None:
        """A room under a viral surge stays live for the whole surge."""
        for effect in active:
            if isinstance(effect, ExtraEffect) and effect.room_rank is not None:
                room = effect.room_rank
                if self.live_end[room] < t0:
                    self.live_start[room] = t0
                    self._stream_events(np.array([room]), np.array([t0]), EventType.STREAM_START, out)
                self.live_end[room] = max(int(self.live_end[room]), effect.end_ms + 600_000)

    def _stream_events(self, rooms: np.ndarray, ts: np.ndarray, kind: EventType, out: _Columns) -> None:
        if rooms.size == 0:
            return
        versions = self.rng.choice(self.shape[3], size=rooms.size, p=self._version_share(int(ts[0])))
        dims = {
            "region": self.room_region[rooms],
            "platform": self.room_platform[rooms],
            "app_version": versions,
            "creator_tier": self.room_tier[rooms],
            "network": self.room_network[rooms],
        }
        out.add(ts, EVENT_TYPE_CODE[kind], rooms, self.creator_id[rooms], dims, 0.0)

    def _cell_events(
        self,
        counts: np.ndarray,
        value_multiplier: np.ndarray,
        t0: int,
        t1: int,
        eligible: np.ndarray,
        room: int | None,
        bots: int | None,
        out: _Columns,
    ) -> None:
        rng = self.rng
        flat_counts = counts.reshape(-1)
        cells = np.repeat(np.arange(flat_counts.size), flat_counts)
        n = cells.size
        if n == 0:
            return
        kind, region, platform, version, network = np.unravel_index(cells, self.shape)
        if room is None:
            rooms = self._choose_rooms(n, eligible, np.ones_like(self.popularity))
        else:
            rooms = np.full(n, room, dtype=np.int64)
        lo = np.maximum(t0, self.live_start[rooms])
        hi = np.minimum(t1, self.live_end[rooms])
        ts = lo + (rng.random(n) * np.maximum(hi - lo, 1)).astype(np.int64)

        users = self._region_users(region)
        gifts = kind == CELL_TYPES.index(EventType.GIFT)
        users[gifts] = self._region_users(region[gifts], self.p.gifting_user_share)
        if bots is not None:
            users = self.bot_base + rng.integers(0, bots, n)

        value = np.zeros(n)
        stalls = kind == self.stall_index
        value[stalls] = np.round(
            rng.lognormal(np.log(self.p.stall_ms_median), 0.9, int(stalls.sum()))
            * self.network_stall_ms[network[stalls]]
        )
        value[gifts] = np.maximum(
            1,
            np.round(
                rng.lognormal(np.log(self.p.gift_coins_median), self.p.gift_coins_sigma, int(gifts.sum()))
            ),
        ).clip(max=1_000_000)
        value *= value_multiplier.reshape(-1)[cells]
        value = np.round(value)

        dims = {
            "region": region,
            "platform": platform,
            "app_version": version,
            "creator_tier": self.room_tier[rooms],
            "network": network,
        }
        out.add(ts, self.type_codes[kind], rooms, users, dims, value)

        views = np.flatnonzero(kind == self.view_start_index)
        watch = self._watch_ms(views.size)
        ends = np.minimum(ts[views] + watch.astype(np.int64), self.live_end[rooms[views]])
        self._schedule(
            ends,
            rooms[views],
            users[views],
            region[views],
            platform[views],
            version[views],
            network[views],
            np.round((ends - ts[views]) / 1000, 1),
        )

    def _frame(self, out: _Columns, active: list[Effect]) -> EventFrame:
        if not out.ts:
            return _empty_frame(self.model.vocab)
        ts = np.concatenate(out.ts)
        order = np.argsort(ts, kind="stable")
        rooms = np.concatenate(out.room)[order]
        dims = {d: np.concatenate(out.dims[d])[order] for d in DIMENSIONS}
        ts = ts[order]
        keep = np.ones(ts.shape[0], dtype=bool)
        for effect in active:
            if isinstance(effect, DropEffect):
                hit = (ts >= effect.start_ms) & (ts < effect.end_ms)
                for dimension, value in effect.slice.items():
                    hit &= dims[dimension] == self.model._codes[dimension][value]
                keep &= ~hit
        if not keep.all():
            order, ts, rooms = order[keep], ts[keep], rooms[keep]
            dims = {d: c[keep] for d, c in dims.items()}
        n = ts.shape[0]
        ids = _event_ids(self.model.id_prefix, self.sequence, n)
        self.sequence += n
        return EventFrame(
            event_id=ids,
            ts=ts,
            type=np.concatenate(out.type)[order],
            room_id=self.room_id[rooms],
            user_id=np.concatenate(out.user)[order],
            creator_id=self.creator_id[rooms],
            dims=dims,
            vocab=self.model.vocab,
            value=np.concatenate(out.value)[order],
        )


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_ID_SEQUENCE_DIGITS = 10


def _event_ids(prefix: str, first: int, n: int) -> list[str]:
    """``<prefix>-<sequence as 10 hex digits>`` for ``n`` consecutive sequence numbers (vectorised)."""
    head = f"{prefix}-".encode()
    width = len(head) + _ID_SEQUENCE_DIGITS
    matrix = np.empty((n, width), dtype=np.uint8)
    matrix[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    sequence = np.arange(first, first + n, dtype=np.int64)
    for k in range(_ID_SEQUENCE_DIGITS):
        matrix[:, width - 1 - k] = _HEX[(sequence >> (4 * k)) & 15]
    return matrix.view(f"S{width}").ravel().astype(f"U{width}").tolist()


def _empty_frame(vocab: dict[str, tuple[str, ...]]) -> EventFrame:
    return EventFrame(
        event_id=[],
        ts=np.zeros(0, np.int64),
        type=np.zeros(0, np.int8),
        room_id=np.zeros(0, np.int64),
        user_id=np.zeros(0, np.int64),
        creator_id=np.zeros(0, np.int64),
        dims={d: np.zeros(0, np.int32) for d in DIMENSIONS},
        vocab=vocab,
        value=np.zeros(0),
    )
