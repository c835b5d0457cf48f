"""A singing voice: source-filter formant synthesis of sung syllables, in numpy + numba.

Source: a Rosenberg glottal pulse (differentiated, i.e. with lip radiation) on a pitch contour with
scoops, portamento, vibrato, drift, per-cycle jitter and shimmer, plus aspiration noise gated by the
glottal opening. Filter: five cascaded formant resonators whose frequencies and bandwidths glide between
vowel and consonant targets. Consonants: frication noise through a band-pass, plosive closures, bursts and
aspiration, nasals and liquids as voiced formant targets. Singers differ in sex, formant scale, vibrato,
breathiness, open quotient, spectral tilt and vowel colour.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from training.songs.compose import VocalNote

CONTROL = 32  # samples per control step (formant coefficients update at this rate)

# Male vowel formants F1..F5 (Hz); bandwidths are set per singer. Diphthongs glide between two entries.
VOWELS: dict[str, tuple[float, ...]] = {
    "a": (730, 1090, 2440, 3400, 4300),
    "e": (530, 1840, 2480, 3400, 4300),
    "i": (280, 2250, 2950, 3500, 4500),
    "o": (570, 840, 2410, 3300, 4200),
    "u": (310, 870, 2240, 3300, 4200),
    "ae": (660, 1720, 2410, 3400, 4300),
    "ah": (640, 1190, 2390, 3300, 4200),
    "I": (390, 1990, 2550, 3500, 4400),
    "U": (440, 1020, 2240, 3300, 4200),
    "er": (490, 1350, 1690, 3300, 4200),
}
DIPHTHONGS = {"ai": ("a", "I"), "ei": ("e", "I"), "ou": ("o", "U"), "au": ("a", "U")}


@dataclass(frozen=True)
class Consonant:
    kind: str  # fric, stop, nasal, liquid, aspirate
    duration: float  # seconds
    voicing: float  # glottal amplitude during the consonant (0 = unvoiced)
    noise: float  # frication / burst amplitude
    centre: float  # frication centre (Hz)
    width: float  # frication bandwidth (Hz)
    locus: tuple[float, float, float]  # F1, F2, F3 targets (Hz, male); 0 = keep the vowel's


CONSONANTS: dict[str, Consonant] = {
    "s": Consonant("fric", 0.09, 0.0, 0.55, 6800, 3500, (0, 1700, 2600)),
    "z": Consonant("fric", 0.07, 0.3, 0.3, 6200, 3500, (250, 1700, 2600)),
    "sh": Consonant("fric", 0.10, 0.0, 0.6, 3200, 2000, (0, 1900, 2500)),
    "f": Consonant("fric", 0.08, 0.0, 0.18, 5000, 7000, (0, 1000, 2300)),
    "v": Consonant("fric", 0.06, 0.35, 0.12, 4500, 6000, (250, 1000, 2300)),
    "th": Consonant("fric", 0.07, 0.0, 0.14, 6000, 6000, (0, 1400, 2600)),
    "h": Consonant("aspirate", 0.07, 0.0, 0.0, 0, 0, (0, 0, 0)),
    "p": Consonant("stop", 0.06, 0.0, 0.35, 1500, 2500, (0, 900, 2200)),
    "t": Consonant("stop", 0.06, 0.0, 0.5, 4500, 3000, (0, 1750, 2600)),
    "k": Consonant("stop", 0.07, 0.0, 0.45, 2400, 1500, (0, 2100, 2500)),
    "b": Consonant("stop", 0.05, 0.06, 0.15, 1200, 2500, (250, 900, 2200)),
    "d": Consonant("stop", 0.05, 0.06, 0.2, 4000, 3000, (250, 1700, 2600)),
    "g": Consonant("stop", 0.05, 0.06, 0.2, 2300, 1500, (250, 2000, 2500)),
    "m": Consonant("nasal", 0.07, 0.45, 0.0, 0, 0, (260, 1100, 2300)),
    "n": Consonant("nasal", 0.07, 0.45, 0.0, 0, 0, (260, 1700, 2600)),
    "ng": Consonant("nasal", 0.07, 0.45, 0.0, 0, 0, (260, 2100, 2700)),
    "l": Consonant("liquid", 0.06, 0.7, 0.0, 0, 0, (360, 1100, 2700)),
    "r": Consonant("liquid", 0.06, 0.7, 0.0, 0, 0, (420, 1250, 1650)),
    "w": Consonant("liquid", 0.05, 0.7, 0.0, 0, 0, (300, 700, 2200)),
    "y": Consonant("liquid", 0.05, 0.7, 0.0, 0, 0, (280, 2200, 3000)),
}


def parse_consonants(cluster: str) -> list[str]:
    """'str' -> ['s', 't', 'r']; 'ch' -> ['t', 'sh']."""
    out, i = [], 0
    while i < len(cluster):
        two = cluster[i:i + 2]
        if two == "ch":
            out += ["t", "sh"]
            i += 2
        elif two in CONSONANTS:
            out.append(two)
            i += 2
        else:
            out.append(cluster[i])
            i += 1
    return [c for c in out if c in CONSONANTS]


# Singer.from_seed: the range each remaining voice parameter is drawn from, uniformly, in this order (the
# order of the draws: a seed gives the same singer as before this table).
VOICE_RANGES = {
    "open_quotient": (0.45, 0.72),
    "tilt": (0.0, 0.3),
    "scoop_cents": (20, 160),
    "scoop_time": (0.03, 0.1),
    "portamento": (0.04, 0.14),
    "drift_cents": (4, 15),
    "ring": (0.0, 0.5),
    "intonation_cents": (4, 18),
    "overshoot": (0.0, 0.25),
    "straight_share": (0.0, 0.4),
    "falloff": (0.0, 0.5),
    "air": (0.08, 0.35),
    "closing": (0.22, 0.4),
}


@dataclass(frozen=True)
class Singer:
    """One singer's voice identity; `from_seed` draws it."""

    female: bool
    formant_scale: float
    vowel_colour: tuple[float, ...]  # per-vowel multiplicative formant offsets
    bandwidth_scale: float
    vibrato_rate: float
    vibrato_depth: float  # cents
    vibrato_delay: float  # seconds
    jitter: float
    shimmer: float
    breathiness: float
    open_quotient: float
    tilt: float
    scoop_cents: float
    scoop_time: float
    portamento: float
    drift_cents: float
    ring: float  # "singer's formant": how much F3..F5 cluster near 3 kHz
    intonation_cents: float = 0.0  # std of a note's tuning offset (sung slightly sharp / flat)
    overshoot: float = 0.0  # fraction of an interval a legato transition overshoots before settling
    straight_share: float = 0.0  # share of long notes sung without vibrato
    falloff: float = 0.0  # chance that a phrase-final note falls off in pitch
    air: float = 0.0  # gain of the high-frequency (above ~3.5 kHz) source branch: breath and brilliance
    closing: float = 0.38  # glottal closing phase, as a fraction of the open phase (shorter: brighter)

    @staticmethod
    def from_seed(seed: int, female: bool, vibrato_rate: tuple[float, float] = (5.0, 7.5),
                  vibrato_depth: tuple[float, float] = (10.0, 60.0)) -> Singer:
        r = np.random.default_rng(seed)
        return Singer(
            female=female,
            formant_scale=float(r.uniform(1.1, 1.22) if female else r.uniform(0.93, 1.05)),
            vowel_colour=tuple(float(x) for x in r.uniform(0.92, 1.08, len(VOWELS) * 3)),
            bandwidth_scale=float(r.uniform(0.8, 1.4)),
            vibrato_rate=float(r.uniform(*vibrato_rate)),
            vibrato_depth=float(r.uniform(*vibrato_depth)),
            vibrato_delay=float(r.uniform(0.12, 0.4)),
            jitter=float(r.uniform(0.002, 0.01)),
            shimmer=float(r.uniform(0.02, 0.08)),
            breathiness=float(r.uniform(0.02, 0.12) if female else r.uniform(0.01, 0.08)),
            **{name: float(r.uniform(lo, hi)) for name, (lo, hi) in VOICE_RANGES.items()},
        )

    def formants(self, vowel: str, f0: float = 0.0) -> np.ndarray:
        """F1..F5 (Hz) of a (monophthong) vowel for this singer."""
        keys = list(VOWELS)
        i = keys.index(vowel)
        f = np.array(VOWELS[vowel], float) * self.formant_scale
        f[:3] *= self.vowel_colour[3 * i: 3 * i + 3]
        f[3] = f[3] * (1 - 0.12 * self.ring)
        f[4] = f[4] * (1 - 0.15 * self.ring)
        if f0 > 0:  # sopranos raise F1 to follow a high fundamental
            f[0] = max(f[0], 1.08 * f0)
        f[1] = max(f[1], f[0] + 200)
        return f

    def bandwidths(self) -> np.ndarray:
        b = np.array([70.0, 90.0, 130.0, 200.0, 260.0]) * self.bandwidth_scale
        b[3:] *= 1 - 0.5 * self.ring
        return b


class _Track:
    """Piecewise-linear control track defined by breakpoints (time in seconds, value)."""

    def __init__(self, width: int = 1):
        self.t: list[float] = []
        self.v: list = []
        self.width = width

    def add(self, t: float, v) -> None:
        self.t.append(float(t))
        self.v.append(v)

    def render(self, times: np.ndarray, default) -> np.ndarray:
        if not self.t:
            return np.broadcast_to(np.asarray(default, float), (len(times), self.width)).T.squeeze().copy()
        order = np.argsort(np.asarray(self.t), kind="stable")
        t = np.asarray(self.t)[order]
        v = np.asarray(self.v, float)[order]
        if self.width == 1:
            return np.interp(times, t, v)
        return np.stack([np.interp(times, t, v[:, k]) for k in range(self.width)])


@numba.njit(cache=True, fastmath=True)
def _synthesise(f0, av, ah, af, ff, bf, formants, bandwidths, oq, tilt, jitter_seq, shimmer_seq, noise_a,
                noise_f, sr, control, air, closing):  # pragma: no cover - compiled
    """Per-sample glottal source + cascade formant filter + frication band-pass.

    f0/av/ah/af/ff/bf: (M,) control-rate tracks; formants/bandwidths: (K, M). Returns voiced, frication (N,).
    A cascade of resonators rolls off 12 dB / octave per resonance above the last one, far steeper than a
    real voice; a parallel branch (the voiced source high-passed at 3.5 kHz, gain `air`) stands in for the
    higher poles: the brilliance of the harmonics up to 10+ kHz.
    """
    n = noise_a.shape[0]
    voiced = np.zeros(n)
    fric = np.zeros(n)
    nf = formants.shape[0]
    y1 = np.zeros(nf)
    y2 = np.zeros(nf)
    ca = np.zeros(nf)
    cb = np.zeros(nf)
    cc = np.zeros(nf)
    phase = 0.0
    prev_flow = 0.0
    lp = 0.0
    jscale = 1.0
    sscale = 1.0
    cycle = 0
    fx1 = 0.0
    fx2 = 0.0
    fy1 = 0.0
    fy2 = 0.0
    b0 = 0.0
    a1 = 0.0
    a2 = 0.0
    te = oq
    tp = (1.0 - closing) * oq
    m = f0.shape[0]
    wh = np.tan(np.pi * min(3500.0, 0.4 * sr) / sr)  # 2nd-order Butterworth high-pass (bilinear)
    nh = 1.0 / (1.0 + np.sqrt(2.0) * wh + wh * wh)
    hb0 = nh
    ha1 = 2.0 * (wh * wh - 1.0) * nh
    ha2 = (1.0 - np.sqrt(2.0) * wh + wh * wh) * nh
    hx1 = 0.0
    hx2 = 0.0
    hy1 = 0.0
    hy2 = 0.0
    for i in range(n):
        k = i // control
        if i % control == 0:
            for j in range(nf):
                r = np.exp(-np.pi * bandwidths[j, k] / sr)
                cc[j] = -r * r
                cb[j] = 2.0 * r * np.cos(2.0 * np.pi * formants[j, k] / sr)
                ca[j] = 1.0 - cb[j] - cc[j]
            w0 = 2.0 * np.pi * min(ff[k], 0.45 * sr) / sr
            alpha = np.sin(w0) * bf[k] / (2.0 * max(ff[k], 50.0))
            b0 = alpha / (1.0 + alpha)
            a1 = -2.0 * np.cos(w0) / (1.0 + alpha)
            a2 = (1.0 - alpha) / (1.0 + alpha)
        frac = (i % control) / control
        k2 = min(k + 1, m - 1)
        f = (f0[k] + (f0[k2] - f0[k]) * frac) * jscale
        a_v = (av[k] + (av[k2] - av[k]) * frac) * sscale
        a_h = ah[k] + (ah[k2] - ah[k]) * frac
        a_f = af[k] + (af[k2] - af[k]) * frac
        phase += f / sr
        if phase >= 1.0:
            phase -= 1.0
            cycle += 1
            jscale = 1.0 + jitter_seq[cycle % jitter_seq.shape[0]]
            sscale = 1.0 + shimmer_seq[cycle % shimmer_seq.shape[0]]
        if phase < tp:
            flow = 0.5 * (1.0 - np.cos(np.pi * phase / tp))
        elif phase < te:
            flow = np.cos(0.5 * np.pi * (phase - tp) / (te - tp))
        else:
            flow = 0.0
        d = (flow - prev_flow) * sr / max(f, 40.0) * 0.15
        prev_flow = flow
        src = a_v * d + a_h * noise_a[i] * (0.35 + flow)
        lp = (1.0 - tilt) * src + tilt * lp
        x = lp
        for j in range(nf):
            y = ca[j] * x + cb[j] * y1[j] + cc[j] * y2[j]
            y2[j] = y1[j]
            y1[j] = y
            x = y
        hs = a_v * d  # the voiced source only: breath noise stays in the cascade
        hy = hb0 * (hs - 2.0 * hx1 + hx2) - ha1 * hy1 - ha2 * hy2
        hx2 = hx1
        hx1 = hs
        hy2 = hy1
        hy1 = hy
        voiced[i] = x + air * hy
        xn = noise_f[i]
        y = b0 * xn - b0 * fx2 - a1 * fy1 - a2 * fy2
        fx2 = fx1
        fx1 = xn
        fy2 = fy1
        fy1 = y
        fric[i] = a_f * y
    return voiced, fric


def _sounding_spans(on: np.ndarray, margin: int) -> list[tuple[int, int]]:
    """(M,) bool control steps -> merged [start, end) spans of the True runs, widened by `margin` steps
    on both sides (runs closer than 2 * margin merge)."""
    if not on.any():
        return []
    d = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1) - margin, np.flatnonzero(d == -1) + margin
    spans: list[tuple[int, int]] = []
    for a, b in zip(np.maximum(starts, 0), np.minimum(ends, len(on))):
        if spans and a <= spans[-1][1]:
            spans[-1] = (spans[-1][0], int(b))
        else:
            spans.append((int(a), int(b)))
    return spans


def _midi_hz(p):
    return 440.0 * 2.0 ** ((np.asarray(p) - 69.0) / 12.0)


def sing(notes: list[VocalNote], singer: Singer, start: float, n: int, sample_rate: int,
         rng: np.random.Generator) -> np.ndarray:
    """Sing `notes` (times in song seconds) for the window [start, start + n / sample_rate).

    Returns a dry mono float32 (N,) signal, silent where nothing is sung (breaths aside).
    """
    sr = float(sample_rate)
    end = start + n / sr
    notes = [x for x in notes if x.start + x.duration > start - 0.5 and x.start < end + 0.5]
    out = np.zeros(n, np.float32)
    if not notes:
        return out
    pitch, vib, av, ah, af, ff, bf = (_Track() for _ in range(7))
    form = _Track(5)
    bw = singer.bandwidths()
    prev_off, prev_pitch, prev_target = -10.0, None, 0.0
    for i, note in enumerate(notes):
        on, off = note.start, note.start + note.duration
        nxt = notes[i + 1] if i + 1 < len(notes) else None
        legato_in = prev_pitch is not None and (note.slur or on - prev_off < 0.03)
        legato_out = nxt is not None and (nxt.slur or nxt.start - off < 0.03)
        level = float(note.velocity)
        hz = float(_midi_hz(note.pitch))
        v1, v2 = DIPHTHONGS.get(note.vowel, (note.vowel, note.vowel))
        fv1, fv2 = singer.formants(v1, hz), singer.formants(v2, hz)
        target = note.pitch + float(rng.normal(0.0, singer.intonation_cents)) / 100.0  # sung a little off

        # Onset consonants end on the beat: the vowel starts on the note.
        cons = [] if legato_in else parse_consonants(note.onset)
        total = sum(CONSONANTS[c].duration for c in cons)
        room = max(0.0, on - max(prev_off + 0.02, on - 0.25))
        squeeze = min(1.0, room / total) if total > 0 else 1.0
        t = on - total * squeeze
        if not legato_in:
            # Breath before a phrase.
            if on - prev_off > 0.45 and rng.random() < 0.8:
                bs = max(prev_off + 0.05, t - float(rng.uniform(0.2, 0.4)))
                be = t - 0.04
                if be - bs > 0.08:
                    g = singer.breathiness * float(rng.uniform(1.0, 2.5)) + 0.05
                    ah.add(bs, 0.0), ah.add((bs + be) / 2, g), ah.add(be, 0.0)
                    form.add(bs, singer.formants("ah") * 0.9), form.add(be, singer.formants("ah") * 0.9)
            av.add(t - 0.002, 0.0), ah.add(t - 0.002, 0.0), af.add(t - 0.002, 0.0)
            scoop = singer.scoop_cents * float(rng.uniform(0.4, 1.3)) / 100.0
            from_above = rng.random() < 0.15  # most onsets scoop up; some fall into the note
            pitch.add(t, target + (0.5 * scoop if from_above else -scoop))
        for c in cons:
            spec = CONSONANTS[c]
            d = spec.duration * squeeze
            loc = np.array(fv1)
            for j in range(3):
                if spec.locus[j]:
                    loc[j] = spec.locus[j] * singer.formant_scale
            form.add(t, loc), form.add(t + d * 0.7, loc)
            if spec.kind == "fric":
                af.add(t, 0.0), af.add(t + 0.3 * d, spec.noise), af.add(t + d - 0.01, spec.noise), af.add(t + d, 0.0)
                ff.add(t, spec.centre), ff.add(t + d, spec.centre), bf.add(t, spec.width), bf.add(t + d, spec.width)
                av.add(t, spec.voicing * level), av.add(t + d - 0.005, spec.voicing * level)
                ah.add(t, 0.0), ah.add(t + d, 0.0)
            elif spec.kind == "stop":
                burst = t + d * 0.55
                vot = 0.0 if spec.voicing > 0 else min(0.04, d * 0.45)
                av.add(t, spec.voicing * level), av.add(t + d - 0.004, spec.voicing * level)
                af.add(burst - 0.001, 0.0), af.add(burst, spec.noise), af.add(burst + 0.012, 0.0)
                ff.add(burst, spec.centre), bf.add(burst, spec.width)
                ah.add(burst + 0.01, 0.0), ah.add(burst + 0.012, 0.35 if vot else 0.0), ah.add(t + d, 0.0)
            elif spec.kind == "aspirate":
                ah.add(t, 0.0), ah.add(t + 0.2 * d, 0.5 * level), ah.add(t + d, 0.3 * level)
                av.add(t + d * 0.8, 0.0)
                form.add(t, fv1), form.add(t + d * 0.7, fv1)
            else:  # nasal / liquid: voiced with their own formants
                av.add(t, 0.3 * spec.voicing * level), av.add(t + 0.02, spec.voicing * level)
                av.add(t + d - 0.005, spec.voicing * level)
                ah.add(t, 0.0), af.add(t, 0.0)
            t += d

        # The vowel (with a diphthong glide) and its level envelope.
        cod = parse_consonants(note.coda)
        cod_total = min(sum(CONSONANTS[c].duration for c in cod), 0.4 * note.duration) if not legato_out else 0.0
        v_end = off - cod_total
        glide = 0.06 if not legato_in else singer.portamento
        form.add(on + min(0.04, 0.3 * note.duration), fv1)
        if v1 != v2:
            form.add(on + 0.55 * (v_end - on), fv1), form.add(v_end - 0.03, fv2)
        else:
            form.add(v_end, fv1)
        attack = float(rng.uniform(0.02, 0.06))
        if not legato_in:
            av.add(on, 0.6 * level)
        av.add(on + attack, level)
        av.add(on + 0.5 * (v_end - on), level * float(rng.uniform(0.9, 1.1)))
        swell = float(rng.uniform(0.75, 1.1))
        av.add(v_end - 0.01, level * swell)
        ah.add(on, singer.breathiness * level), ah.add(v_end, singer.breathiness * level * 1.3)
        af.add(on, 0.0), af.add(v_end, 0.0)
        interval = target - prev_target
        if legato_in and abs(interval) >= 0.9 and singer.overshoot > 0:
            # Portamento overshoots the new note a little, then settles (a singer's pitch correction).
            over = np.sign(interval) * singer.overshoot * min(abs(interval), 4.0) * float(rng.uniform(0.5, 1.2))
            pitch.add(on + glide, target + over)
            pitch.add(on + glide + float(rng.uniform(0.06, 0.14)), target)
        elif legato_in:
            pitch.add(on + glide, target)
        else:
            pitch.add(on + singer.scoop_time * float(rng.uniform(0.6, 1.4)), target)
        tail = singer.portamento / 2 if legato_out else 0.01
        phrase_end = not legato_out and (nxt is None or nxt.start - off > 0.25)
        if phrase_end and note.duration > 0.25 and rng.random() < singer.falloff:  # the pitch falls off
            fall = min(0.4 * note.duration, float(rng.uniform(0.08, 0.22)))
            pitch.add(off - fall, target), pitch.add(off, target - float(rng.uniform(0.5, 3.0)))
        else:
            pitch.add(max(on + 0.02, off - tail), target)
        depth = 0.0 if rng.random() < singer.straight_share else singer.vibrato_depth * float(rng.uniform(0.5, 1.3))
        delay = singer.vibrato_delay * float(rng.uniform(0.7, 1.4))
        if depth > 0 and note.duration > delay + 0.1:  # vibrato sets in late and grows
            d0 = on + delay
            vib.add(on, 0.0), vib.add(d0, 0.0)
            vib.add(min(off, d0 + float(rng.uniform(0.15, 0.45))), depth * level), vib.add(off, depth * level)
            vib.add(off + 0.01, 0.0)
        else:
            vib.add(on, 0.0), vib.add(off, 0.0)

        # Coda consonants, then the release.
        t = v_end
        for c in cod:
            spec = CONSONANTS[c]
            d = cod_total * spec.duration / max(1e-6, sum(CONSONANTS[x].duration for x in cod))
            loc = np.array(fv2)
            for j in range(3):
                if spec.locus[j]:
                    loc[j] = spec.locus[j] * singer.formant_scale
            form.add(t + 0.5 * d, loc)
            if spec.kind == "fric":
                af.add(t, 0.0), af.add(t + 0.3 * d, 0.7 * spec.noise), af.add(t + d, 0.0)
                ff.add(t, spec.centre), bf.add(t, spec.width)
                av.add(t + 0.02, spec.voicing * level)
            elif spec.kind == "stop":
                av.add(t + 0.01, 0.0), af.add(t + d - 0.014, 0.0), af.add(t + d - 0.012, 0.5 * spec.noise)
                af.add(t + d, 0.0), ff.add(t + d, spec.centre), bf.add(t + d, spec.width)
            else:
                av.add(t + 0.02, spec.voicing * level)
            t += d
        if not legato_out:
            av.add(off - 0.002 if cod else off, 0.0)
            av.add(off + 0.001, 0.0), ah.add(off + 0.02, 0.0), af.add(off + 0.001, 0.0)
        prev_off, prev_pitch, prev_target = off, note.pitch, target

    m = n // CONTROL + 2
    times = start + np.arange(m) * (CONTROL / sr)
    p = pitch.render(times, notes[0].pitch)
    # Slow drift (about 1.5 breakpoints a second), fast flutter (25 a second, ~2.5 cents) and vibrato
    # whose rate wanders a little.
    secs = m * CONTROL / sr
    k_slow, k_fast = max(2, int(secs * 1.5) + 2), max(2, int(secs * 25) + 2)
    drift = np.interp(np.arange(m), np.linspace(0, m, k_slow), rng.normal(0, singer.drift_cents, k_slow))
    drift += np.interp(np.arange(m), np.linspace(0, m, k_fast), rng.normal(0, 2.5, k_fast))
    rate = singer.vibrato_rate * (1 + 0.06 * np.interp(np.arange(m), np.linspace(0, m, 8), rng.normal(0, 1, 8)))
    vphase = np.cumsum(2 * np.pi * rate * CONTROL / sr) + rng.uniform(0, 2 * np.pi)
    venv = vib.render(times, 0.0)
    cents = drift + venv * np.sin(vphase)
    f0 = _midi_hz(p + cents / 100.0)
    a_v = np.maximum(av.render(times, 0.0), 0.0) * (1 + 0.15 * (venv / max(singer.vibrato_depth, 1.0)) * np.sin(vphase))
    formants = form.render(times, singer.formants("ah"))
    # Two fixed high resonances stand in for the poles above F5 (air and brilliance up to ~8 kHz).
    high = np.array([5200.0, 6400.0, 7600.0, 8800.0]) * singer.formant_scale
    formants = np.concatenate([formants, np.repeat(high[:, None], m, axis=1)])
    bandwidths = np.repeat(np.concatenate([bw, [500.0, 700.0, 900.0, 1100.0]])[:, None], m, axis=1)
    formants = np.minimum(formants, 0.45 * sr)
    jit = rng.normal(0, singer.jitter, 4096)
    shim = rng.normal(0, singer.shimmer, 4096)
    a_h, a_f = np.maximum(ah.render(times, 0.0), 0.0), np.maximum(af.render(times, 0.0), 0)
    f_f, b_f = ff.render(times, 5000.0), bf.render(times, 3000.0)
    noise_a, noise_f = rng.standard_normal(n), rng.standard_normal(n)
    voiced, fric = np.zeros(n), np.zeros(n)
    # Synthesise only where a source sounds (plus a ring-down margin): most lines are silent most of the time.
    for c0, c1 in _sounding_spans(np.maximum(np.maximum(a_v, a_h), a_f) > 1e-6, round(0.25 * sr / CONTROL)):
        a, b = c0 * CONTROL, min(n, c1 * CONTROL)
        if b <= a:
            continue
        k = slice(c0, c1 + 2)
        voiced[a:b], fric[a:b] = _synthesise(f0[k], a_v[k], a_h[k], a_f[k], f_f[k], b_f[k], formants[:, k],
                                             bandwidths[:, k], singer.open_quotient, singer.tilt, jit, shim,
                                             noise_a[a:b], noise_f[a:b], sr, CONTROL, singer.air, singer.closing)
    active = a_v[np.arange(n) // CONTROL] > 0.3
    rms = np.sqrt(np.mean(voiced[active] ** 2)) if active.any() else 1.0
    out[:] = voiced / max(rms, 1e-9) * 0.1 + fric * 0.35
    return out
