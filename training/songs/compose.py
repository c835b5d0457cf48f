"""Song composition as MIDI-like note events: form, harmony, grooves, bass, comping, melodies.

Everything is drawn from one numpy Generator, so a song is a pure function of its seed. Times are in
seconds from the start of the song; pitches are MIDI note numbers (vocal pitches may be fractional).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from training.songs.settings import SongsConfig
from training.songs.styles import GROOVES, MODES

# Chord progressions as scale degrees (0 = tonic); the first list suits major-like modes.
PROGRESSIONS_MAJOR = [(0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 4, 3), (0, 3, 0, 4), (1, 4, 0, 0),
                      (0, 2, 3, 4), (3, 4, 0, 5), (0, 4, 3, 3), (0, 6, 3, 0), (3, 0, 4, 5)]
PROGRESSIONS_MINOR = [(0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 5, 6, 0), (0, 3, 6, 2), (0, 0, 5, 6),
                      (5, 6, 0, 0), (0, 3, 0, 4), (3, 4, 0, 0)]

FORMS = [
    [("intro", 4), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("bridge", 8), ("chorus", 8),
     ("outro", 4)],
    [("intro", 4), ("verse", 8), ("prechorus", 4), ("chorus", 8), ("verse", 8), ("prechorus", 4), ("chorus", 8),
     ("solo", 8), ("chorus", 8), ("outro", 4)],
    [("intro", 8), ("verse", 16), ("chorus", 8), ("solo", 8), ("verse", 8), ("chorus", 16), ("outro", 4)],
    [("intro", 2), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("bridge", 4), ("solo", 8),
     ("chorus", 8), ("outro", 8)],
]

# GM percussion keys.
KICK, SNARE, SIDESTICK, CLAP, HAT_CLOSED, HAT_PEDAL, HAT_OPEN, CRASH, RIDE = 36, 38, 37, 39, 42, 44, 46, 49, 51
TOMS = (50, 48, 47, 45, 43, 41)

ONSETS = ["", "", "", "l", "m", "n", "s", "t", "d", "k", "b", "h", "w", "y", "r", "sh", "f", "g", "p", "v", "th",
          "ch", "st", "br", "tr", "fl", "gr", "sl", "kr"]
VOWELS = ["a", "a", "e", "i", "i", "o", "u", "ae", "ah", "ah", "I", "U", "er", "ai", "ai", "ei", "ou", "au"]
CODAS = ["", "", "", "", "", "", "n", "n", "m", "t", "s", "l", "d", "ng", "k", "r", "z"]


@dataclass(frozen=True)
class Note:
    """One instrument note: start and duration in seconds, MIDI pitch, MIDI velocity."""

    start: float
    duration: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class VocalNote:
    """One sung note: a syllable (onset consonants, vowel, coda consonants) on a pitch.

    `slur` marks a melisma: the note continues the previous syllable's vowel with a glide.
    """

    start: float
    duration: float
    pitch: float
    velocity: float
    onset: str
    vowel: str
    coda: str
    slur: bool = False


@dataclass
class Part:
    """An instrument part rendered through the soundfont on its own MIDI channel."""

    name: str
    stem: str
    channel: int
    program: int
    bank: int
    pan: float
    volume: int
    notes: list[Note] = field(default_factory=list)
    bends: list[tuple[float, float]] = field(default_factory=list)  # (seconds, semitones) pitch-wheel breakpoints


@dataclass
class VocalLine:
    """A sung line (lead, double, harmony, octave, backing, adlib) with the singer's identity and its place in
    the stereo field. Every role but `lead` goes to the backing vocal bus."""

    role: str
    singer_seed: int
    female: bool
    pan: float
    gain_db: float
    notes: list[VocalNote] = field(default_factory=list)


@dataclass(frozen=True)
class Section:
    kind: str
    start: float
    end: float
    parts: frozenset[str]


@dataclass
class Song:
    """A composed song: tempo, key, form and every part as note events (seconds from the song start)."""

    name: str
    tempo: float
    tonic: int
    mode: str
    groove: str
    soundfont: str
    sections: list[Section]
    parts: list[Part]
    vocals: list[VocalLine]
    duration: float

    def vocal_spans(self) -> list[tuple[float, float]]:
        """(start, end) in seconds of every sung note of every line."""
        return [(n.start, n.start + n.duration) for line in self.vocals for n in line.notes]


@dataclass(frozen=True)
class _Chord:
    start: float  # beats
    length: float  # beats
    root: int  # pitch class
    pcs: tuple[int, ...]  # pitch classes, root first


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


class _Composer:
    """Writes one song; holds the shared state (tempo, scale, chords) while the parts are written."""

    def __init__(self, rng: np.random.Generator, cfg: SongsConfig, name: str, soundfont: str):
        self.rng = rng
        self.cfg = cfg
        self.name = name
        self.soundfont = soundfont
        self.tempo = float(rng.uniform(*cfg.tempo_bpm))
        modes = list(cfg.modes)
        w = np.array([cfg.modes[m] for m in modes], float)
        self.mode = modes[int(rng.choice(len(modes), p=w / w.sum()))]
        self.scale = MODES[self.mode]
        self.tonic = int(rng.integers(12))
        self.groove = _pick(rng, list(cfg.grooves))
        if self.groove in ("ballad", "halftime", "hiphop", "reggae") and self.tempo > 120:
            self.tempo *= 0.7
        if self.groove == "punk":
            self.tempo = max(self.tempo, 140.0)
        self.spb = 60.0 / self.tempo  # seconds per beat
        swing_hi = cfg.swing[1] * (3.0 if self.groove == "shuffle" else 1.0)
        self.swing = float(rng.uniform(cfg.swing[0], swing_hi)) if rng.random() < 0.5 or self.groove in (
            "shuffle", "hiphop") else 0.0
        self.humanize = cfg.humanize_ms / 1000.0

    # -- time helpers -------------------------------------------------------------------------------------
    def t(self, beat: float) -> float:
        """Beat position -> seconds, with swing on off-beat sixteenths."""
        sixteenth = beat * 4.0
        frac = sixteenth - np.floor(sixteenth + 1e-9)
        if self.swing and abs(frac) < 1e-6 and round(sixteenth) % 2 == 1:
            beat += self.swing * 0.25
        return beat * self.spb

    def note(self, beat: float, length: float, pitch: int, velocity: float, jitter: float = 1.0) -> Note:
        start = max(0.0, self.t(beat) + float(self.rng.normal(0, self.humanize * jitter)))
        vel = int(np.clip(velocity + self.rng.normal(0, 6), 1, 127))
        return Note(start, max(0.03, length * self.spb), int(pitch), vel)

    # -- harmony ------------------------------------------------------------------------------------------
    def chord_at(self, degree: int, seventh: bool) -> tuple[int, tuple[int, ...]]:
        s = self.scale
        pcs = [(self.tonic + s[(degree + k) % 7]) % 12 for k in ((0, 2, 4, 6) if seventh else (0, 2, 4))]
        return pcs[0], tuple(pcs)

    def progression(self) -> tuple[list[int], float, bool]:
        pool = PROGRESSIONS_MAJOR if self.mode in ("major", "mixolydian") else PROGRESSIONS_MINOR
        prog = list(_pick(self.rng, pool))
        bars_per_chord = float(_pick(self.rng, [1.0, 1.0, 1.0, 2.0, 0.5]))
        return prog, bars_per_chord, bool(self.rng.random() < 0.25)

    # -- the song -----------------------------------------------------------------------------------------
    def compose(self) -> Song:
        rng, cfg = self.rng, self.cfg
        form = _pick(rng, FORMS)
        progs = {kind: self.progression() for kind in dict.fromkeys(k for k, _ in form)}  # form order: deterministic
        # Per-part instrument choice for the whole song.
        programs = {name: int(_pick(rng, list(cfg.programs[name]))) for name in cfg.programs}
        kit = int(_pick(rng, list(cfg.drum_kits)))
        female = bool(rng.random() < cfg.vocals.female_probability)
        singer_seed = int(rng.integers(2**31))
        lo = int(rng.integers(53, 59)) if female else int(rng.integers(43, 49))
        vocal_range = (lo, lo + int(rng.integers(14, 19)))

        sections: list[Section] = []
        chords: list[tuple[Section, list[_Chord], float]] = []
        beat = 0.0
        for kind, bars in form:
            probs = cfg.part_probability[kind]
            active = {p for p, pr in probs.items() if rng.random() < pr}
            if kind in ("verse", "chorus", "prechorus") and "vocals" not in active:
                active.add("vocals")
            if not active - {"vocals"}:
                active.add("chords")
            start_s = beat * self.spb
            end_s = (beat + 4 * bars) * self.spb
            sec = Section(kind, start_s, end_s, frozenset(active))
            sections.append(sec)
            prog, bpc, seventh = progs[kind]
            seq, b, i = [], beat, 0
            while b < beat + 4 * bars - 1e-6:
                length = min(4 * bpc, beat + 4 * bars - b)
                root, pcs = self.chord_at(prog[i % len(prog)], seventh)
                seq.append(_Chord(b, length, root, pcs))
                b += length
                i += 1
            chords.append((sec, seq, beat))
            beat += 4 * bars
        duration = beat * self.spb

        parts = [
            Part("drums", "drums", 9, kit, 128, 0.0, 110),
            Part("bass", "bass", 0, programs["bass"], 0, float(rng.uniform(-0.1, 0.1)), 110),
            Part("chords", "other", 1, programs["chords"], 0, float(rng.uniform(-0.6, 0.6)), 100),
            Part("arp", "other", 2, programs["arp"], 0, float(rng.uniform(-0.8, 0.8)), 90),
            Part("pad", "other", 3, programs["pad"], 0, float(rng.uniform(-0.3, 0.3)), 85),
            Part("lead", "other", 4, programs["lead"], 0, float(rng.uniform(-0.4, 0.4)), 100),
        ]
        by_name = {p.name: p for p in parts}
        bass_style = _pick(rng, ["roots", "eighths", "kick", "octaves", "walking", "sparse"])
        comp_style = _pick(rng, ["whole", "half", "quarters", "strum", "offbeat", "syncopated"])
        if self.groove == "reggae":
            comp_style = "offbeat"
        arp_rate = float(_pick(rng, [0.5, 0.25, 0.5]))
        if rng.random() < cfg.lead.vocal_register_probability:  # the instrument sings along in the same register
            lo_lead = vocal_range[0] + int(rng.integers(-2, 5))
        else:
            lo_lead = int(rng.integers(60, 70))
        lead_range = (lo_lead, lo_lead + 17)
        lead_modes = list(cfg.lead.modes)
        lead_w = np.array([cfg.lead.modes[m] for m in lead_modes])

        vc = cfg.vocals
        lead = VocalLine("lead", singer_seed, female, float(rng.uniform(-0.05, 0.05)), 0.0)
        # Doubles are the same singer's other takes; harmonies and backing are stacked by the lead singer or
        # sung by someone else; the octave double is a singer of the other sex.
        doubles = rng.random() < vc.double_probability
        side = float(rng.choice([-1, 1]))
        if rng.random() < vc.double_pair_probability:
            width = float(rng.uniform(0.5, 0.95))
            dbl = [VocalLine("double", singer_seed, female, side * width, float(rng.uniform(-10, -5))),
                   VocalLine("double", singer_seed, female, -side * width, float(rng.uniform(-10, -5)))]
        else:
            dbl = [VocalLine("double", singer_seed, female, side * float(rng.uniform(0.3, 0.7)),
                             float(rng.uniform(-9, -4)))]
        harmony = rng.random() < vc.harmony_probability
        verse_harmony = harmony and rng.random() < vc.verse_harmony_probability
        other_seed = int(rng.integers(2**31))
        harm_seed = other_seed if rng.random() < vc.second_singer_probability else singer_seed
        harm = VocalLine("harmony", harm_seed, female, float(-side * rng.uniform(0.2, 0.6)), float(rng.uniform(-11, -5)))
        octave = rng.random() < vc.octave_double_probability
        octv = VocalLine("octave", int(rng.integers(2**31)), not female, float(rng.uniform(-0.3, 0.3)),
                         float(rng.uniform(-12, -7)))
        backing = rng.random() < vc.backing_probability
        back_seed = other_seed if rng.random() < vc.second_singer_probability else singer_seed
        n_back = int(rng.integers(2, 4))
        back = [VocalLine("backing", back_seed + k, female, float(p), float(rng.uniform(-16, -10)))
                for k, p in enumerate(np.linspace(-1, 1, n_back) * rng.uniform(0.4, 0.85))]
        back_vowel = _pick(rng, ["u", "u", "o", "a", "ah"])
        adlibs = rng.random() < vc.adlib_probability
        adlib = VocalLine("adlib", singer_seed, female, float(rng.uniform(-0.35, 0.35)), float(rng.uniform(-8, -3)))
        melodies: dict[str, list[tuple[float, float, int, float]]] = {}
        for sec, seq, sbeat in chords:
            bars = round((sec.end - sec.start) / self.spb / 4)
            if "drums" in sec.parts:
                by_name["drums"].notes += self.drums(sbeat, bars, sec.kind)
            if "bass" in sec.parts:
                by_name["bass"].notes += self.bass(seq, bass_style)
            if "chords" in sec.parts:
                by_name["chords"].notes += self.comp(seq, comp_style, programs["chords"])
            if "arp" in sec.parts:
                by_name["arp"].notes += self.arp(seq, arp_rate)
            if "pad" in sec.parts:
                by_name["pad"].notes += self.pad(seq)
            mel = None
            if "vocals" in sec.parts:
                if sec.kind not in melodies:
                    hi_shift = 3 if sec.kind == "chorus" else 0
                    rng_v = (vocal_range[0] + hi_shift, vocal_range[1] + hi_shift // 2)
                    melodies[sec.kind] = [(b - sbeat, ln, p, v) for b, ln, p, v in
                                          self.melody(seq, sbeat, bars, rng_v, dense=False, sparse=False)]
                mel = [(b + sbeat, ln, p, v) for b, ln, p, v in melodies[sec.kind]]
                lead.notes += self.sing(mel)
                chorus = sec.kind == "chorus"
                if chorus and doubles:
                    for line in dbl:
                        line.notes += self.sing(mel, late=float(rng.uniform(0.005, 0.02)))
                if (chorus and harmony) or (verse_harmony and sec.kind in ("verse", "prechorus")):
                    harm.notes += self.sing([(b, ln, self.harmonise(p), v) for b, ln, p, v in mel], late=0.008)
                if chorus and octave:
                    octv.notes += self.sing([(b, ln, p + (12 if not female else -12), v) for b, ln, p, v in mel],
                                            late=0.01)
                if backing and sec.kind in ("chorus", "bridge", "outro"):
                    for k, line in enumerate(back):
                        line.notes += self.backing_chord(seq, vocal_range, k, len(back), back_vowel)
                if adlibs and sec.kind in ("chorus", "outro"):
                    adlib.notes += self.adlib(mel, seq, sbeat, bars, vocal_range)
            if "lead" in sec.parts:
                solo = sec.kind == "solo" or mel is None
                mode = "solo" if solo else lead_modes[int(rng.choice(len(lead_modes), p=lead_w / lead_w.sum()))]
                if mode == "double" and mel:  # the instrument plays the vocal melody, in its own octave
                    shift = 12 * round((np.mean(lead_range) - np.mean([p for _, _, p, _ in mel])) / 12)
                    lmel = [(b, ln, p + shift, v) for b, ln, p, v in mel]
                else:
                    lmel = self.melody(seq, sbeat, bars, lead_range, dense=solo, sparse=mode == "counter")
                if mode == "answer" and mel:  # only in the voice's rests
                    lmel = [x for x in lmel if not any(b < x[0] + x[1] and x[0] < b + ln for b, ln, _, _ in mel)]
                notes = [self.note(b, ln, p, 95 * v, 0.5) for b, ln, p, v in lmel]
                by_name["lead"].notes += notes
                by_name["lead"].bends += self.expression(notes, programs["lead"])
        vocals = [line for line in (lead, *dbl, harm, octv, *back, adlib) if line.notes]
        parts = [p for p in parts if p.notes]
        return Song(self.name, self.tempo, self.tonic, self.mode, self.groove, self.soundfont, sections, parts,
                    vocals, duration)

    # -- drums --------------------------------------------------------------------------------------------
    def drums(self, sbeat: float, bars: int, kind: str) -> list[Note]:
        rng = self.rng
        g = dict(GROOVES[self.groove])
        hat_key = HAT_CLOSED
        if kind == "chorus" and rng.random() < 0.4:
            hat_key = _pick(rng, [RIDE, HAT_OPEN])
        if kind in ("intro", "outro") and rng.random() < 0.3:
            g["kick"], g["snare"] = "x...............", "................"
        snare_key = _pick(rng, [SNARE, SNARE, SNARE, CLAP, 40]) if self.groove != "ballad" else _pick(
            rng, [SNARE, SIDESTICK])
        fill = rng.random() < 0.6
        out: list[Note] = []
        for bar in range(bars):
            b0 = sbeat + 4 * bar
            last = bar == bars - 1 and fill
            for step in range(16):
                beat = b0 + step / 4
                if last and step >= 8:
                    if rng.random() < 0.75:
                        tom = _pick(rng, [SNARE, *TOMS[(step - 8) // 2: (step - 8) // 2 + 2]])
                        out.append(self.note(beat, 0.25, tom, 70 + 4 * (step - 8)))
                    continue
                if g["kick"][step] == "x" or (step == 0 and bar == 0):
                    out.append(self.note(beat, 0.25, KICK, 110 if step % 4 == 0 else 95))
                sn = g["snare"][step]
                if sn == "x":
                    out.append(self.note(beat, 0.25, snare_key, 105))
                elif sn == "g" or (rng.random() < 0.04 and step % 2 == 1):
                    out.append(self.note(beat, 0.25, SNARE, 35))
                h = g["hat"][step]
                if h != ".":
                    key = HAT_OPEN if h == "o" and hat_key == HAT_CLOSED else hat_key
                    vel = 90 if step % 4 == 0 else (75 if step % 2 == 0 else 58)
                    out.append(self.note(beat, 0.25, key, vel, 0.6))
            if bar == 0 and kind not in ("verse",) or (bar == 0 and rng.random() < 0.3):
                out.append(self.note(b0, 2.0, _pick(rng, [CRASH, CRASH, 57]), 100))
        return out

    # -- bass ---------------------------------------------------------------------------------------------
    def bass(self, seq: list[_Chord], style: str) -> list[Note]:
        rng = self.rng
        out: list[Note] = []
        kick = GROOVES[self.groove]["kick"]
        for ci, ch in enumerate(seq):
            root = 28 + (ch.root - 4) % 12  # E1..D#2
            if rng.random() < 0.3 and root < 34:
                root += 12
            fifth = root + (ch.pcs[2] - ch.pcs[0]) % 12
            third = root + (ch.pcs[1] - ch.pcs[0]) % 12
            nxt = seq[(ci + 1) % len(seq)]
            steps = round(ch.length * 2)  # eighths
            for s in range(steps):
                beat = ch.start + s / 2
                p, ln = root, 0.45
                if style == "roots":
                    if s % 2:
                        continue
                    ln = 0.9
                elif style == "eighths":
                    ln = 0.45
                elif style == "kick":
                    pos = round((beat % 4) * 4)
                    if kick[pos % 16] != "x" and kick[(pos + 1) % 16] != "x":
                        continue
                    ln = 0.7
                elif style == "octaves":
                    p = root + (12 if s % 2 else 0)
                    ln = 0.4
                elif style == "walking":
                    if s % 2:
                        continue
                    p = [root, third, fifth, root + 12][(s // 2) % 4]
                    ln = 0.95
                elif style == "sparse":
                    if s not in (0, 3, 5) or s >= steps:
                        continue
                    ln = 1.4 if s == 0 else 0.45
                if s == steps - 1 and rng.random() < 0.35:  # approach the next root
                    target = 28 + (nxt.root - 4) % 12
                    p = target + int(_pick(rng, [-1, 1, -2, 2]))
                out.append(self.note(beat, ln, p, 100 if s % 2 == 0 else 88, 0.6))
        return out

    # -- chords -------------------------------------------------------------------------------------------
    def voicing(self, ch: _Chord, centre: int) -> list[int]:
        return sorted({centre - 6 + (pc - (centre - 6)) % 12 for pc in ch.pcs})

    def comp(self, seq: list[_Chord], style: str, program: int) -> list[Note]:
        rng = self.rng
        out: list[Note] = []
        centre = int(rng.integers(55, 66))
        guitar = 24 <= program <= 31
        power = program in (29, 30)
        for ch in seq:
            v = self.voicing(ch, centre)
            if power:
                r = 40 + (ch.root - 4) % 12
                v = [r, r + 7, r + 12]
            elif program < 8 and rng.random() < 0.7:
                v = [36 + (ch.root - 0) % 12 + 12 * (1 if ch.root < 4 else 0)] + v  # left-hand root
            hits: list[tuple[float, float]] = []
            L = ch.length
            if style == "whole":
                hits = [(0.0, L)]
            elif style == "half":
                hits = [(b, 2.0) for b in np.arange(0, L, 2.0)]
            elif style == "quarters":
                hits = [(b, 0.8) for b in np.arange(0, L, 1.0)]
            elif style == "strum":
                hits = [(b, 0.5 if (b % 1) else 0.9) for b in np.arange(0, L, 0.5) if rng.random() < 0.85 or b == 0]
            elif style == "offbeat":
                hits = [(b + 0.5, 0.35) for b in np.arange(0, L, 1.0)]
            elif style == "syncopated":
                hits = [(b, d) for b, d in ((0.0, 1.3), (1.5, 1.3), (3.0, 0.9)) if b < L]
            for i, (b, d) in enumerate(hits):
                down = i % 2 == 0
                order = v if down else v[::-1]
                spread = (0.012 if guitar else 0.0) + float(rng.uniform(0, 0.004))
                for k, p in enumerate(order):
                    n = self.note(ch.start + b, d, p, 80 if down else 68, 0.5)
                    out.append(Note(n.start + k * spread, n.duration, n.pitch, n.velocity))
        return out

    def arp(self, seq: list[_Chord], rate: float) -> list[Note]:
        rng = self.rng
        out: list[Note] = []
        centre = int(rng.integers(64, 74))
        pattern = _pick(rng, [(0, 1, 2, 1), (0, 1, 2, 3), (0, 2, 1, 2), (2, 1, 0, 1), (0, 1, 2, 3, 2, 1)])
        for ch in seq:
            v = self.voicing(ch, centre)
            v = v + [v[0] + 12]
            for i, b in enumerate(np.arange(0, ch.length, rate)):
                p = v[pattern[i % len(pattern)] % len(v)]
                out.append(self.note(ch.start + b, rate * 0.9, p, 72 + (8 if i % 4 == 0 else 0), 0.5))
        return out

    def pad(self, seq: list[_Chord]) -> list[Note]:
        centre = int(self.rng.integers(57, 67))
        out: list[Note] = []
        for ch in seq:
            for p in self.voicing(ch, centre):
                out.append(self.note(ch.start, ch.length * 0.98, p, 70, 0.3))
        return out

    # -- melody -------------------------------------------------------------------------------------------
    def melody(self, seq: list[_Chord], sbeat: float, bars: int, prange: tuple[int, int], dense: bool,
               sparse: bool) -> list[tuple[float, float, int, float]]:
        """Phrased melody over the chords: (beat, length in beats, pitch, velocity 0..1) tuples.

        Phrases of 1-2 bars, rests between them, chord tones on strong beats, mostly stepwise motion.
        """
        rng = self.rng
        lo, hi = prange
        scale_pitches = [p for p in range(lo, hi + 1) if (p - self.tonic) % 12 in self.scale]
        idx = len(scale_pitches) // 2
        out: list[tuple[float, float, int, float]] = []
        cells = ([(0.25,) * 4, (0.5, 0.25, 0.25), (0.25, 0.25, 0.5), (0.5, 0.5)] if dense else
                 [(1.0,), (0.5, 0.5), (1.5, 0.5), (0.75, 0.25), (0.5, 1.0, 0.5), (2.0,), (0.5, 0.5, 1.0)])
        phrase_bars = int(_pick(rng, [1, 2, 2]))
        beat = sbeat + float(_pick(rng, [0.0, 0.5, 1.0, 0.0]))
        end = sbeat + 4 * bars
        while beat < end - 0.5:
            phrase_end = min(end, beat + 4 * phrase_bars - float(_pick(rng, [1.0, 1.5, 2.0])))
            if sparse and rng.random() < 0.6:  # counter-melody: play only some phrases
                beat = phrase_end + float(_pick(rng, [1.0, 2.0]))
                continue
            first = True
            while beat < phrase_end:
                cell = _pick(rng, cells)
                for ln in cell:
                    if beat >= phrase_end:
                        break
                    ch = next((c for c in seq if c.start <= beat < c.start + c.length), seq[-1])
                    r = rng.random()
                    step = 0 if r < 0.15 else (int(rng.choice([-1, 1])) if r < 0.75 else int(rng.integers(-4, 5)))
                    if first:
                        step = int(rng.integers(-2, 3))
                    idx = int(np.clip(idx + step, 0, len(scale_pitches) - 1))
                    strong = abs(beat - round(beat)) < 1e-6
                    if strong and rng.random() < 0.7:  # snap to the nearest chord tone
                        cands = [i for i, p in enumerate(scale_pitches) if p % 12 in ch.pcs]
                        if cands:
                            idx = min(cands, key=lambda i: abs(i - idx))
                    length = min(ln, phrase_end - beat)
                    out.append((beat, length * float(rng.uniform(0.8, 0.98)), scale_pitches[idx],
                                float(rng.uniform(0.7, 1.0))))
                    beat += ln
                    first = False
            if out:  # the phrase ends on a long note
                b, ln, p, v = out[-1]
                out[-1] = (b, ln + float(_pick(rng, [0.5, 1.0, 1.0])), p, v)
                beat = b + out[-1][1]
            beat = float(np.ceil((beat + float(_pick(rng, [0.5, 1.0, 1.5]))) * 2) / 2)
            idx = int(np.clip(idx + rng.integers(-2, 3), 0, len(scale_pitches) - 1))
        return out

    def backing_chord(self, seq: list[_Chord], vocal_range: tuple[int, int], k: int, voices: int,
                      vowel: str) -> list[VocalNote]:
        """Voice k of `voices` sustained "oohs / aahs" backing singers: one chord tone per chord, held."""
        rng = self.rng
        centre = (vocal_range[0] + vocal_range[1]) // 2
        out = []
        for ch in seq:
            v = self.voicing(ch, centre)
            p = v[min(k, len(v) - 1)] if voices <= len(v) else v[k % len(v)] + 12 * (k // len(v))
            start = self.t(ch.start) + float(rng.normal(0.02, 0.015))
            dur = ch.length * self.spb * float(rng.uniform(0.85, 0.97))
            onset = _pick(rng, ["", "", "w", "m", "h"])
            out.append(VocalNote(start, dur, float(p), float(rng.uniform(0.55, 0.8)), onset, vowel, ""))
        return out

    def adlib(self, mel: list[tuple[float, float, int, float]], seq: list[_Chord], sbeat: float, bars: int,
              vocal_range: tuple[int, int]) -> list[VocalNote]:
        """Short melismatic runs high in the singer's range, in rests of the lead melody of at least 1.5 beats."""
        rng = self.rng
        ends = sorted((b + ln, b) for b, ln, _, _ in mel)
        gaps = []
        for (e, _), (_, nb) in itertools.pairwise(ends):
            if nb - e >= 1.5:
                gaps.append((e + 0.25, nb - 0.25))
        out: list[tuple[float, float, int, float]] = []
        top = [p for p in range(vocal_range[1] - 6, vocal_range[1] + 3) if (p - self.tonic) % 12 in self.scale]
        for a, b in gaps:
            if rng.random() < 0.5 or not top:
                continue
            beat, idx = a, int(rng.integers(len(top)))
            step = float(_pick(rng, [0.25, 0.25, 0.5]))
            while beat + step <= b and len(out) < 64:
                out.append((beat, step * 0.95, top[idx], float(rng.uniform(0.6, 0.9))))
                idx = int(np.clip(idx + int(rng.choice([-1, -1, 1])), 0, len(top) - 1))
                beat += step
                if rng.random() < 0.25:
                    break
        notes = self.sing(out)
        # Melismas: every note after the first of a run continues the syllable.
        return [n if i == 0 or notes[i - 1].start + notes[i - 1].duration < n.start - 0.08 else
                VocalNote(n.start, n.duration, n.pitch, n.velocity, "", notes[i - 1].vowel, "", True)
                for i, n in enumerate(notes)]

    def expression(self, notes: list[Note], program: int) -> list[tuple[float, float]]:
        """Pitch-wheel breakpoints (seconds, semitones) for an instrument melody: scoops and bends into notes
        (guitars bend up to 2 semitones, horns / strings / synths scoop), and delayed vibrato on long notes."""
        rng, lc = self.rng, self.cfg.lead
        guitar = 24 <= program <= 31
        out: list[tuple[float, float]] = []
        for n in notes:
            t0, t1 = n.start, n.start + n.duration
            if rng.random() < lc.bend_probability:
                depth = float(_pick(rng, [1.0, 2.0])) if guitar else float(rng.uniform(0.3, 1.0))
                out += [(t0, -depth), (t0 + float(rng.uniform(0.05, 0.15)), 0.0)]
            else:
                out.append((t0, 0.0))
            if n.duration >= 0.35 and rng.random() < lc.vibrato_probability:
                cents = float(rng.uniform(*lc.vibrato_cents))
                rate = float(rng.uniform(5.0, 6.8))
                start = t0 + float(rng.uniform(0.12, 0.3))
                times = np.arange(start, t1, 0.015)
                ramp = np.clip((times - start) / 0.25, 0, 1)
                out += [(float(t), float(cents / 100 * r * np.sin(2 * np.pi * rate * (t - start))))
                        for t, r in zip(times, ramp)]
                out.append((t1, 0.0))
        return out

    def harmonise(self, pitch: int) -> int:
        """A diatonic third above (or a sixth below) the melody note."""
        up = [p for p in range(pitch + 3, pitch + 5) if (p - self.tonic) % 12 in self.scale]
        return up[0] if up else pitch + 4

    def sing(self, mel: list[tuple[float, float, int, float]], late: float = 0.0) -> list[VocalNote]:
        """Melody -> sung notes with syllables; some notes are melismas on the previous syllable."""
        rng = self.rng
        out: list[VocalNote] = []
        prev_end = -1.0
        for b, ln, p, v in mel:
            start = self.t(b) + float(rng.normal(late, 0.01 if late else 0.006))
            dur = ln * self.spb
            slur = bool(out) and start - prev_end < 0.05 and rng.random() < 0.2
            if slur:
                last = out[-1]
                vowel, onset, coda = last.vowel, "", last.coda
                out[-1] = VocalNote(last.start, last.duration, last.pitch, last.velocity, last.onset, last.vowel, "",
                                    last.slur)
            else:
                onset, vowel, coda = _pick(rng, ONSETS), _pick(rng, VOWELS), _pick(rng, CODAS)
            out.append(VocalNote(start, dur, float(p), v, onset, vowel, coda, slur))
            prev_end = start + dur
        return out


def compose_song(rng: np.random.Generator, cfg: SongsConfig, name: str, soundfont: str) -> Song:
    """Compose one full song (all sections) from `rng`."""
    return _Composer(rng, cfg, name, soundfont).compose()
