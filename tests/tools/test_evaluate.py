"""tools.evaluate on a folder of known stems: perfect estimates, the mixture baseline against museval
called directly, the oracle between floor and ceiling, JSON shape, CLI errors."""
from __future__ import annotations

import json
import math

import museval
import numpy as np
import pytest
import soundfile as sf
from tool_helpers import one_line_error, stem_signals

import model
from tools.evaluate import bss_eval, evaluate, folder_tracks, main, references_for


def test_perfect_estimate_scores_very_high():
    stems = stem_signals(3.0)
    refs = {"vocals": stems["vocals"], "accompaniment": stems["drums"] + stems["bass"] + stems["other"]}
    scores = bss_eval(refs, refs, 44100)
    for s in refs:
        assert scores[s]["SDR"] > 60 and scores[s]["SIR"] > 60, scores


def test_mixture_baseline_equals_museval_directly(stem_folder):
    sep = model.build_separator("tiny").eval()  # vocals, accompaniment (= drums + bass + other)
    res = evaluate(sep, folder_tracks(stem_folder), baselines=("mixture",))
    mix = sf.read(stem_folder / "song_a" / "mixture.wav", dtype="float32")[0]
    names = list(sep.stems)
    files = {n: sf.read(stem_folder / "song_a" / f"{n}.wav", dtype="float32")[0]
             for n in ("vocals", "drums", "bass", "other")}
    refs = np.stack([files["vocals"], files["drums"] + files["bass"] + files["other"]])
    sdr, isr, sir, sar = museval.evaluate(refs, np.stack([mix] * len(names)), win=44100, hop=44100)
    got = res["tracks"]["song_a"]["mixture"]
    for i, n in enumerate(names):
        for metric, values in (("SDR", sdr), ("ISR", isr), ("SIR", sir), ("SAR", sar)):
            want = float(np.nanmedian(values[i]))
            assert got[n][metric] == pytest.approx(want, abs=1e-9), (n, metric)
    assert res["aggregate"]["mixture"] == got        # one track: the median over tracks is that track
    assert set(res["tracks"]["song_a"]) == {"mixture", "model"}


def test_accompaniment_reference_built_or_given(stem_folder):
    track = next(folder_tracks(stem_folder))
    refs = references_for(track, ("vocals", "accompaniment"))
    np.testing.assert_allclose(refs["accompaniment"],
                               track.references["drums"] + track.references["bass"] + track.references["other"])
    given = np.full_like(track.mixture, 0.5)
    track.references["accompaniment"] = given
    assert references_for(track, ("vocals", "accompaniment"))["accompaniment"] is given


def test_cli_json_shape_and_oracle_above_mixture(stem_folder, tmp_path, capsys):
    out = tmp_path / "scores.json"
    code = main([f"folder:{stem_folder}", "--preset", "tiny", "--baseline", "mixture", "--baseline", "oracle",
                 "--json", str(out), "-q"])
    assert code == 0
    res = json.loads(out.read_text())
    assert set(res) >= {"tracks", "aggregate", "meta"}
    assert set(res["tracks"]["song_a"]) == {"model", "mixture", "oracle"}
    for est in ("model", "mixture", "oracle"):
        assert set(res["aggregate"][est]) == {"vocals", "accompaniment"}
        for scores in res["aggregate"][est].values():
            assert set(scores) == {"SDR", "SIR", "SAR", "ISR"}
            assert all(v is None or math.isfinite(v) for v in scores.values())
    agg = res["aggregate"]
    for stem in ("vocals", "accompaniment"):   # the ideal masks beat the unprocessed mixture
        assert agg["oracle"][stem]["SDR"] > agg["mixture"][stem]["SDR"] + 3
    table = capsys.readouterr().out
    assert "oracle" in table and "SDR" in table


@pytest.mark.parametrize("data", ["folder:/no/such/folder", "nonsense", "musdb:/no/such"])
def test_bad_data(data, capsys):
    one_line_error(capsys, main([data, "--preset", "tiny"]))


def test_missing_reference(tmp_path, capsys):
    d = tmp_path / "data" / "t"
    d.mkdir(parents=True)
    sf.write(d / "mixture.wav", np.zeros((44100, 2), np.float32), 44100)
    sf.write(d / "drums.wav", np.zeros((44100, 2), np.float32), 44100)
    line = one_line_error(capsys, main([f"folder:{tmp_path / 'data'}", "--preset", "tiny"]))
    assert "vocals" in line


def test_one_track_folder_of_ogg_vocals_and_accompaniment(tmp_path):
    # The eif layout: <song>/{vocals,accompaniment}.ogg without a mixture file; the folder itself is the track.
    stems = stem_signals(1.0)
    d = tmp_path / "Song"
    d.mkdir()
    acc = stems["drums"] + stems["bass"] + stems["other"]
    sf.write(d / "vocals.ogg", stems["vocals"], 44100, format="OGG", subtype="VORBIS")
    sf.write(d / "accompaniment.ogg", acc, 44100, format="OGG", subtype="VORBIS")
    (track,) = list(folder_tracks(d))
    assert track.name == "Song" and set(track.references) == {"vocals", "accompaniment"}
    np.testing.assert_allclose(track.mixture, track.references["vocals"] + track.references["accompaniment"])
    assert np.abs(track.references["vocals"] - stems["vocals"]).mean() < 0.02  # lossy, but the same signal


def test_eif_valid_yields_the_fixed_excerpts_as_exact_mixtures():
    from training.data import DataError
    from training.real_vocals import find_data_root

    try:
        find_data_root()
    except DataError as e:
        pytest.skip(f"no shared data folder: {e}")
    from tools.evaluate import open_data

    tracks = list(open_data("eif-valid"))
    assert len(tracks) == 16 and {t.name.split("@")[0] for t in tracks} == {"Caesium", "Francium"}
    t = tracks[0]
    assert t.mixture.shape == (12 * 44100, 2) and t.rate == 44100
    np.testing.assert_array_equal(t.mixture, t.references["vocals"] + t.references["accompaniment"])
