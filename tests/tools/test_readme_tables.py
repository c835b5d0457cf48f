"""tools.readme_tables: the README's measured tables are the ones their JSON makes, and a stale one is caught."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tools import readme_tables

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_tables_match_their_json():
    text = readme_tables.README.read_text()
    _, changed = readme_tables.render(text, readme_tables.README.parent)
    assert changed == [], f"stale README tables (run python -m tools.readme_tables): {changed}"
    # every measured table the README generates is there
    kinds = {m["kind"] for line in text.splitlines() if (m := readme_tables.START.match(line.strip()))}
    assert kinds == set(readme_tables.TABLES), kinds


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.readme_tables", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_a_changed_figure_is_stale_until_regenerated(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(ROOT / "docs" / "bench.json", docs / "bench.json")
    table = readme_tables.TABLES["presets"]([docs / "bench.json"])
    md = tmp_path / "README.md"
    md.write_text(f"# x\n\nprose\n<!-- table: presets docs/bench.json -->\n{table}\n<!-- /table -->\nmore prose\n")
    assert _run("--check", str(md)).returncode == 0
    records = json.loads((docs / "bench.json").read_text())
    compiled = next(r for r in records if r["preset"] == "streaming" and r["mode"] == "compiled")
    compiled["step_ms_p99"] = 12.5                  # now beyond the 11.6 ms hop: the row must say so
    (docs / "bench.json").write_text(json.dumps(records))
    r = _run("--check", str(md))
    assert r.returncode == 1 and "stale: presets docs/bench.json" in r.stderr, r.stderr
    assert md.read_text().count("| 67 % | yes |") == 1   # --check wrote nothing
    assert _run(str(md)).returncode == 0
    text = md.read_text()
    assert "| `streaming` | 23.2 ms | 210,056 | 6.68 / 12.50 ms (11.6 ms) | 108 % | no |" in text
    assert text.startswith("# x\n\nprose\n") and text.endswith("<!-- /table -->\nmore prose\n")
    assert _run("--check", str(md)).returncode == 0


def test_bad_markers_and_files_are_one_line_errors(tmp_path):
    md = tmp_path / "README.md"
    for body, expected in [("<!-- table: nosuch docs/x.json -->\n<!-- /table -->\n", "unknown table kind 'nosuch'"),
                           ("<!-- table: bench docs/x.json -->\n| a |\n", "has no closing"),
                           ("<!-- table: bench docs/x.json -->\n<!-- /table -->\n", "expected the JSON a tool wrote")]:
        md.write_text(body)
        r = _run("--check", str(md))
        assert r.returncode == 2 and expected in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "x.json").write_text(json.dumps({"not": "a soak record"}))
    md.write_text("<!-- table: train-compare docs/x.json -->\n<!-- /table -->\n")
    r = _run("--check", str(md))
    assert r.returncode == 2 and "is not what a 'train-compare' table is made from" in r.stderr, r.stderr
