"""The song engine: determinism, shapes, exact stem sums, limiter, arrangement, sung pitch, render CLI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import core
from training.songs import STEMS, SongSource
from training.songs.compose import Note, Part
from training.songs.instruments import render_stems
from training.songs.production import linked_limiter_gain
from training.songs.voice import Singer, sing

SR = 44100


@pytest.fixture(scope="module")
def source() -> SongSource:
    # The sf2 soundfonts only: the compressed MuseScore sf3 takes ~7 s to load once per process.
    cfg = core.load_config()["songs"]
    cfg["soundfonts"] = {k: v for k, v in cfg["soundfonts"].items() if k.endswith(".sf2")}
    return SongSource(seed=0, sample_rate=SR, seconds=2.0, config=cfg)


def test_songs_are_deterministic_and_distinct(source):
    a = source.song(1)
    b = source.song(2)
    a2 = source.song(1)  # after another song: no state leaks between renders
    assert set(a) == set(STEMS)
    for k in STEMS:
        np.testing.assert_array_equal(a[k], a2[k])
    assert any(not np.array_equal(a[k], b[k]) for k in STEMS)
    assert source.name(1) != source.name(2)
    assert len(source) >= 10**5


@pytest.mark.parametrize("index", [0, 3])
def test_stems_shape_dtype_and_limited_mixture(source, index):
    stems = source.song(index)
    for k in STEMS:
        assert stems[k].shape == (2, int(2.0 * SR)) and stems[k].dtype == np.float32, (k, stems[k].shape)
        assert np.isfinite(stems[k]).all(), k
    mix = np.sum([stems[k] for k in STEMS], axis=0)
    assert 0.05 < np.abs(mix).max() <= source.config.mix["limiter_ceiling"][1] + 1e-4
    assert np.sqrt(np.mean(mix ** 2)) > 0.01  # not silent


def test_linked_limiter_bounds_peaks_and_leaves_quiet_audio_alone():
    rng = np.random.default_rng(0)
    loud = rng.normal(0, 0.5, (2, SR)) * np.linspace(0.1, 4, SR)
    g = linked_limiter_gain(loud, 0.9, 2646)
    assert np.abs(loud * g).max() <= 0.9 + 1e-9
    assert g.min() < 0.5
    quiet = 0.1 * loud / np.abs(loud).max()
    np.testing.assert_array_equal(linked_limiter_gain(quiet, 0.9, 2646), 1.0)


def _vocal_free_and_sung_spans(source, index):
    song, _, _ = source.plan(index)
    spans = song.vocal_spans()
    free = [s for s in song.sections
            if s.end - s.start > 5.0 and not any(a < s.end and b > s.start - 0.5 for a, b in spans)]
    return song, free, spans


def test_arrangement_has_vocal_free_sections_that_render_silent(source):
    found = None
    for index in range(20):
        song, free, spans = _vocal_free_and_sung_spans(source, index)
        if free:
            found = (index, song, free[0], spans)
            break
    assert found, "no song among the first 20 has a vocal-free section"
    index, song, sec, spans = found
    rng = source._rng(index)  # any rng: the check is about the arrangement, not the levels
    quiet = source.render(song, sec.start + 3.0, rng)
    acc = sum(float(np.sum(quiet[k] ** 2)) for k in ("drums", "bass", "other"))
    assert float(np.sum(quiet["vocals"] ** 2)) < 1e-4 * acc
    a, _b = max(spans, key=lambda s: s[1] - s[0])
    sung = source.render(song, a - 0.5, rng)
    assert float(np.sum(sung["vocals"] ** 2)) > 1e-3 * sum(float(np.sum(sung[k] ** 2)) for k in ("drums", "bass",
                                                                                                   "other"))


def _pitch_midi(x: np.ndarray, sr: int, fmin: float = 70.0, fmax: float = 1000.0) -> float:
    x = x - x.mean()
    ac = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * len(x))) ** 2)[: len(x)]
    lo, hi = int(sr / fmax), int(sr / fmin)
    lag = lo + int(np.argmax(ac[lo:hi]))
    return 69 + 12 * np.log2(sr / lag / 440.0)


def test_sung_pitch_follows_the_composed_melody(source):
    checked = 0
    for index in range(10):
        song, _, _ = source.plan(index)
        lead = next((v for v in song.vocals if v.role == "lead"), None)
        if lead is None:
            continue
        note = next((n for n in lead.notes if n.duration >= 0.4 and not n.slur), None)
        if note is None:
            continue
        singer = Singer.from_seed(lead.singer_seed, lead.female)
        start = note.start - 0.5
        voice = sing(lead.notes, singer, start, int(1.5 * SR), SR, np.random.default_rng(index))
        mid = int((note.start + note.duration / 2 - start) * SR)
        est = _pitch_midi(voice[mid - int(0.1 * SR): mid + int(0.1 * SR)], SR)
        assert abs(est - note.pitch) < 1.0, (index, est, note.pitch)
        checked += 1
        if checked == 3:
            break
    assert checked >= 2


def test_several_voices_and_a_lead_instrument_in_the_vocal_register(source):
    roles: set[str] = set()
    overlapping, bends = 0, 0
    for index in range(20):
        song, _, _ = source.plan(index)
        roles |= {v.role for v in song.vocals}
        sung = [n for v in song.vocals if v.role == "lead" for n in v.notes]
        for part in (p for p in song.parts if p.name == "lead"):
            bends += len(part.bends)
            # instrument notes sounding at the same time as the voice, within a fifth of its pitch
            overlapping += sum(any(v.start < n.start + n.duration and n.start < v.start + v.duration
                                   and abs(n.pitch - v.pitch) <= 7 for v in sung) for n in part.notes)
    assert {"lead", "double", "harmony", "backing"} <= roles, roles
    assert overlapping > 20 and bends > 0, (overlapping, bends)


def test_pitch_wheel_bends_the_instrument_by_the_asked_semitones():
    font = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
    if not Path(font).is_file():
        pytest.skip(f"{font} is not installed (fluid-soundfont-gm)")
    part = Part("lead", "other", 4, 73, 0, 0.0, 100, [Note(0.1, 1.8, 69, 100)], [(0.0, 0.0), (1.0, 1.0)])
    x = render_stems([part], font, 0.0, 2 * SR, SR)["other"].mean(0)
    assert abs(_pitch_midi(x[int(0.4 * SR):int(0.8 * SR)], SR) - 69) < 0.3
    assert abs(_pitch_midi(x[int(1.3 * SR):int(1.7 * SR)], SR) - 70) < 0.3


def test_render_cli_writes_stems_whose_sum_is_the_mixture(tmp_path):
    from training.render import main

    assert main(["--out", str(tmp_path), "--n", "1", "--seconds", "1", "--seed", "1", "--no-progress"]) == 0
    (folder,) = list(tmp_path.iterdir())
    audio = {p.stem: sf.read(p, dtype="float32")[0] for p in folder.glob("*.wav")}
    assert set(audio) == {*STEMS, "mixture"}
    assert audio["mixture"].shape == (SR, 2)
    np.testing.assert_array_equal(np.sum([audio[k] for k in STEMS], axis=0, dtype=np.float32), audio["mixture"])


@pytest.mark.parametrize("args", [["--n", "0"], ["--seconds", "-1"], ["--n", "x"], ["--jobs", "0"]])
def test_render_cli_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args):
    from training.render import main

    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path / "o"), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_render_cli_process_reports_bad_output_path_in_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = subprocess.run([sys.executable, "-m", "training.render", "--out", str(blocker), "--n", "1"], check=False,
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr and "folder" in r.stderr
