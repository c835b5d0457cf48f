"""The README's measured tables, generated from the JSON the tools wrote, so that no figure goes stale.

    python -m tools.readme_tables            # rewrite every generated table of README.md from its JSON
    python -m tools.readme_tables --check    # exit 1, one line per table that differs from its JSON

A generated table stands between two marker lines of the Markdown file:

    <!-- table: KIND JSON [JSON ...] -->
    | ... the table, as KIND's builder makes it from the JSON files (paths relative to the README) ... |
    <!-- /table -->

The kinds and the tool whose `--json` each reads are in TABLES. Only what stands between the markers is
written; the prose around a table (how and where it was measured) is the README's own. The file is
replaced atomically; `--check` writes nothing. tests/tools/test_readme_tables.py runs the check on the
repository's README.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

from core.errors import UserError

README = Path(__file__).resolve().parents[1] / "README.md"
START = re.compile(r"^<!-- table: (?P<kind>[a-z-]+)(?P<paths>(?: \S+)+) -->$")
END = "<!-- /table -->"


def _ms(a: float, b: float) -> str:
    return f"{a:.2f} / {b:.2f} ms"


def _by_preset(records: list[dict]) -> dict[str, dict[str, dict]]:
    """bench records -> {preset: {mode: record}}, presets in their order of appearance."""
    out: dict[str, dict[str, dict]] = {}
    for r in records:
        if not r.get("error") and r.get("mode") in ("cached", "compiled", "naive"):
            out.setdefault(r["preset"], {})[r["mode"]] = r
    return out


def _markdown(head: list[str], rows: list[list[str]]) -> str:
    """A Markdown table: the header, its rule, one line per row of cells."""
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(row) + " |" for row in rows])


def bench_table(records: list[dict]) -> str:
    """tools.bench --modes cached,compiled,naive: eager, compiled and naive step of each preset side by side."""
    rows = []
    for preset, m in _by_preset(records).items():
        r = next(iter(m.values()))
        eager, comp, naive = m.get("cached"), m.get("compiled"), m.get("naive")
        rows.append([f"`{preset}`", f"{r['params']:,}", f"{r['latency_ms']:.1f} ms", f"{r['hop_ms']:.1f} ms",
                     _ms(eager["step_ms_p50"], eager["step_ms_p99"]) if eager else "-",
                     f"**{_ms(comp['step_ms_p50'], comp['step_ms_p99'])}**" if comp else "-",
                     f"{eager['step_ms_p50'] / comp['step_ms_p50']:.1f}x faster" if eager and comp else "-",
                     f"{naive['step_ms_p50']:.1f} ms" if naive else "-",
                     f"{comp['compile_s']:.1f} s" if comp else "-"])
    return _markdown(["preset", "params", "latency", "hop", "eager step p50 / p99", "**compiled step p50 / p99**",
                      "compiled / eager (p50)", "naive p50", "compile (cold)"], rows)


def presets_table(records: list[dict]) -> str:
    """The headline: each causal preset's latency, size and compiled step against its hop (tools.bench JSON)."""
    rows = []
    for preset, m in _by_preset(records).items():
        r = m.get("compiled") or m.get("cached")
        share = r["step_ms_p99"] / r["hop_ms"]
        rows.append([f"`{preset}`", f"{r['latency_ms']:.1f} ms", f"{r['params']:,}",
                     f"{_ms(r['step_ms_p50'], r['step_ms_p99'])} ({r['hop_ms']:.1f} ms)", f"{100 * share:.0f} %",
                     "yes" if share <= 1.0 else "no"])
    return _markdown(["preset", "algorithmic latency", "parameters", "compiled step p50 / p99 (hop)", "p99 / hop",
                      "real time here"], rows)


def bench_k_table(records: list[dict]) -> str:
    """tools.bench --hops-per-step 1,2,4: per-hop and per-call times of each K against K = 1."""
    rows, first = [], {}
    for r in records:
        if r.get("error"):
            continue
        k = r.get("k", 1)
        base = first.setdefault(r["preset"], r["step_ms_p50"]) if k == 1 else first.get(r["preset"])
        rows.append([f"`{r['preset']}`", str(k), f"{r['latency_ms']:.1f} ms", f"{r['hop_ms']:.1f} ms",
                     _ms(r["step_ms_p50"], r["step_ms_p99"]), f"{100 * r['p99_of_hop']:.0f} %",
                     _ms(r["call_ms_p50"], r["call_ms_p99"]), f"{r['step_ms_p50'] / base:.2f}x" if base else "-"])
    return _markdown(["preset", "K", "model latency", "hop", "per hop p50 / p99", "p99 / hop", "call p50 / p99",
                      "per hop p50 vs K = 1"], rows)


def train_compare_table(records: list[dict]) -> str:
    """training.bench --compare: one row per comparison, each against its own eager baseline."""
    rows = []
    for d in records:
        b, n = d["baseline"], d["new"]
        fb = (f"{b['phases_s']['forward']:.2f} / {b['phases_s']['backward']:.2f} -> "
              f"{n['phases_s']['forward']:.2f} / {n['phases_s']['backward']:.2f}")
        rows.append([", ".join(f"`{k}={v}`" for k, v in d["new_set"].items()), f"{b['seconds_per_step']:.2f}",
                     f"{n['seconds_per_step']:.2f}", f"{d['ratio_cpu_time']:.2f}x", f"{d['ratio_audio_seconds']:.2f}x",
                     fb, f"{b['max_rss_gb']:.1f} -> {n['max_rss_gb']:.1f} GB"])
    return _markdown(["`--set`", "baseline s/step", "new s/step", "segments per CPU second",
                      "audio seconds per second", "forward / backward s per step", "peak RSS"], rows)


def _soak(paths: list[Path]) -> str:
    from tools.soak import read_record, table
    return table([(p.stem, read_record(p)) for p in paths])


def _lazy(module: str) -> Callable[[list[dict]], str]:
    """The `table(records)` of a tool module, imported when a README asks for it."""
    return lambda records: __import__(module, fromlist=["table"]).table(records)


def _each(build: Callable[[list[dict]], str], nested: bool = True) -> Callable[[list[Path]], str]:
    """A builder of the records of every file: each file a list of records (nested), or one record."""
    return lambda paths: build([r for p in paths for r in (_load(p) if nested else [_load(p)])])


TABLES: dict[str, Callable[[list[Path]], str]] = {
    "presets": _each(presets_table),          # tools.bench --json
    "bench": _each(bench_table),              # tools.bench --json
    "bench-k": _each(bench_k_table),          # tools.bench --hops-per-step ... --json
    "train-compare": _each(train_compare_table, nested=False),   # training.bench --compare --json
    "soak": _soak,                            # tools.soak --json
    "ship": _each(_lazy("tools.ship")),       # tools.ship --json
    "ablation": _each(_lazy("training.recipes.ablation")),   # training.recipes.ablation (OUT/summary.json)
}


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: expected the JSON a tool wrote ({e})") from None


def render(text: str, base: Path) -> tuple[str, list[str]]:
    """`text` with every generated table rebuilt from its JSON (paths relative to `base`) -> (new text, the
    kinds and files of the tables that changed)."""
    lines, out, changed, i = text.split("\n"), [], [], 0
    while i < len(lines):
        out.append(lines[i])
        m = START.match(lines[i].strip())
        i += 1
        if not m:
            continue
        kind, files = m["kind"], m["paths"].split()
        if kind not in TABLES:
            raise UserError(f"line {i}: unknown table kind {kind!r}; expected one of {', '.join(TABLES)}")
        end = next((j for j in range(i, len(lines)) if lines[j].strip() == END), None)
        if end is None:
            raise UserError(f"line {i}: the table {kind!r} has no closing {END}")
        try:
            table = TABLES[kind]([base / f for f in files])
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise UserError(f"line {i}: {' '.join(files)} is not what a {kind!r} table is made from ({e!r})") from None
        if lines[i:end] != table.split("\n"):
            changed.append(f"{kind} {' '.join(files)} (line {i})")
        out.extend(table.split("\n"))
        out.append(lines[end])
        i = end + 1
    return "\n".join(out), changed


def main(argv: list[str] | None = None) -> int:
    from core.errors import OneLineParser, run_main
    from core.files import write_text
    p = OneLineParser(prog="python -m tools.readme_tables", description=__doc__.splitlines()[0])
    p.add_argument("readme", nargs="?", type=Path, default=README, help="the Markdown file (default: README.md)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 when a table differs from its JSON")

    def run(args: argparse.Namespace) -> int:
        try:
            text = args.readme.read_text()
        except OSError as e:
            raise UserError(f"{args.readme}: expected a readable Markdown file ({e.strerror})") from None
        new, changed = render(text, args.readme.parent)
        for c in changed:
            print(f"{'stale' if args.check else 'regenerated'}: {c}", file=sys.stderr)
        if args.check:
            return 1 if changed else 0
        if changed:
            write_text(args.readme, new)
        return 0
    return run_main(p, run, argv)


if __name__ == "__main__":
    sys.exit(main())
