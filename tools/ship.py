"""`python -m tools.ship CANDIDATE`: the ship gate of the default checkpoint.

    python -m tools.ship campaign/run/best.ckpt                  # measure, decide, replace the default if it passes
    python -m tools.ship campaign/run/best.ckpt --dry-run        # measure and decide only
    python -m tools.ship --table docs/default_checkpoint.json    # the README table from the recorded JSON
    python -m tools.ship campaign/ll1/last.ckpt --within 1.5 --to model/weights/lowlatency_default.ckpt \
        --json docs/lowlatency_checkpoint.json                   # a variant default: near the default, not above it

The candidate and the current default are scored side by side, in streaming mode (the live engine path),
with museval (`tools.evaluate`): on `eif-valid` (with the mixture and oracle baselines), the dev excerpt
(`folder:../shared/data/dev`) and the demo clip. The candidate replaces `model/weights/streaming_default.ckpt`
only when it beats the default on `eif-valid` for every stem and does not fall more than `--tolerance` dB
(default 0.1) below it on any stem of the other sets. Either way `--json` (default
docs/default_checkpoint.json) gets an entry with both sets of figures, the decision and the candidate's
training record (hours of audio seen, its own and its starting weights', steps, wall and CPU time); earlier
entries are kept, so the table keeps the previous defaults' figures.

`--within DB --to PATH`: the gate of a variant's default (the `lowlatency` preset: other windows and hop, the
same stems). The candidate must land within DB of the reference (`--default`, the streaming default) on
every stem of the gate set and of the checks; it is then written to PATH, and the reference stays as it is.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import model
from core.errors import UserError, run_cli
from core.files import check_output_file
from model.checkpoint import atomic_torch_save, checkpoint_dict, read_checkpoint, separator_from_dict

from .audio_io import write_json
from .evaluate import evaluate, open_data

DEFAULT = Path("model/weights/streaming_default.ckpt")
RECORD = Path("docs/default_checkpoint.json")
GATE = "eif-valid"
CHECKS = ("dev", "demo")


def data_spec(name: str) -> str:
    if name == "dev":
        from training.real_vocals import find_data_root  # the shared data folder, found as training finds it

        return f"folder:{find_data_root() / 'dev'}"
    return name


def score(sep: model.Separator, name: str, baselines: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Streaming museval medians {estimate: {stem: SDR}} of one evaluation set."""
    agg = evaluate(sep, open_data(data_spec(name)), streaming=True, baselines=baselines)["aggregate"]
    return {est: {stem: round(v["SDR"], 2) for stem, v in per.items()} for est, per in agg.items()}


def decide(candidate: dict[str, dict], default: dict[str, dict], gate: str, checks: list[str],
           tolerance: float, within: float | None = None) -> tuple[bool, list[str]]:
    """The gate: better on every stem of `gate`, no stem of the `checks` sets more than `tolerance` dB worse.
    `within`: a variant's gate instead: no stem of `gate` or of the checks more than `within` dB below."""
    reasons = []
    for stem, new in candidate[gate].items():
        old = default[gate][stem]
        if within is None and not new > old:
            reasons.append(f"{gate} {stem}: {new:.2f} dB is not above the default's {old:.2f} dB")
        elif within is not None and not new >= old - within:
            reasons.append(f"{gate} {stem}: {new:.2f} dB is more than {within:g} dB below the default's {old:.2f} dB")
    for name in checks:
        for stem, new in candidate.get(name, {}).items():
            old = default[name][stem]
            allowed = tolerance if within is None else within
            if math.isfinite(old) and new < old - allowed:
                reasons.append(f"{name} {stem}: {new:.2f} dB regresses from {old:.2f} dB")
    return not reasons, reasons


def training_record(ckpt: dict[str, Any]) -> dict[str, Any]:
    meta = ckpt.get("metadata") or {}
    init = meta.get("init") or {}
    own = float(meta.get("hours_seen", 0.0))
    if not own and meta.get("steps"):  # checkpoints from before hours_seen was recorded
        own = meta["steps"] * meta.get("global_batch", 0) * meta.get("segment_seconds", 0) / 3600
    return {"steps": meta.get("steps"), "hours_seen_total": round(own + float(init.get("hours_seen", 0.0)), 3),
            "hours_seen_own": round(own, 3), "init": init or None, "data": meta.get("data"),
            "wall_time_s": meta.get("wall_time_s"), "cpu_time_s": meta.get("cpu_time_s"),
            "hardware": meta.get("hardware"), "saved": meta.get("saved")}


def table(record: list[dict[str, Any]]) -> str:
    """Markdown: one row per (entry, checkpoint, set), SDR per stem, with the baselines once per entry."""
    rows = ["| measured | checkpoint | hours seen | steps | set | vocals SDR | accompaniment SDR | shipped |",
            "|---|---|---|---|---|---|---|---|"]
    for e in record:
        for who in ("default", "candidate"):
            r = e[who]
            for name in [e["gate"], *e["checks"]]:
                m = r["scores"].get(name, {}).get("model")
                if not m:
                    continue
                shipped = ("yes" if e["passed"] and not e["dry_run"] else "no") if who == "candidate" else ""
                rows.append(f"| {e['when'][:10]} | {who}: `{r['path']}` | {r['training']['hours_seen_total']} | "
                            f"{r['training']['steps']} | {name} | {m['vocals']:.2f} | {m['accompaniment']:.2f} | {shipped} |")
        for est in ("mixture", "oracle"):
            b = e["candidate"]["scores"].get(e["gate"], {}).get(est)
            if b:
                rows.append(f"| {e['when'][:10]} | {est} (baseline) | | | {e['gate']} | {b['vocals']:.2f} | {b['accompaniment']:.2f} | |")
    return "\n".join(rows)


def ship(candidate_path: Path, default_path: Path, record_path: Path, tolerance: float, dry_run: bool,
         description: str | None, gate: str = GATE, checks: tuple[str, ...] = CHECKS,
         within: float | None = None, to: Path | None = None) -> int:
    """`within` / `to`: a variant's gate (module docstring); the candidate goes to `to`, not `default_path`."""
    target = default_path if to is None else to
    cand_ckpt = read_checkpoint(candidate_path)
    cand = separator_from_dict(cand_ckpt, where=f"candidate {candidate_path}").eval()
    old_ckpt = read_checkpoint(default_path)
    old = separator_from_dict(old_ckpt, where=f"default {default_path}").eval()
    if tuple(cand.stems) != tuple(old.stems) or (within is None and cand.config.hop_length != old.config.hop_length):
        raise UserError(f"{candidate_path}: expected the default's stems {list(old.stems)} and hop "
                        f"{old.config.hop_length}; it has {list(cand.stems)} and hop {cand.config.hop_length}")
    scores: dict[str, dict[str, dict]] = {"candidate": {}, "default": {}}
    for name in [gate, *checks]:
        t0 = time.time()
        scores["candidate"][name] = score(cand, name, ("mixture", "oracle") if name == gate else ())
        scores["default"][name] = score(old, name, ())
        print(f"ship: {name}: candidate " + ", ".join(f"{s} {v:.2f}" for s, v in scores["candidate"][name]["model"].items())
              + "; default " + ", ".join(f"{s} {v:.2f}" for s, v in scores["default"][name]["model"].items())
              + f" dB ({time.time() - t0:.0f} s)", file=sys.stderr)
    passed, reasons = decide({k: v["model"] for k, v in scores["candidate"].items()},
                             {k: v["model"] for k, v in scores["default"].items()}, gate, list(checks), tolerance, within)
    entry = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "passed": passed, "reasons": reasons, "dry_run": dry_run,
             "gate": gate, "checks": list(checks),
             "tolerance_db": tolerance, "within_db": within, "target": str(target), "mode": "streaming", "metric": "museval SDR, median over 1 s windows then tracks",
             "candidate": {"path": str(candidate_path), "training": training_record(cand_ckpt), "scores": scores["candidate"]},
             "default": {"path": str(default_path), "training": training_record(old_ckpt), "scores": scores["default"]}}
    previous = json.loads(record_path.read_text()) if record_path.is_file() else []
    write_json(record_path, [*previous, entry])
    if passed and not dry_run:
        replaced = old_ckpt if to is None else read_checkpoint(to) if to.is_file() else {}
        meta = dict(cand_ckpt.get("metadata") or {})
        meta.update(shipped=entry["when"], source_checkpoint=str(candidate_path),
                    hours_seen_total=entry["candidate"]["training"]["hours_seen_total"],
                    ship_gate={k: v["model"] for k, v in scores["candidate"].items()},
                    previous_default=replaced.get("metadata"))
        if within is not None:
            meta["reference_default"] = {"path": str(default_path), "within_db": within}
        if description:
            meta["training_data"] = description
        atomic_torch_save(checkpoint_dict(cand, **meta), target)
    verdict = "passed" if passed else "failed: " + "; ".join(reasons)
    action = "; dry run, nothing written" if dry_run else (f"; wrote {target}" if passed else "; the default stays")
    print(f"ship gate {verdict}{action}; recorded in {record_path}")
    print(table([entry]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.ship", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("candidate", nargs="?", type=Path, help="the checkpoint that may become the default")
    p.add_argument("--default", type=Path, default=DEFAULT, help=f"the current default (default {DEFAULT})")
    p.add_argument("--json", type=Path, default=RECORD, help=f"the record of gate runs (default {RECORD})")
    p.add_argument("--gate", default=GATE, metavar="DATA", help=f"the set the candidate must beat the default on (default {GATE})")
    p.add_argument("--check", action="append", default=None, metavar="DATA",
                   help="a set it must not regress on (repeatable; default: dev, demo)")
    p.add_argument("--tolerance", type=float, default=0.1, help="dB a stem of dev / demo may fall (default 0.1)")
    p.add_argument("--within", type=float, default=None, metavar="DB",
                   help="a variant's gate: within DB of --default on every stem (with --to)")
    p.add_argument("--to", type=Path, default=None, metavar="CKPT",
                   help="with --within: where the variant's default goes (e.g. model/weights/lowlatency_default.ckpt)")
    p.add_argument("--dry-run", action="store_true", help="measure and decide, do not replace the default")
    p.add_argument("--description", default=None, help="what the model was trained on, in words (checkpoint metadata)")
    p.add_argument("--table", type=Path, default=None, metavar="JSON", help="print the Markdown table of a record and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        if args.table is not None:
            if not args.table.is_file():
                raise UserError(f"--table {args.table}: expected a record written by python -m tools.ship")
            print(table(json.loads(args.table.read_text())))
            return 0
        if args.candidate is None:
            raise UserError("expected a CANDIDATE checkpoint (or --table JSON)")
        if not 0 <= args.tolerance <= 10:
            raise UserError(f"--tolerance: expected 0..10 dB, got {args.tolerance:g}")
        if (args.within is None) != (args.to is None):
            raise UserError("--within and --to: expected both (a variant's gate and where it goes) or neither")
        if args.within is not None and not 0 <= args.within <= 20:
            raise UserError(f"--within: expected 0..20 dB, got {args.within:g}")
        if args.to is not None and args.to.resolve() == args.default.resolve():
            raise UserError(f"--to {args.to}: expected another file than --default (the reference stays as it is)")
        for flag, path in (("CANDIDATE", args.candidate), ("--default", args.default)):
            if not path.is_file():
                raise UserError(f"{flag} {path}: expected a checkpoint file, it does not exist")
        check_output_file(args.json, "--json")
        if not args.dry_run:
            check_output_file(args.to or args.default, "--to" if args.to else "--default")
        return ship(args.candidate, args.default, args.json, args.tolerance, args.dry_run, args.description,
                    args.gate, tuple(args.check if args.check is not None else CHECKS), args.within, args.to)

    return run_cli("python -m tools.ship", body)


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
