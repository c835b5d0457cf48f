"""Stem routing: which source plays on which output channel.

Sources: every stem of the model (its direct out: after its key change and chain, scaled by its own gain,
not by mute / solo / master), `mix` (the remix: mixer + mix chain + limiter), `dry` (the input, delayed to
line up with the remix) and `mic` (the singer's microphone after its chain, added without the separation
delay). `--route SOURCE=CHANNELS` (1-based, e.g. `accompaniment=1,2`, `vocals=3-4`, `mix=5`) is repeatable;
a stereo source on two channels plays left / right, on one channel as its mono sum (L+R)/2. Several sources
on one channel add up. Without `--route`, the mix plays on channels 1-2 (1 on a mono device); with
`--route`, only the given routes play. The mic, if not routed, plays wherever the mix does.

`--jack-ports` instead opens a JACK client with one named port pair per source: `mix_L`/`mix_R`, then
`STEM_L`/`STEM_R` per stem in the model's order, then `mic_L`/`mic_R` (see `jack_layout`).
Shapes: sources (C, n); the routed block is (K, n) with K the number of output channels.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.errors import UserError
from core.schema import build, setting

from .stem_mixer import soft_limit


@dataclass(frozen=True)
class Route:
    source: str
    channels: tuple[int, ...]     # 0-based output channels, 1 or 2


def parse_route(spec: str) -> Route:
    """`vocals=3,4` | `vocals=3-4` | `mix=1` -> Route (channels 0-based)."""
    usage = "expected --route SOURCE=CHANNELS with 1-based channels, e.g. vocals=3,4 or mix=1"
    source, sep, chans = spec.partition("=")
    if not sep or not source.strip() or not chans.strip():
        raise UserError(f"{usage}, got {spec!r}")
    parts = chans.replace("-", ",").split(",")
    try:
        channels = tuple(int(c) - 1 for c in parts)
    except ValueError:
        raise UserError(f"{usage}, got {spec!r}") from None
    if not 1 <= len(channels) <= 2 or min(channels) < 0 or len(set(channels)) != len(channels):
        raise UserError(f"{usage} (one or two distinct channels >= 1), got {spec!r}")
    return Route(source.strip(), channels)


def check_routes(routes, stems: tuple[str, ...], mic: bool) -> None:
    """Every route's source exists: a stem, mix, dry, or mic when there is one."""
    sources = (*stems, "mix", "dry", "mic")
    for r in routes:
        if r.source not in sources:
            raise UserError(f"--route {r.source}: unknown source; expected one of: {', '.join(sources)}")
        if r.source == "mic" and not mic:
            raise UserError("--route mic=...: there is no mic; expected --mic CHANNEL as well")


class Router:
    """Renders the routed (K, n) block from the sources at the model rate; the mic is added later, at
    the output rate, on `mic_channels`."""

    def __init__(self, routes: list[Route], stems: tuple[str, ...], mic: bool, out_channels: int | None = None,
                 port_names: list[str] | None = None):
        self.stems = tuple(stems)
        check_routes(routes, self.stems, mic)
        self.routes = [r for r in routes if r.source != "mic"]
        mic_routes = [r for r in routes if r.source == "mic"]
        if mic and not mic_routes:   # the mic plays wherever the mix does
            mic_routes = [Route("mic", r.channels) for r in self.routes if r.source == "mix"]
        self.mic_routes = mic_routes
        used = [c for r in routes for c in r.channels]
        self.n_channels = max(used) + 1 if used else 0
        if out_channels is not None and self.n_channels > out_channels:
            raise UserError(f"--route: channel {self.n_channels} does not exist; the output device has "
                            f"{out_channels} output channel{'s' if out_channels != 1 else ''} (see --list-devices)")
        self.uses_stems = any(r.source in self.stems for r in self.routes)
        self.uses_dry = any(r.source == "dry" for r in self.routes)
        self.port_names = port_names
        # Channels that carry something other than the (already limited) mix get the soft limiter.
        self._limit = sorted({c for r in self.routes if r.source != "mix" for c in r.channels})

    def mic_taps(self) -> list[tuple[int, int | None]]:
        """(output channel, mic channel 0 | 1, or None for the mono sum) for the callback to add the mic."""
        taps = []
        for r in self.mic_routes:
            if len(r.channels) == 2:
                taps += [(r.channels[0], 0), (r.channels[1], 1)]
            else:
                taps.append((r.channels[0], None))
        return taps

    def render(self, direct: np.ndarray | None, mix: np.ndarray, dry: np.ndarray | None,
               threshold: float, ceiling: float) -> np.ndarray:
        """direct (S, C, n) routed stems, mix (C, n), dry (C, n) -> (K, n) float32."""
        n = mix.shape[-1]
        out = np.zeros((self.n_channels, n), np.float32)
        for r in self.routes:
            if r.source == "mix":
                src = mix
            elif r.source == "dry":
                src = dry
            else:
                src = direct[self.stems.index(r.source)]
            if len(r.channels) == 2:
                out[r.channels[0]] += src[0]
                out[r.channels[1]] += src[-1]
            else:
                out[r.channels[0]] += src.mean(0)
        for c in self._limit:
            soft_limit(out[c], threshold, ceiling)
        return out

    def describe(self) -> list[dict]:
        return [{"source": r.source, "channels": [c + 1 for c in r.channels]} for r in (*self.routes, *self.mic_routes)]


def default_routes(out_channels: int) -> list[Route]:
    return [Route("mix", (0, 1) if out_channels >= 2 else (0,))]


def jack_layout(stems: tuple[str, ...], mic: bool) -> tuple[list[Route], list[str]]:
    """`--jack-ports`: mix, each stem, then the mic, one named L/R port pair each."""
    sources = ["mix", *stems] + (["mic"] if mic else [])
    routes, names = [], []
    for i, s in enumerate(sources):
        routes.append(Route(s, (2 * i, 2 * i + 1)))
        names += [f"{s}_L", f"{s}_R"]
    if mic:   # the mic also plays in the mix, as without --jack-ports
        routes.append(Route("mic", (0, 1)))
    return routes, names


@dataclass(frozen=True)
class RoutingConfig:
    """`config.yaml` section `routing`."""

    jack_client_name: str = "tfswa-live"     # the JACK client `--jack-ports` / `--input jack:` opens
    connect: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"mix": ("system:playback",)})
    follow_interval_s: float = setting(0.2, gt=0.0, le=5.0)

    @classmethod
    def from_config(cls, config: dict) -> RoutingConfig:
        return build(cls, config.get("routing"), "config routing")
