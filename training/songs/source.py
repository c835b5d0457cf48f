"""SongSource: deterministic excerpts of procedurally composed, sample-rendered multitrack songs."""
from __future__ import annotations

from typing import Any

import numpy as np

from core.errors import ConfigError
from training.songs.compose import Song, compose_song
from training.songs.instruments import render_stems
from training.songs.production import activity, instrument_chain, master, pan_mono, vocal_chain
from training.songs.settings import SongsConfig
from training.songs.voice import Singer, sing

STEMS = ("vocals", "drums", "bass", "other")


class SongSource:
    """An endless, indexable set of songs: `song(index)` -> {"vocals", "drums", "bass", "other"}: (2, N) float32.

    N = round(seconds * sample_rate). Each excerpt is deterministic in (seed, index) and its mixture
    (the sum of the four stems) never exceeds the limiter ceiling (< 1.0).
    """

    def __init__(self, seed: int = 0, sample_rate: int = 44100, seconds: float = 12.0,
                 config: dict[str, Any] | None = None):
        if not (isinstance(seed, (int, np.integer)) and seed >= 0):
            raise ConfigError(f"SongSource: expected a non-negative integer seed, got {seed!r}")
        if not (8000 <= int(sample_rate) <= 192000):
            raise ConfigError(f"SongSource: expected a sample rate in 8000..192000 Hz, got {sample_rate}")
        if not (0 < float(seconds) <= 600):
            raise ConfigError(f"SongSource: expected 0 < seconds <= 600, got {seconds}")
        self.seed = int(seed)
        self.sample_rate = int(sample_rate)
        self.seconds = float(seconds)
        self.length = round(self.seconds * self.sample_rate)
        self.config = SongsConfig.from_dict(config)

    def __len__(self) -> int:
        return self.config.song_count

    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= int(index) < len(self):
            raise IndexError(f"song index {index} out of range 0..{len(self) - 1}")
        return np.random.default_rng([self.seed, int(index), 0x50495])

    def plan(self, index: int) -> tuple[Song, float, np.random.Generator]:
        """Compose song `index` and choose its excerpt: (song, excerpt start in seconds, rng for rendering)."""
        rng = self._rng(index)
        fonts = self.config.available_soundfonts()
        paths = sorted(fonts)
        w = np.array([fonts[p] for p in paths])
        soundfont = paths[int(rng.choice(len(paths), p=w / w.sum()))]
        song = compose_song(rng, self.config, f"s{self.seed}_{int(index):07d}", soundfont)
        song.name = f"{song.name}_{song.groove}_{round(song.tempo)}bpm"
        latest = max(0.0, song.duration - self.seconds)
        bounds = [s.start for s in song.sections[1:]]
        if bounds and rng.random() < 0.6:  # most excerpts span a section change
            start = float(bounds[int(rng.integers(len(bounds)))] - rng.uniform(0.2, 0.8) * self.seconds)
        else:
            start = float(rng.uniform(0, latest))
        return song, float(np.clip(start, 0.0, latest)), rng

    def name(self, index: int) -> str:
        return self.plan(index)[0].name

    def song(self, index: int) -> dict[str, np.ndarray]:
        """Render the excerpt of song `index`: stem name -> (2, N) float32."""
        song, start, rng = self.plan(index)
        return self.render(song, start, rng)

    def accompaniment(self, index: int) -> np.ndarray:
        """The excerpt of song `index` without its singing: drums + bass + other, mixed and limited as
        `song(index)` would (but levelled without a vocal) -> (2, N) float32. Not the same draw as `song`."""
        song, start, rng = self.plan(index)
        stems = self.render(song, start, rng, singing=False)
        return np.sum([stems[k] for k in ("drums", "bass", "other")], axis=0, dtype=np.float32)

    def render(self, song: Song, start: float, rng: np.random.Generator, singing: bool = True) -> dict[str, np.ndarray]:
        """Render `self.seconds` of `song` from `start` (a pre-roll is rendered and dropped).

        `singing=False` skips the singing (a silent vocal stem), for real vocals over this accompaniment."""
        sr, n = self.sample_rate, self.length
        pre = round(self.config.preroll_seconds * sr)
        t0 = start - pre / sr
        total = n + pre
        stems: dict[str, np.ndarray] = {}
        rendered = render_stems(song.parts, song.soundfont, t0, total, sr)
        for stem in ("drums", "bass", "other"):
            audio = rendered.get(stem, np.zeros((2, total), np.float32))
            stems[stem] = instrument_chain(stem, audio, rng, sr)[:, pre:]
        vc = self.config.vocals
        lead = np.zeros((2, total), np.float32)
        backing = np.zeros((2, total), np.float32)
        for line in song.vocals if singing else ():
            singer = Singer.from_seed(line.singer_seed, line.female, vc.vibrato_rate_hz, vc.vibrato_depth_cents)
            dry = sing(line.notes, singer, t0, total, sr, rng) * np.float32(10 ** (line.gain_db / 20))
            if line.role == "lead":
                lead += pan_mono(dry, line.pan)
            else:
                backing += pan_mono(dry, line.pan)
        vocals = vocal_chain(lead, rng, sr, song.tempo, lead=True) if singing else lead
        if np.any(backing):
            vocals += vocal_chain(backing, rng, sr, song.tempo, lead=False)
        stems["vocals"] = vocals[:, pre:]
        for k, v in stems.items():
            stems[k] = np.nan_to_num(v[:, :n])
        mask = activity(stems["vocals"], sr)
        out = master(stems, mask, rng, self.config.mix, sr)
        return {k: np.ascontiguousarray(out[k]) for k in STEMS}
