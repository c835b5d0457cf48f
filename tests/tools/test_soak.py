"""`python -m tools.soak`: a short soak of the real CLI on its own JACK dummy server, with a competing load; the
record, its timeline and its picture; bad input."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.soak import parse_status

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("jackd") is None, reason="jackd (Debian package jackd2) is not installed")


def test_status_lines_parse():
    got = parse_status("lat   29.0 ms (+2 steps) | load   23% | xruns in 3 out 4 late 5 | dB vocals -20.0 accompaniment --")
    assert got == {"latency_ms": 29.0, "steps": 2, "load": 0.23, "xruns_in": 3, "xruns_out": 4, "late": 5}
    assert parse_status("lat   23.7 ms | load    9% | xruns in 0 out 0 late 0 | dB vocals --")["steps"] == 0
    assert parse_status("streaming: compiling ...") is None


def test_a_short_soak_with_a_competing_load_reports_its_timeline(tmp_path):
    js, png = tmp_path / "soak.json", tmp_path / "soak.png"
    r = subprocess.run([sys.executable, "-m", "tools.soak", "--minutes", "0.15", "--load", "0.3", "--json", str(js),
                        "--plot", str(png), "--", "--preset", "tiny"], cwd=ROOT, capture_output=True, text=True,
                       timeout=400, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads(js.read_text())
    assert rec["competing_load"] == 0.3 and rec["rate"] == 48000 and rec["blocksize"] == 256
    assert rec["seconds"] > 7.0 and rec["blocks"] == round(rec["seconds"] * 48000 / 256)
    line = rec["timeline"]
    assert len(line) >= 10                                   # twice a second for 9 s
    ts = [p["t"] for p in line]
    assert ts == sorted(ts) and 0 < ts[0] < 2.0 and ts[-1] > 7.0
    assert line[-1]["late"] <= rec["late_blocks"] and line[-1]["steps"] <= rec["headstart_steps"]
    assert rec["latency_end_ms"] >= rec["latency_start_ms"] > 0
    # the end latency is the start latency (the first status line's) plus what the head start grew after it, one
    # 256-frame block a step (to display rounding); a step before the first status line is in both
    assert rec["headstart_grown_ms"] == pytest.approx(rec["headstart_steps"] * 1000 * 256 / 48000, abs=0.01)
    grown_after = (rec["headstart_steps"] - line[0]["steps"]) * 1000 * 256 / 48000
    assert rec["latency_end_ms"] - rec["latency_start_ms"] == pytest.approx(grown_after, abs=0.11)
    assert rec["rss_start_mb"] > 50 and rec["rss_drift_mb"] is not None
    assert png.stat().st_size > 10_000
    assert "late blocks" in r.stdout and "RSS" in r.stdout
    t = subprocess.run([sys.executable, "-m", "tools.soak", "--table", str(js)], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, check=False)
    assert t.returncode == 0, t.stderr
    row = t.stdout.strip().splitlines()[-1]
    assert row.startswith("| soak | 0.15 | 48000 / 256 | 30 % |") and f"{rec['late_blocks']} of {rec['blocks']}" in row


@pytest.mark.parametrize("args,says", [(["--load", "1.5"], "--load"), (["--minutes", "0"], "--minutes"),
                                       (["--json", "/proc/x.json"], "--json"), (["--table", "/no/such.json"], "--table")])
def test_bad_input_is_one_line_and_exit_2(args, says):
    r = subprocess.run([sys.executable, "-m", "tools.soak", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
