"""Render instrument parts through General MIDI soundfonts with FluidSynth, offline (no audio driver)."""
from __future__ import annotations

import ctypes

import numpy as np

from training.songs.compose import Part

_HOLDERS: dict[str, object] = {}
_SETTINGS = {"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.dynamic-sample-loading": 0,
             "synth.polyphony": 256, "synth.cpu-cores": 1}


def _write_float():
    import fluidsynth

    fn = fluidsynth._fl.fluid_synth_write_float
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                   ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    return fn


def _fresh_synth(soundfont: str, sample_rate: int):
    """A new synthesiser with `soundfont` loaded.

    A synthesiser's output depends slightly on what it played before (voice slots, interpolation state), so
    every song gets a fresh one. FluidSynth shares the sample data of a soundfont between synthesisers while
    one holds it open, so after the first load per process (FluidR3 ~1 s, MuseScore sf3 ~7 s) a new one
    costs 0.05-0.2 s.
    """
    import fluidsynth

    if soundfont not in _HOLDERS:
        holder = fluidsynth.Synth(**_SETTINGS)
        if holder.sfload(soundfont) < 0:
            raise RuntimeError(f"FluidSynth could not load soundfont {soundfont}")
        _HOLDERS[soundfont] = holder
    s = fluidsynth.Synth(gain=0.4, samplerate=float(sample_rate), channels=16, **_SETTINGS)
    sfid = s.sfload(soundfont)
    if sfid < 0:
        raise RuntimeError(f"FluidSynth could not load soundfont {soundfont}")
    return s, sfid


def render_stems(parts: list[Part], soundfont: str, start: float, n: int, sample_rate: int) -> dict[str, np.ndarray]:
    """Render every stem that `parts` play (one fresh synthesiser per call, stems in a fixed order).

    Returns stem name -> float32 (2, N) for the window [start, start + N / sample_rate) seconds.
    """
    synth, sfid = _fresh_synth(soundfont, sample_rate)
    try:
        out = {}
        for stem in sorted({p.stem for p in parts}):
            out[stem] = render_parts([p for p in parts if p.stem == stem], synth, sfid, start, n, sample_rate)
        return out
    finally:
        synth.delete()


def render_parts(parts: list[Part], synth, sfid: int, start: float, n: int, sample_rate: int) -> np.ndarray:
    """Render the notes of `parts` that sound in [start, start + n / sample_rate) seconds.

    Notes that began before `start` are started at `start` (callers render a pre-roll and drop it).
    Returns float32 (2, N) stereo; each part is panned on its channel.
    """
    write = _write_float()
    for ch in range(16):
        synth.all_sounds_off(ch)
    synth.system_reset()
    end = start + n / sample_rate
    events: list[tuple[int, int, int, int, int]] = []  # (sample, order, channel, key | bend, velocity)
    for part in parts:
        bank = part.bank
        if synth.program_select(part.channel, sfid, bank, part.program) != 0:
            synth.program_select(part.channel, sfid, bank, 0)
        synth.cc(part.channel, 7, int(part.volume))
        synth.cc(part.channel, 10, int(np.clip(64 + 63 * part.pan, 0, 127)))
        if part.bends:  # RPN 0: pitch-wheel range +-2 semitones (the GM default, set explicitly)
            for cc, v in ((101, 0), (100, 0), (6, 2), (38, 0), (101, 127), (100, 127)):
                synth.cc(part.channel, cc, v)
            before = [b for b in part.bends if b[0] < start]
            for t, semis in ([max(before)] if before else []) + [b for b in part.bends if start <= b[0] < end]:
                value = int(np.clip(round(semis / 2.0 * 8192), -8192, 8191))
                events.append((max(0, round((t - start) * sample_rate)), 1, part.channel, value, 0))
        for note in part.notes:
            s, e = note.start, note.start + note.duration
            if e <= start or s >= end:
                continue
            events.append((max(0, round((s - start) * sample_rate)), 2, part.channel, note.pitch, note.velocity))
            if e < end:
                events.append((round((e - start) * sample_rate), 0, part.channel, note.pitch, 0))
    events.sort()
    out = np.zeros((2, n), np.float32)
    left, right = out[0].ctypes.data, out[1].ctypes.data
    pos = 0
    for sample, order, ch, key, vel in events:
        sample = min(sample, n)
        if sample > pos:
            write(synth.synth, sample - pos, left + 4 * pos, 0, 1, right + 4 * pos, 0, 1)
            pos = sample
        if order == 1:
            synth.pitch_bend(ch, key)
        elif vel:
            synth.noteon(ch, key, vel)
        else:
            synth.noteoff(ch, key)
    if pos < n:
        write(synth.synth, n - pos, left + 4 * pos, 0, 1, right + 4 * pos, 0, 1)
    for ch in range(16):
        synth.all_sounds_off(ch)
    # FluidSynth renders in blocks of 64 samples: drain the partial block (written before the voices were
    # stopped) and one more, so the next render starts from silence at a block boundary (determinism).
    drain = np.zeros(128 + 64, np.float32)
    rest = 64 - n % 64 + 64
    write(synth.synth, rest, drain.ctypes.data, 0, 1, drain.ctypes.data, 0, 1)
    return out
