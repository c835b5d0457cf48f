"""Real recorded vocals over rendered or real accompaniment, and the real validation songs.

The shared data folder (`../shared/data`, see its README) holds the multitrack songs of "Everything is
Free" by Software-Entwicklungskit (`eif/<song>/{vocals,accompaniment}.ogg`, CC0 1.0) and one solo
singing clip (`vocals-only/vocadito_1.flac`, CC BY 4.0: vocadito, Bittner, Pasalo, Bosch,
Meseguer-Brocal and Rubinstein, 2021). Nothing of it is copied into the repository: it is read where it
lies, and a missing folder is a one-line error (or a skipped test), never a crash.

Two `--data` sources come from here:

    real-vocals[:ROOT]   training: a real vocal excerpt (an eif training song's vocals or the solo clip) with
                         its own key (pitch shift) and tempo (time stretch), at a drawn vocal-to-accompaniment
                         level, over rendered song-engine accompaniment, another eif training song's real
                         accompaniment, or its own song's accompaniment (then both shifted alike);
                         validation: the eif validation songs (below)
    eif-valid[:ROOT]     validation only: fixed excerpts of the eif validation songs (real mixtures: vocals +
                         accompaniment, sample for sample), where vocals sound

Leakage guard: `RealVocalLibrary` refuses the eif validation songs (Caesium, Francium), anything under the
MUSDB18 excerpt folder `dev/` and the stempeg demo clip: those are for validation and measurement only.
A virtual training track is a pure function of (seed, index). Shapes: stems (2, N) float32.
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from model import ConfigError, load_config
from model.schema import build, setting

from .data import DataError, Source, _fit, _to_stereo

ENV_ROOT = "TFSWA_SHARED_DATA"
CREDIT = ("vocadito (Bittner, Pasalo, Bosch, Meseguer-Brocal, Rubinstein, 2021), CC BY 4.0; "
          "'Everything is Free' stems by Software-Entwicklungskit, CC0 1.0")
FRAME_S = 0.05  # activity frames


@dataclass(frozen=True)
class RealVocalsConfig:
    """The `real_vocals` section of config.yaml (see there for what each key means); every key required,
    checked by model.schema from these fields, cross-field rules in __post_init__."""

    root: str | None
    train_songs: tuple[str, ...]
    valid_songs: tuple[str, ...]
    solo_clips: tuple[str, ...]
    solo_share: float = setting(ge=0, le=1)
    track_seconds: float = setting(gt=0, le=600)
    track_count: int = setting(ge=1)
    min_sung_fraction: float = setting(ge=0, lt=1)
    sung_floor_db: float = setting(le=0)
    accompaniment: dict[str, float] = setting(ge=0)  # noqa: RUF009 - metadata only, no default
    semitones: tuple[float, float] = setting(ge=-24, le=24)
    pitch_shift_probability: float = setting(ge=0, le=1)
    preserve_formants_probability: float = setting(ge=0, le=1)
    stretch: tuple[float, float] = setting(gt=0, le=4)
    stretch_probability: float = setting(ge=0, le=1)
    vocal_to_accompaniment_db: tuple[float, float] = setting(ge=-60, le=60)
    vocal_to_accompaniment_mode_db: float = setting(ge=-60, le=60)
    mix_rms_dbfs: tuple[float, float] = setting(ge=-80, le=0)
    limiter_ceiling: tuple[float, float] = setting(gt=0, le=1)
    limiter_release_ms: float = setting(gt=0)
    valid_excerpt_seconds: float = setting(gt=0)
    valid_excerpts: dict[str, tuple[float, ...]] = setting(ge=0)  # noqa: RUF009 - metadata only, no default

    def __post_init__(self) -> None:
        if self.root == "":
            object.__setattr__(self, "root", None)
        for k in ("semitones", "stretch", "vocal_to_accompaniment_db", "mix_rms_dbfs", "limiter_ceiling"):
            low, high = getattr(self, k)
            if low > high:
                raise ConfigError(f"config real_vocals.{k}: expected [low, high] with low <= high, got {[low, high]}")
        overlap = {s.lower() for s in self.train_songs} & {s.lower() for s in self.valid_songs}
        if overlap:
            raise ConfigError(f"real_vocals: songs {sorted(overlap)} are both training and validation songs")
        if not set(self.valid_excerpts) <= set(self.valid_songs):
            raise ConfigError(f"config real_vocals.valid_excerpts: expected excerpts of validation songs "
                              f"{list(self.valid_songs)} only, got {sorted(self.valid_excerpts)}")
        if set(self.accompaniment) - {"songs", "real", "own"} or sum(self.accompaniment.values()) <= 0:
            raise ConfigError("config real_vocals.accompaniment: expected weights for songs, real, own (sum > 0), "
                              f"got {self.accompaniment}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RealVocalsConfig:
        """Build from a `real_vocals` mapping; None reads the section from the project's config.yaml."""
        if d is None:
            d = load_config().get("real_vocals")
            if d is None:
                raise ConfigError("config.yaml: expected a `real_vocals` section, found none")
        return build(cls, d, "config real_vocals")


# -- where the data lies, and what must never be trained on ----------------------------------------------
def find_data_root(explicit: str | Path | None = None, configured: str | None = None) -> Path:
    """The shared data folder: `explicit`, else $TFSWA_SHARED_DATA, else `configured` (relative to the
    repository), else the nearest `shared/data` beside the repository or one of its parents.

    Raises DataError with the places it looked when none holds an `eif/` folder."""
    repo = Path(__file__).resolve().parent.parent
    if explicit:
        cands = [Path(explicit).expanduser()]
    elif os.environ.get(ENV_ROOT):
        cands = [Path(os.environ[ENV_ROOT]).expanduser()]
    elif configured:
        p = Path(configured).expanduser()
        cands = [p if p.is_absolute() else repo / p]
    else:
        cands = [d / "shared" / "data" for d in (repo, *repo.parents)]
    for c in cands:
        if (c / "eif").is_dir():
            return c.resolve()
    looked = ", ".join(str(c) for c in cands[:4]) + (" ..." if len(cands) > 4 else "")
    raise DataError(f"real vocals: no shared data folder with eif/<song>/vocals.ogg found (looked in {looked}); "
                    f"expected ../shared/data, or pass real-vocals:/path or set ${ENV_ROOT}")


def measurement_only(root: Path, cfg: RealVocalsConfig) -> list[Path]:
    """Files and folders that are for validation / measurement only: never trained on."""
    out = [root / "eif" / s for s in cfg.valid_songs] + [root / "dev"]
    try:
        import stempeg

        demo = Path(stempeg.example_stem_path())
    except Exception:  # noqa: BLE001 - without stempeg there is no demo clip to guard
        demo = None
    out += [demo] if demo else []
    return [p.resolve() for p in out]


def refuse_measurement_data(path: Path, root: Path, cfg: RealVocalsConfig) -> None:
    """Raise DataError when `path` is (inside) validation / measurement material."""
    p = Path(path).resolve()
    for bad in measurement_only(root, cfg):
        if p == bad or bad in p.parents:
            raise DataError(f"real vocals: refusing to train on {p}: it is validation / measurement material "
                            "(eif validation songs, the MUSDB18 excerpt in dev/, the stempeg demo clip)")


def sung_frames(x: np.ndarray, sr: int, floor_db: float) -> np.ndarray:
    """(C, N) -> (N // frame,) bool: 50 ms frames within `floor_db` of the clip's loud level (99th percentile
    frame) and above -50 dBFS, i.e. where the voice sounds (an excerpt of reverb tails alone does not)."""
    hop = int(FRAME_S * sr)
    m = x.shape[-1] // hop
    if m == 0:
        return np.zeros(0, bool)
    e = np.mean(np.square(x[..., :m * hop], dtype=np.float64).reshape(-1, m, hop), axis=(0, 2))
    loud = np.percentile(e, 99)
    return e > max(loud * 10 ** (floor_db / 10), 1e-5)


@dataclass(frozen=True)
class _Clip:
    name: str
    vocals: Path
    accompaniment: Path | None  # None: solo singing without its own accompaniment
    frames: int
    sample_rate: int
    dry: bool  # True: a dry solo recording that gets a produced vocal chain


class RealVocalLibrary:
    """The real vocal clips allowed for training: eif training songs and solo clips, never measurement data."""

    def __init__(self, root: Path, cfg: RealVocalsConfig, songs: tuple[str, ...] | None = None,
                 solo_clips: tuple[str, ...] | None = None):
        self.root = Path(root)
        self.cfg = cfg
        songs = cfg.train_songs if songs is None else songs
        solo_clips = cfg.solo_clips if solo_clips is None else solo_clips
        valid = {s.lower() for s in cfg.valid_songs}
        for s in songs:  # every refusal before any file is opened
            if s.lower() in valid:
                raise DataError(f"real vocals: refusing to train on eif song {s!r}: it is a validation song "
                                f"({', '.join(cfg.valid_songs)} are for validation and measurement only)")
            refuse_measurement_data(self.root / "eif" / s, self.root, cfg)
        for c in solo_clips:
            refuse_measurement_data(self.root / c, self.root, cfg)
        self.songs = [self._clip(s, self.root / "eif" / s / "vocals.ogg", self.root / "eif" / s / "accompaniment.ogg",
                                 dry=False) for s in songs]
        self.solo = [self._clip(Path(c).stem, self.root / c, None, dry=True) for c in solo_clips]
        if not self.songs and not self.solo:
            raise DataError("real vocals: no training clips configured (real_vocals.train_songs / solo_clips)")

    def _clip(self, name: str, vocals: Path, acc: Path | None, dry: bool) -> _Clip:
        for p in (vocals, acc):
            if p is not None and not p.is_file():
                raise DataError(f"real vocals: expected {p} (see {self.root / 'README.md'}), it does not exist")
        info = sf.info(str(vocals))
        frames = info.frames
        if acc is not None:
            frames = min(frames, sf.info(str(acc)).frames)
        return _Clip(name, vocals, acc, int(frames), int(info.samplerate), dry)


def _read(path: Path, start: int, n: int, sample_rate: int) -> np.ndarray:
    """`n` samples at `sample_rate` of a file from its sample `start` (at the file's own rate) -> (2, n) float32."""
    rate = sf.info(str(path)).samplerate
    native = math.ceil(n * rate / sample_rate) + (64 if rate != sample_rate else 0)
    x = _to_stereo(sf.read(str(path), start=max(0, start), frames=native, dtype="float32", always_2d=True)[0].T)
    if rate != sample_rate and x.shape[-1]:
        import soxr

        x = np.ascontiguousarray(soxr.resample(x.T, rate, sample_rate).T, dtype=np.float32)
    return _fit(x, n)


def _transform(x: np.ndarray, sr: int, stretch: float, semitones: float, formants: bool, n: int) -> np.ndarray:
    """Rubber Band (pedalboard) time stretch (factor > 1: faster) and pitch shift -> (2, n)."""
    if stretch == 1.0 and semitones == 0.0:
        return _fit(x, n)
    from pedalboard import time_stretch

    y = time_stretch(np.ascontiguousarray(x, np.float32), float(sr), stretch_factor=float(stretch),
                     pitch_shift_in_semitones=float(semitones), preserve_formants=bool(formants),
                     high_quality=False)  # Rubber Band R2 "faster": half the CPU of R3 (0.06 s per s of stereo)
    return _fit(np.asarray(y, np.float32), n)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


class RealVocalTracks(Source):
    """Virtual tracks {vocals, accompaniment} of `track_seconds`: a real vocal excerpt over accompaniment.

    Track `i` is a pure function of (seed, i): which clip and where, its key and tempo change, the
    accompaniment (rendered song, real eif accompaniment of another place/song, or its own), the levels.
    The mixture (the sum of the two stems) is loudness-normalised and limited by the song engine's linked
    limiter, so it never clips and stays the exact sum of the stems."""

    stems = ("vocals", "accompaniment")

    def __init__(self, root: Path, seed: int, sample_rate: int, cfg: RealVocalsConfig | None = None,
                 song_valid: int = 0, cache: int = 2, songs_config: dict[str, Any] | None = None):
        self.cfg = cfg or RealVocalsConfig.from_dict(None)
        self.root = Path(root)
        self.library = RealVocalLibrary(self.root, self.cfg)
        self.name = f"real-vocals:{self.root}/train"
        self.seed = int(seed)
        self.sample_rate = int(sample_rate)
        self.length = round(self.cfg.track_seconds * self.sample_rate)
        self.song_valid = int(song_valid)  # the song engine's last indices validate: never used here
        self._songs = None
        self._songs_config = songs_config  # the `songs` section for rendered accompaniment (None: config.yaml)
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._cache_size = cache

    def __len__(self) -> int:
        return self.cfg.track_count

    def track_name(self, i: int) -> str:
        return f"real-vocals #{i}"

    def track_length(self, i: int) -> int:
        return self.length

    def read(self, i: int, stems: list[str], start: int, n: int) -> np.ndarray:
        track = self.track(i)
        return np.stack([_fit(track[s][:, start:start + n], n) for s in stems])

    def __getstate__(self) -> dict:  # workers start with an empty cache and their own song engine
        d = dict(self.__dict__)
        d["_cache"] = OrderedDict()
        d["_songs"] = None
        return d

    def track(self, i: int) -> dict[str, np.ndarray]:
        """Virtual track `i` -> {"vocals": (2, N), "accompaniment": (2, N)} float32, N = track_seconds * rate."""
        if not 0 <= int(i) < len(self):
            raise IndexError(f"real-vocals track {i} out of range 0..{len(self) - 1}")
        if i not in self._cache:
            self._cache[i] = self._make(int(i))
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(i)
        return self._cache[i]

    # -- one track ----------------------------------------------------------------------------------
    def _make(self, i: int) -> dict[str, np.ndarray]:
        cfg, sr, n = self.cfg, self.sample_rate, self.length
        rng = np.random.default_rng([self.seed, i, 0x7EA1])
        lib = self.library
        solo = bool(lib.solo) and (not lib.songs or rng.random() < cfg.solo_share)
        pool = lib.solo if solo else lib.songs
        clip = pool[int(rng.integers(len(pool)))]
        stretch = float(rng.uniform(*cfg.stretch)) if rng.random() < cfg.stretch_probability else 1.0
        semis = float(rng.uniform(*cfg.semitones)) if rng.random() < cfg.pitch_shift_probability else 0.0
        formants = bool(rng.random() < cfg.preserve_formants_probability)
        need = math.ceil(n * stretch) + (4096 if stretch != 1.0 or semis != 0.0 else 0)
        start, voc = self._sung_excerpt(clip, need, rng)
        w = cfg.accompaniment
        kinds = [k for k in ("songs", "real", "own") if w.get(k, 0) > 0 and (k != "own" or clip.accompaniment)
                 and (k != "real" or lib.songs)]
        p = np.array([w[k] for k in kinds])
        kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
        if kind == "own":  # the real mixture, at another key and tempo: both stems alike
            acc = _read(clip.accompaniment, start, need, sr)
            acc = _transform(acc, sr, stretch, semis, formants, n)
        elif kind == "real":  # another place of an eif training song: unrelated key and tempo, real production
            other = lib.songs[int(rng.integers(len(lib.songs)))]
            a_start = int(rng.integers(0, max(1, other.frames - n)))
            acc = _read(other.accompaniment, a_start, n, sr)
        else:
            acc = self._song_accompaniment(int(rng.integers(0, max(1, self._song_count() - self.song_valid))))
        voc = _transform(voc, sr, stretch, semis, formants, n)
        if clip.dry:
            from .songs.production import pan_mono, vocal_chain

            voc = vocal_chain(pan_mono(voc.mean(0), float(rng.uniform(-0.1, 0.1))), rng, sr,
                              float(rng.uniform(70, 160)), lead=True)
        return self._level(voc, acc, rng)

    def _sung_excerpt(self, clip: _Clip, need: int, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        """A start and (2, need) excerpt of the clip's vocals where the voice sounds enough (a few draws)."""
        native = math.ceil(need * clip.sample_rate / self.sample_rate)  # the excerpt's length in the file
        best: tuple[float, int, np.ndarray] | None = None
        for _ in range(8):
            s = int(rng.integers(0, max(1, clip.frames - native)))
            x = _read(clip.vocals, s, need, self.sample_rate)
            frac = float(sung_frames(x, self.sample_rate, self.cfg.sung_floor_db).mean()) if x.size else 0.0
            frac *= float(_rms(x) > 1e-4)
            if best is None or frac > best[0]:
                best = (frac, s, x)
            if frac >= self.cfg.min_sung_fraction:
                break
        assert best is not None
        return best[1], best[2]

    def _song_count(self) -> int:
        return len(self._song_source())

    def _song_source(self):
        if self._songs is None:
            from .songs import SongSource

            self._songs = SongSource(seed=self.seed, sample_rate=self.sample_rate, seconds=self.cfg.track_seconds,
                                     config=self._songs_config)
        return self._songs

    def _song_accompaniment(self, index: int) -> np.ndarray:
        return self._song_source().accompaniment(index)

    def _level(self, voc: np.ndarray, acc: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Vocal-to-accompaniment ratio over the sung frames, mixture loudness, linked limiter."""
        from .songs.production import linked_limiter_gain

        cfg, sr = self.cfg, self.sample_rate
        voc = voc.astype(np.float64)
        acc = acc.astype(np.float64)
        sung = np.repeat(sung_frames(voc, sr, cfg.sung_floor_db), int(FRAME_S * sr))
        sung = np.pad(sung, (0, voc.shape[-1] - len(sung)))
        if sung.any() and _rms(voc[:, sung]) > 1e-9:
            lo, hi = cfg.vocal_to_accompaniment_db
            var_db = float(rng.triangular(lo, min(max(cfg.vocal_to_accompaniment_mode_db, lo), hi), hi))
            a = _rms(acc[:, sung])
            voc *= 10 ** (var_db / 20) * (a if a > 1e-9 else 0.1) / _rms(voc[:, sung])
        mix = voc + acc
        r = _rms(mix)
        if r > 1e-9:
            g = 10 ** (float(rng.uniform(*cfg.mix_rms_dbfs)) / 20) / r
            voc, acc, mix = voc * g, acc * g, mix * g
        gain = linked_limiter_gain(mix, float(rng.uniform(*cfg.limiter_ceiling)),
                                   int(cfg.limiter_release_ms * sr / 1000))
        return {"vocals": (voc * gain).astype(np.float32), "accompaniment": (acc * gain).astype(np.float32)}


class RealValidTracks(Source):
    """The eif validation songs as fixed excerpts where vocals sound: real mixtures (vocals + accompaniment).

    The excerpts are `real_vocals.valid_excerpts` (start seconds per song) of `valid_excerpt_seconds` each:
    a documented fixed set, chosen once by `valid_excerpt_starts` (the windows with the most singing).
    Deterministic; no augmentation."""

    stems = ("vocals", "accompaniment")

    def __init__(self, root: Path, sample_rate: int, cfg: RealVocalsConfig | None = None):
        self.cfg = cfg or RealVocalsConfig.from_dict(None)
        self.root = Path(root)
        self.name = f"eif-valid:{self.root}"
        self.sample_rate = int(sample_rate)
        self.length = round(self.cfg.valid_excerpt_seconds * self.sample_rate)
        self.excerpts: list[tuple[str, Path, Path, int]] = []  # (name, vocals, accompaniment, start at file rate)
        for song, starts in self.cfg.valid_excerpts.items():
            d = self.root / "eif" / song
            voc, acc = d / "vocals.ogg", d / "accompaniment.ogg"
            for p in (voc, acc):
                if not p.is_file():
                    raise DataError(f"eif-valid: expected {p} (see {self.root / 'README.md'}), it does not exist")
            rate = sf.info(str(voc)).samplerate
            self.excerpts += [(f"{song}@{t:g}s", voc, acc, round(t * rate)) for t in starts]

    def __len__(self) -> int:
        return len(self.excerpts)

    def track_name(self, i: int) -> str:
        return self.excerpts[i][0]

    def track_length(self, i: int) -> int:
        return self.length

    def read(self, i: int, stems: list[str], start: int, n: int) -> np.ndarray:
        _, voc, acc, s0 = self.excerpts[i]
        files = {"vocals": voc, "accompaniment": acc}
        rate = sf.info(str(voc)).samplerate
        first = s0 + round(start * rate / self.sample_rate)
        count = max(0, min(n, self.length - start))  # nothing past the excerpt's end
        return np.stack([_fit(_read(files[s], first, count, self.sample_rate), n) for s in stems])


def valid_excerpt_starts(vocals: Path, seconds: float, count: int, floor_db: float) -> list[float]:
    """Start times (s) of the `count` non-overlapping windows of `seconds` with the most sung 50 ms frames
    (1 s grid, earliest first on ties), in time order: how `real_vocals.valid_excerpts` was chosen."""
    x, rate = sf.read(str(vocals), dtype="float32", always_2d=True)
    on = sung_frames(x.T, rate, floor_db).astype(np.float64)
    per_s = round(1 / FRAME_S)
    win = round(seconds / FRAME_S)
    if len(on) < win:
        return [0.0]
    csum = np.concatenate([[0.0], np.cumsum(on)])
    starts = np.arange(0, len(on) - win + 1, per_s)
    score = csum[starts + win] - csum[starts]
    chosen: list[int] = []
    for j in np.lexsort((starts, -score)):  # most sung first, then earliest
        s = int(starts[j])
        if all(abs(s - c) >= win for c in chosen):
            chosen.append(s)
        if len(chosen) == count:
            break
    return [round(c * FRAME_S, 3) for c in sorted(chosen)]


def build_real_source(scheme: str, path: str, split: str, sample_rate: int, seed: int,
                      song_valid: int = 0) -> Source | None:
    """`--data real-vocals[:ROOT]` / `eif-valid[:ROOT]` and a split -> Source (None: no training part)."""
    cfg = RealVocalsConfig.from_dict(None)
    root = find_data_root(path or None, cfg.root)
    if split == "valid":
        return RealValidTracks(root, sample_rate, cfg)
    if scheme == "eif-valid":
        return None
    return RealVocalTracks(root, seed, sample_rate, cfg, song_valid=song_valid)
