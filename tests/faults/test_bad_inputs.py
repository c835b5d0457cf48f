"""The fault table: bad inputs, configs, checkpoints, data and output paths across the CLIs.

Each case runs the CLI's `main(argv)` in this process (argument, config and path errors end long
before any audio is processed, so a subprocess per case would only add the 2-5 s torch import; the
signal and full-disk cases in test_signals_disk.py are real processes). Each asserts the exit code, at
most two stderr lines with the expected message in the last one, no traceback, every pre-existing
output byte-identical, and no stray temporary. `{A}` is the assets folder, `{W}` the case's own folder.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from fault_helpers import assert_contract, protect

CLI = {
    "streaming": "streaming.cli",
    "separate": "tools.separate",
    "evaluate": "tools.evaluate",
    "export": "tools.export",
    "training": "training.__main__",
    "bench": "tools.bench",
}
TINY = ["--checkpoint", "{A}/tiny.ckpt"]
OUT = ["--output", "{W}/out.wav"]
STREAM = ["--input", "{A}/in.wav", *OUT, *TINY]
TRAIN = ["--data", "synthetic", "--out", "{W}/run"]
BENCH = ["--presets", "tiny", "--no-offline", "--no-peers"]


@dataclass(frozen=True)
class Case:
    id: str
    cli: str
    argv: tuple[str, ...]
    rc: int
    message: str
    kept: tuple[str, ...] = ("out.wav",)


def c(id: str, cli: str, argv: list[str], rc: int, message: str, kept: tuple[str, ...] = ("out.wav",)) -> Case:
    return Case(id, cli, tuple(argv), rc, message, kept)


CASES = [
    # -- python -m streaming: configuration (every key typed and ranged; unknown keys and sections refused)
    c("stream-file-block-0", "streaming", [*STREAM, "--config", "{A}/block0.yaml"], 2, "host.file_block"),
    c("stream-file-block-neg", "streaming", [*STREAM, "--config", "{A}/blockneg.yaml"], 2, "got -4096"),
    c("stream-file-block-abc", "streaming", [*STREAM, "--config", "{A}/blockabc.yaml"], 2, "got 'abc'"),
    c("stream-ceiling-loud", "streaming", [*STREAM, "--config", "{A}/loud.yaml"], 2, "mixer.limiter_ceiling_db"),
    c("stream-threads-neg", "streaming", [*STREAM, "--config", "{A}/threads.yaml"], 2, "streaming.threads"),
    c("stream-compile-word", "streaming", [*STREAM, "--config", "{A}/compile.yaml"], 2, "streaming.compile"),
    c("stream-key-type", "streaming", [*STREAM, "--config", "{A}/keyfft.yaml"], 2, "key.n_fft"),
    c("stream-mic-range", "streaming", [*STREAM, "--config", "{A}/micblocks.yaml"], 2, "mic.prefill_blocks"),
    c("stream-unknown-effect", "streaming", [*STREAM, "--config", "{A}/chains.yaml"], 2, "flanger9000"),
    c("stream-unknown-section", "streaming", [*STREAM, "--config", "{A}/section.yaml"], 2, "unknown section 'bogus'"),
    c("stream-unknown-key", "streaming", [*STREAM, "--config", "{A}/hostkey.yaml"], 2, "unknown key 'blok_size'"),
    c("stream-limiter-order", "streaming", [*STREAM, "--config", "{A}/limiter.yaml"], 2, "limiter_threshold_db <"),
    c("stream-quality-choice", "streaming", [*STREAM, "--config", "{A}/quality.yaml"], 2, "one of QQ, LQ"),
    c("stream-midi-api", "streaming", [*STREAM, "--config", "{A}/midiapi.yaml"], 2, "midi.api"),
    c("stream-preset-range", "streaming", [*STREAM, "--config", "{A}/preset.yaml"], 2, "presets.tiny.n_fft"),
    c("stream-config-not-yaml", "streaming", [*STREAM, "--config", "{A}/notyaml.yaml"], 2, "not valid YAML"),
    c("stream-config-list", "streaming", [*STREAM, "--config", "{A}/list.yaml"], 2, "mapping"),
    c("stream-config-binary", "streaming", [*STREAM, "--config", "{A}/binary.yaml"], 2, "not valid YAML"),
    c("stream-config-missing", "streaming", [*STREAM, "--config", "{A}/nope.yaml"], 2, "config file not found"),
    # flags
    c("stream-duration-inf", "streaming", [*STREAM, "--duration", "inf"], 2, "--duration"),
    c("stream-duration-nan", "streaming", [*STREAM, "--duration", "nan"], 2, "--duration"),
    c("stream-blocksize-neg", "streaming", [*STREAM, "--blocksize", "-5"], 2, "--blocksize"),
    c("stream-latency-word", "streaming", [*STREAM, "--latency", "fast"], 2, "--latency"),
    c("stream-mute-solo", "streaming", [*STREAM, "--mute", "vocals", "--solo", "vocals"], 2, "contradict"),
    c("stream-unknown-stem", "streaming", [*STREAM, "--mute", "kazoo"], 2, "vocals, accompaniment"),
    c("stream-gain-syntax", "streaming", [*STREAM, "--gain", "vocals"], 2, "STEM=DB"),
    c("stream-midi-map-alone", "streaming", [*STREAM, "--midi-map", "{A}/in.wav"], 2, "needs --midi"),
    # inputs
    c("stream-six-channels", "streaming", ["--input", "{A}/six.wav", *OUT, *TINY], 2, "--channels"),
    c("stream-channel-range", "streaming", ["--input", "{A}/six.wav", *OUT, "--channels", "7", *TINY], 2,
      "only 6 channels"),
    c("stream-junk-input", "streaming", ["--input", "{A}/junk.wav", *OUT, *TINY], 2, "cannot read audio file"),
    c("stream-empty-input", "streaming", ["--input", "{A}/empty.wav", *OUT, *TINY], 2, "cannot read audio file"),
    c("stream-missing-input", "streaming", ["--input", "{A}/no.wav", *OUT, *TINY], 2, "input file not found"),
    # checkpoints
    c("stream-ckpt-rate", "streaming", ["--input", "{A}/in.wav", *OUT, "--checkpoint", "{A}/rate.ckpt"], 2,
      "sample_rate"),
    c("stream-ckpt-type", "streaming", ["--input", "{A}/in.wav", *OUT, "--checkpoint", "{A}/nfft.ckpt"], 2, "n_fft"),
    c("stream-ckpt-junk", "streaming", ["--input", "{A}/in.wav", *OUT, "--checkpoint", "{A}/junk.ckpt"], 2,
      "checkpoint"),
    # output paths, checked before any work
    c("stream-output-is-input", "streaming", ["--input", "{W}/out.wav", *OUT, *TINY], 2, "is also the input"),
    c("stream-output-folder", "streaming", ["--input", "{A}/in.wav", "--output", "{W}/sub", *TINY], 2,
      "is a folder", ("sub/keep.wav",)),
    c("stream-output-no-folder", "streaming", ["--input", "{A}/in.wav", "--output", "{W}/nope/o.wav", *TINY], 2,
      "does not exist"),
    c("stream-output-type", "streaming", ["--input", "{A}/in.wav", "--output", "{W}/o.mp3", *TINY], 2,
      "unsupported output file type"),
    c("stream-stats-proc", "streaming", [*STREAM, "--stats-json", "/proc/s.json"], 2, "--stats-json"),
    c("stream-stats-folder", "streaming", [*STREAM, "--stats-json", "{W}/sub"], 2, "is a folder", ("out.wav", "sub/x")),
    # -- python -m tools.separate
    c("sep-same-basename", "separate", ["{A}/x/song.wav", "{A}/y/song.wav", "--out", "{W}/sep", *TINY, "-q"], 2,
      "would both write", ("sep/song/vocals.wav",)),
    c("sep-same-file-twice", "separate", ["{A}/in.wav", "{A}/in.wav", "--out", "{W}/sep", *TINY, "-q"], 2,
      "would both write", ("sep/in/vocals.wav",)),
    c("sep-out-is-file", "separate", ["{A}/in.wav", "--out", "{W}/out.wav", *TINY, "-q"], 2, "is a file"),
    c("sep-out-proc", "separate", ["{A}/in.wav", "--out", "/proc/sep", *TINY, "-q"], 2, "cannot write"),
    c("sep-six-channels", "separate", ["{A}/six.wav", "--out", "{W}/sep", *TINY, "-q"], 2, "--channels",
      ("sep/six/vocals.wav",)),
    c("sep-nan-input", "separate", ["{A}/nan.wav", "--out", "{W}/sep", *TINY, "-q"], 2, "finite",
      ("sep/nan/vocals.wav",)),
    c("sep-junk-input", "separate", ["{A}/junk.wav", "--out", "{W}/sep", *TINY, "-q"], 2, "cannot read audio"),
    c("sep-unknown-stem", "separate", ["{A}/in.wav", "--out", "{W}/sep", *TINY, "--stems", "kazoo", "-q"], 2,
      "kazoo"),
    c("sep-ckpt-rate", "separate", ["{A}/in.wav", "--out", "{W}/sep", "--checkpoint", "{A}/rate.ckpt", "-q"], 2,
      "sample_rate"),
    # -- python -m tools.evaluate
    c("eval-json-proc", "evaluate", ["demo", "--json", "/proc/e.json", *TINY, "-q"], 2, "--json"),
    c("eval-json-folder", "evaluate", ["demo", "--json", "{W}/sub", *TINY, "-q"], 2, "is a folder", ("sub/x",)),
    c("eval-bad-folder", "evaluate", ["folder:{A}/data", *TINY, "-q"], 2, "equal length, channels and rate"),
    c("eval-bad-spec", "evaluate", ["s3://bucket", *TINY, "-q"], 2, "expected demo"),
    # -- python -m tools.export
    c("export-out-is-file", "export", ["--out", "{W}/out.wav", "--preset", "tiny"], 2, "is a file"),
    c("export-formats", "export", ["--out", "{W}/exp", "--preset", "tiny", "--formats", "tflite"], 2, "--formats",
      ("exp/step.pt",)),
    c("export-segment-inf", "export", ["--out", "{W}/exp", "--preset", "tiny", "--segment-seconds", "inf"], 2,
      "--segment-seconds", ("exp/step.pt",)),
    c("export-ckpt-rate", "export", ["--out", "{W}/exp", "--checkpoint", "{A}/rate.ckpt"], 2, "sample_rate",
      ("exp/step.pt",)),
    # -- python -m training
    c("train-out-is-file", "training", ["--data", "synthetic", "--preset", "tiny", "--out", "{W}/out.wav"], 2,
      "is a file"),
    c("train-bad-folder", "training", ["--data", "folder:{A}/data", "--preset", "tiny", "--out", "{W}/run"], 2,
      "problems"),
    c("train-config-type", "training", ["--config", "{A}/batch.yaml", *TRAIN], 2, "training.batch_size"),
    c("train-config-range", "training", ["--config", "{A}/lr.yaml", *TRAIN], 2, "optimizer.lr"),
    c("train-config-section", "training", ["--config", "{A}/section.yaml", *TRAIN], 2, "unknown section"),
    c("train-no-data", "training", ["--out", "{W}/run"], 2, "expected --data"),
    c("train-resume-missing", "training", ["--resume", "{W}/nope"], 2, "--resume"),
    # -- python -m tools.bench
    c("bench-json-proc", "bench", ["--json", "/proc/b.json", *BENCH], 2, "--json"),
    c("bench-hops-per-step", "bench", ["--hops-per-step", "1,8", *BENCH], 2, "--hops-per-step"),
    # -- python -m streaming, the multi-hop step
    c("streaming-hops-per-step", "streaming", ["--hops-per-step", "0", "--input", "demo", "--output", "{W}/o.wav"], 2,
      "--hops-per-step"),
]


def test_the_table_is_large_enough():
    assert len(CASES) >= 40 and len({k.id for k in CASES}) == len(CASES)
    assert {k.cli for k in CASES} == set(CLI)


@pytest.mark.parametrize("case", CASES, ids=[k.id for k in CASES])
def test_bad_input(case: Case, assets, tmp_path, capfd):
    import importlib
    main = importlib.import_module(CLI[case.cli]).main
    kept = protect(tmp_path, case.kept)
    argv = [a.format(A=assets, W=tmp_path) for a in case.argv]
    if case.cli == "streaming":
        argv.append("--no-compile")   # the eager step: nothing here needs the compiled one
    capfd.readouterr()
    try:
        rc = main(argv)
    except SystemExit as e:           # argparse
        rc = e.code
    err = capfd.readouterr().err
    assert_contract(rc, err, case.rc, case.message, kept, tmp_path, assets)
    if case.cli == "separate":        # no empty track folder left behind
        made = [p for p in (tmp_path / "sep").rglob("*") if p.is_dir() and not any(p.iterdir())] \
            if (tmp_path / "sep").exists() else []
        assert not made, made
