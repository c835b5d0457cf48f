"""`python -m tools.campaign`: a training campaign that outlives a session, in the background, under nice.

    python -m tools.campaign start [--dir campaign] [--nice 10] [--cpus 0]   # detach; returns at once
    python -m tools.campaign status [--json]     # steps, hours seen, validation SDR, last streaming eval, ETA
    python -m tools.campaign stop                # checkpoint after the current step, then end
    python -m tools.campaign run                 # the loop itself, in the foreground (what `start` detaches)

The campaign folder (`campaign/`, committed at the end of every session) holds what it is:
`plan.yaml` (preset, `--data` specs, starting weights, schedule length, evaluation period), `recipe.yaml`
(config overrides), `run/` (the `python -m training` run folder: `last.ckpt` with AdamW, scheduler and RNG
state, `best.ckpt`, `metrics.jsonl`, `curves.png`), `evals.jsonl` (one streaming evaluation per line) and
`sessions.jsonl` (one line per training chunk: when, where, on what hardware, from which step to which, the
data mix). The loop alternates a training chunk of `eval_every_minutes` (`python -m training --stop-after`,
checkpointing every few minutes, so a kill loses at most that) with `python -m tools.evaluate EVAL_DATA
--streaming` of `run/last.ckpt`. `start` on a new machine continues from the committed `run/last.ckpt`;
only the shard cache of rendered training tracks is made again (minutes).

A later phase (another recipe, data or schedule) is a new run beside the old one: plan key `run: run2`,
`init:` the previous phase's `last.ckpt` (its hours seen carry over), its own `recipe`; its evaluations are
`evals/run2-step-*.json` and its lines in evals.jsonl and sessions.jsonl say `"run": "run2"`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from core.errors import UserError, run_cli
from core.files import write_text as atomic_write_text
from core.machine import cpu_model

DEFAULT_DIR = Path("campaign")
RUN = "run"                   # the run folder of a plan that names none (plan key `run`: a later phase)
STATE = "state.json"          # not committed: the running loop's pid and what it is doing
LOG = "campaign.log"          # not committed: the loop's and its children's output
STOP_REQUEST = "stop-requested"
TRAIN_STOP_FILE = "STOP"      # training.trainer.STOP_FILE: the run checkpoints after its step and returns
PLAN_KEYS = {"preset", "stems", "init", "recipe", "data", "steps", "eval_every_minutes", "eval_data", "resume_flags",
             "run"}


class CampaignError(UserError):
    """The campaign folder or its plan cannot be used."""


# -- the folder ------------------------------------------------------------------------------------
def read_plan(folder: Path) -> dict[str, Any]:
    path = folder / "plan.yaml"
    if not path.is_file():
        raise CampaignError(f"--dir {folder}: expected a campaign folder with plan.yaml, found none")
    try:
        plan = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise CampaignError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    unknown = sorted(set(plan) - PLAN_KEYS)
    missing = sorted({"preset", "data", "steps", "eval_every_minutes"} - set(plan))
    if unknown or missing:
        raise CampaignError(f"{path}: expected keys {sorted(PLAN_KEYS)}; unknown {unknown}, missing {missing}")
    if not isinstance(plan["data"], list) or not plan["data"]:
        raise CampaignError(f"{path}: data: expected a list of --data specs")
    if not isinstance(plan["steps"], int) or plan["steps"] < 1:
        raise CampaignError(f"{path}: steps: expected an integer >= 1, got {plan['steps']!r}")
    if not isinstance(plan["eval_every_minutes"], (int, float)) or plan["eval_every_minutes"] <= 0:
        raise CampaignError(f"{path}: eval_every_minutes: expected minutes > 0, got {plan['eval_every_minutes']!r}")
    plan.setdefault("resume_flags", [])
    plan.setdefault("eval_data", "eif-valid")
    plan.setdefault("run", RUN)
    if not isinstance(plan["run"], str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", plan["run"]):
        raise CampaignError(f"{path}: run: expected a folder name inside the campaign folder, got {plan['run']!r}")
    return plan


def run_dir(folder: Path, plan: dict[str, Any]) -> Path:
    """The `python -m training` run of the plan's current phase."""
    return folder / plan["run"]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill: skip it
            continue
    return out


def append_jsonl(path: Path, entry: dict[str, Any]) -> None:
    rows = read_jsonl(path) + [entry]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def read_state(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / STATE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def write_state(folder: Path, **state: Any) -> None:
    atomic_write_text(folder / STATE, json.dumps({"pid": os.getpid(), **state}))


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie or another program that reused the pid is not the loop
        cmdline = Path(f"/proc/{int(pid)}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True
    return "tools.campaign" in cmdline


def hardware() -> dict[str, Any]:
    cpu = cpu_model()
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = []
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "affinity": affinity,
            "nice": os.nice(0), "python": platform.python_version()}


# -- one chunk of training, one evaluation ---------------------------------------------------------
def train_command(folder: Path, plan: dict[str, Any], seconds: float) -> list[str]:
    run = run_dir(folder, plan)
    cmd = [sys.executable, "-m", "training", "--stop-after", f"{seconds:.0f}", "--steps", str(plan["steps"])]
    if (run / "last.ckpt").is_file():
        cmd += ["--resume", str(run), *[str(f) for f in plan["resume_flags"]]]
    else:
        cmd += ["--out", str(run), "--preset", plan["preset"]]
        if plan.get("recipe"):
            cmd += ["--config", str(plan["recipe"])]
        if plan.get("stems"):
            cmd += ["--stems", ",".join(plan["stems"])]
        if plan.get("init"):
            cmd += ["--init", str(plan["init"])]
    for spec in plan["data"]:
        cmd += ["--data", spec]
    return cmd


def run_logged(cmd: list[str], folder: Path, what: str, **state: Any) -> int:
    """Run a child with its output appended to the campaign log; the loop's SIGTERM reaches it too."""
    with (folder / LOG).open("a") as log:
        log.write(f"\n[{time.strftime('%Y-%m-%d %H:%M:%S')}] $ {' '.join(cmd)}\n")
        log.flush()
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        write_state(folder, phase=what, child=child.pid, since=time.time(), **state)
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGTERM)
            child.wait()
            raise


def last_train_entry(folder: Path, plan: dict[str, Any]) -> dict[str, Any]:
    rows = [r for r in read_jsonl(run_dir(folder, plan) / "metrics.jsonl") if "loss" in r]
    return rows[-1] if rows else {}


def checkpoint_metadata(folder: Path, plan: dict[str, Any]) -> dict[str, Any]:
    path = run_dir(folder, plan) / "last.ckpt"
    if not path.is_file():
        return {}
    from model.checkpoint import read_checkpoint

    return dict(read_checkpoint(path).get("metadata") or {})


def total_hours(meta: dict[str, Any]) -> float:
    return float(meta.get("hours_seen", 0.0)) + float((meta.get("init") or {}).get("hours_seen", 0.0))


def evaluate(folder: Path, plan: dict[str, Any]) -> dict[str, Any] | None:
    meta = checkpoint_metadata(folder, plan)
    step = int(meta.get("steps", 0))
    evals = folder / "evals"
    evals.mkdir(exist_ok=True)
    out = evals / (f"step-{step:06d}.json" if plan["run"] == RUN else f"{plan['run']}-step-{step:06d}.json")
    cmd = [sys.executable, "-m", "tools.evaluate", plan["eval_data"], "--checkpoint", str(run_dir(folder, plan) / "last.ckpt"),
           "--streaming", "--json", str(out), "-q"]
    t0 = time.time()
    code = run_logged(cmd, folder, "evaluate", step=step)
    if code != 0 or not out.is_file():
        return None
    model_sdr = json.loads(out.read_text())["aggregate"].get("model", {})
    entry = {"run": plan["run"], "step": step, "hours_seen": round(total_hours(meta), 3), "wall_time_s": meta.get("wall_time_s"),
             "data": plan["eval_data"], "mode": "streaming",
             "sdr": {s: v.get("SDR") for s, v in model_sdr.items()}, "eval_s": round(time.time() - t0, 1),
             "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    append_jsonl(folder / "evals.jsonl", entry)
    return entry


def loop(folder: Path) -> int:
    """Train and evaluate in turns until the schedule ends or a stop is asked for."""
    plan = read_plan(folder)
    (folder / STOP_REQUEST).unlink(missing_ok=True)
    failures = 0
    while not (folder / STOP_REQUEST).exists():
        meta = checkpoint_metadata(folder, plan)
        if int(meta.get("steps", 0)) >= plan["steps"]:
            print(f"campaign: the schedule is done ({plan['steps']} steps)")
            break
        seconds = 60 * plan["eval_every_minutes"]
        start_step = int(meta.get("steps", 0))
        started = time.time()
        code = run_logged(train_command(folder, plan, seconds), folder, "train", step=start_step,
                          next_eval=started + seconds)
        meta = checkpoint_metadata(folder, plan)
        append_jsonl(folder / "sessions.jsonl", {
            "run": plan["run"], "start": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)), "seconds": round(time.time() - started),
            "from_step": start_step, "to_step": int(meta.get("steps", 0)), "exit": code, "hardware": hardware(),
            "data": plan["data"], "resume_flags": plan["resume_flags"], "hours_seen": round(total_hours(meta), 3)})
        if code != 0:
            failures += 1
            if code in (130, 143, 129) or failures >= 3:
                print(f"campaign: training exited {code}; see {folder / LOG}", file=sys.stderr)
                return code if code in (130, 143, 129) else 1
            time.sleep(30)
            continue
        failures = 0
        if (folder / STOP_REQUEST).exists():
            break
        evaluate(folder, plan)
    (folder / STOP_REQUEST).unlink(missing_ok=True)
    return 0


# -- commands ----------------------------------------------------------------------------------------
def start(folder: Path, nice: int, cpus: str | None) -> int:
    read_plan(folder)
    state = read_state(folder)
    if alive(state.get("pid")):
        raise CampaignError(f"the campaign in {folder} is already running (pid {state['pid']}); "
                            "`python -m tools.campaign status` says where it stands")
    cmd = [sys.executable, "-m", "tools.campaign", "run", "--dir", str(folder)]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    with (folder / LOG).open("a") as log:
        child = subprocess.Popen(["nice", "-n", str(nice), *cmd], stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    print(f"campaign started in the background (pid {child.pid}, nice {nice}"
          + (f", cpus {cpus}" if cpus else "") + f"); log: {folder / LOG}")
    return 0


def stop(folder: Path, wait_s: float) -> int:
    plan = read_plan(folder)
    state = read_state(folder)
    if not alive(state.get("pid")):
        print(f"the campaign in {folder} is not running")
        return 0
    (folder / STOP_REQUEST).touch()
    if state.get("phase") == "train":
        (run_dir(folder, plan) / TRAIN_STOP_FILE).touch()   # checkpoint after the current step
    elif state.get("child"):
        try:
            os.kill(int(state["child"]), signal.SIGTERM)  # an evaluation loses nothing but its time
        except ProcessLookupError:
            pass
    deadline = time.time() + wait_s
    while alive(state.get("pid")) and time.time() < deadline:
        time.sleep(1)
    if alive(state.get("pid")):
        raise CampaignError(f"the campaign (pid {state['pid']}) did not stop within {wait_s:.0f} s; "
                            "it stops after its current step, or kill it (last.ckpt is at most minutes old)")
    meta = checkpoint_metadata(folder, plan)
    print(f"campaign stopped at step {meta.get('steps', 0)} ({total_hours(meta):.2f} h of audio seen)")
    return 0


def status(folder: Path) -> dict[str, Any]:
    plan = read_plan(folder)
    state = read_state(folder)
    meta = checkpoint_metadata(folder, plan)
    train = last_train_entry(folder, plan)
    valid = [r for r in read_jsonl(run_dir(folder, plan) / "metrics.jsonl") if "sdr" in r]
    evals = [e for e in read_jsonl(folder / "evals.jsonl") if e.get("run", RUN) == plan["run"]]
    sessions = [e for e in read_jsonl(folder / "sessions.jsonl") if e.get("run", RUN) == plan["run"]]
    running = alive(state.get("pid"))
    out: dict[str, Any] = {
        "running": running, "phase": state.get("phase") if running else "stopped",
        "step": int(meta.get("steps", 0)), "steps": plan["steps"], "hours_seen": round(total_hours(meta), 3),
        "run": plan["run"], "hours_seen_this_run": round(float(meta.get("hours_seen", 0.0)), 3),
        "wall_time_s": meta.get("wall_time_s", 0.0), "checkpoint_saved": meta.get("saved"),
        "latest_step_logged": train.get("step"), "segments_per_s": train.get("segments_per_s"),
        "data": plan["data"], "validation": valid[-1] if valid else None, "streaming_eval": evals[-1] if evals else None,
        "evals": len(evals), "chunks": len(sessions),
    }
    if running and state.get("phase") == "train" and state.get("next_eval"):
        out["next_eval_in_s"] = max(0, round(state["next_eval"] - time.time()))
    elif running and state.get("phase") == "evaluate":
        out["evaluating_for_s"] = round(time.time() - state.get("since", time.time()))
    if train.get("segments_per_s") and meta:
        batch = int(meta.get("global_batch", 8))
        left = plan["steps"] - int(train.get("step", 0))
        out["schedule_eta_h"] = round(left * batch / train["segments_per_s"] / 3600, 1)
    return out


def format_status(s: dict[str, Any]) -> str:
    head = (f"campaign: {'running (' + s['phase'] + ')' if s['running'] else 'stopped'}; step {s['step']} of "
            f"{s['steps']} of run {s['run']}/, {s['hours_seen']:.2f} h of audio seen ({s['hours_seen_this_run']:.2f} h in "
            f"this run), {float(s['wall_time_s'] or 0) / 3600:.2f} h of its training wall time, {s['chunks']} chunks")
    lines = [head]
    if s.get("segments_per_s"):
        eta = f"; schedule ends in ~{s['schedule_eta_h']} h of training" if "schedule_eta_h" in s else ""
        lines.append(f"  throughput: {s['segments_per_s']:.3f} segments/s (step {s['latest_step_logged']}){eta}")
    v = s.get("validation")
    if v:
        lines.append(f"  validation (offline, step {v['step']}): " + ", ".join(f"{k} {x:.2f} dB" for k, x in v["sdr"].items()))
    e = s.get("streaming_eval")
    if e:
        lines.append(f"  {e['data']} --streaming (step {e['step']}, {e['hours_seen']} h): "
                     + ", ".join(f"{k} {x:.2f} dB" for k, x in e["sdr"].items() if x is not None))
    else:
        lines.append("  no streaming evaluation yet")
    if "next_eval_in_s" in s:
        lines.append(f"  next streaming evaluation in {s['next_eval_in_s'] // 60} min {s['next_eval_in_s'] % 60} s")
    if "evaluating_for_s" in s:
        lines.append(f"  evaluating for {s['evaluating_for_s']} s")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.campaign", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("start", "run", "status", "stop"):
        q = sub.add_parser(name)
        q.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="campaign folder (default: campaign)")
        if name == "start":
            q.add_argument("--nice", type=int, default=10, help="niceness of the loop and its children (default 10)")
            q.add_argument("--cpus", default=None, help="taskset CPU list, e.g. 0 (default: all)")
        if name == "status":
            q.add_argument("--json", action="store_true")
        if name == "stop":
            q.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the checkpoint (default 600)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        if not 0 <= getattr(args, "nice", 0) <= 19:
            raise CampaignError(f"--nice: expected 0..19, got {args.nice}")
        if args.command == "start":
            return start(args.dir, args.nice, args.cpus)
        if args.command == "run":
            return loop(args.dir)
        if args.command == "stop":
            return stop(args.dir, args.wait)
        s = status(args.dir)
        print(json.dumps(s) if args.json else format_status(s))
        return 0

    return run_cli("python -m tools.campaign", body)


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
