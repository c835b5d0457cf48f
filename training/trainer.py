"""The training loop: one process per device, DistributedDataParallel under torchrun, CPU alike.

Checkpoints are the project's separator checkpoints (`model.load_checkpoint` reads them) with one
extra key, `training`, holding everything `--resume` needs: optimiser, scheduler, GradScaler,
step, epoch, early-stopping state and RNG states. The data of step s depend only on (seed, s,
rank), so a resumed run continues exactly as if it had never stopped.

The network is trained through the separator's own STFT framing and masks (`sep.stft`,
`sep.features`, `sep.net`, `sep.apply_masks`, `sep.stft.inverse` - exactly `Separator.forward`),
so a causal preset trains on precisely what the streaming engine computes.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler

import model as mdl
from model.checkpoint import atomic_torch_save, checkpoint_dict, read_checkpoint, separator_from_dict

from .config import TrainConfig, train_config, with_overrides
from .data import StepBatches, build_datasets
from .device import choose_device, cpu_cores, prepare_device
from .losses import SeparationLoss, batch_sdr
from .timing import PhaseTimer

TRAINING_KEY = "training"


class TrainingError(mdl.UserError):
    """A run cannot start or continue (bad resume folder, diverged loss, ...)."""


@dataclass
class RunSpec:
    """What to train, on what, for how long. `total_steps` counts optimiser steps of the whole run."""

    preset: str
    stems: tuple[str, ...]
    data: list[str]
    out: Path
    total_steps: int
    stop_at: int | None = None          # stop (and checkpoint) at this step although the schedule runs to total_steps
    device: str | None = None
    merges: dict[str, list[str]] = field(default_factory=dict)
    stop_after_s: float | None = None   # stop (and checkpoint) after this many seconds of this process's training...
    budget_clock: str = "wall"          # ...of wall-clock time, or "cpu": of this process's CPU time (fair under load)
    init: dict[str, Any] | None = None  # where the weights started: {"path", "steps", "hours_seen"} of a checkpoint


STOP_FILE = "STOP"  # a file of this name in the run folder asks a run to checkpoint and stop after its current step


def prior_hours(metadata: dict[str, Any]) -> float:
    """Hours of audio a checkpoint's weights have seen, from its metadata (older checkpoints: steps x batch x segment)."""
    if "hours_seen" in metadata:
        return float(metadata["hours_seen"]) + float((metadata.get("init") or {}).get("hours_seen", 0.0))
    return float(metadata.get("steps", 0)) * float(metadata.get("global_batch", 0)) * float(metadata.get("segment_seconds", 0)) / 3600


# ------------------------------------------------------------------------------------------------
# pieces

class TrainForward(nn.Module):
    """What DDP wraps: mixture (B, C, N) + feature masks -> (est spec (B, S, C, T, F+1), est wav (B, S, C, N)).

    Identical to `Separator.forward` for stereo input when both feature masks are ones; the network
    alone runs under autocast (the STFTs stay float32)."""

    def __init__(self, separator: mdl.Separator, amp_dtype: torch.dtype | None):
        super().__init__()
        self.separator = separator
        self.amp_dtype = amp_dtype

    def forward(self, mix: Tensor, time_mask: Tensor, freq_mask: Tensor) -> tuple[Tensor, Tensor]:
        sep = self.separator
        spec = sep.stft(mix)
        feats = sep.features(spec) * time_mask[:, None, :, None] * freq_mask[:, None, None, :]
        with torch.autocast(mix.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            masks = sep.net(feats)
        est_spec = sep.apply_masks(spec, masks.float())
        return est_spec, sep.stft.inverse(est_spec, mix.shape[-1])


def load_init_weights(separator: mdl.Separator, ckpt: dict[str, Any], path: Any) -> None:
    """A checkpoint's network weights into `separator` (same network shapes; the STFT may differ, as when the
    `lowlatency` preset starts from `streaming` weights: same n_fft and frequency size, other windows).

    A causal TSA's bias per lag (`tsa.rel_bias`, heads x W) may differ in W: it is resampled along time by
    the ratio of the hops, so that a lag keeps its bias at the same age in seconds (lowlatency: hop 128,
    W = 64, from streaming: hop 512, W = 32: new lag d takes the old bias at lag d / 4, linearly
    interpolated; lags older than the old window take its oldest)."""
    mine = separator.state_dict()
    theirs = dict(ckpt.get("state_dict") or {})
    their_hop = int((ckpt.get("config") or {}).get("hop_length") or separator.hop_length)
    for k, v in list(theirs.items()):
        if k.endswith("tsa.rel_bias") and k in mine and v.dim() == 2 and v.shape[0] == mine[k].shape[0] \
                and v.shape != mine[k].shape:
            theirs[k] = resample_lags(v, mine[k].shape[1], separator.hop_length / their_hop)
    wrong = sorted(k for k in mine if k not in theirs or theirs[k].shape != mine[k].shape)
    extra = sorted(k for k in theirs if k not in mine)
    if wrong or extra:
        first = (wrong or extra)[0]
        raise TrainingError(f"--init {path}: expected a checkpoint with the network shapes of the preset being trained; "
                            f"{len(wrong)} tensors differ or are missing, {len(extra)} are extra (first: {first})")
    separator.load_state_dict(theirs)


def resample_lags(bias: torch.Tensor, window: int, ratio: float) -> torch.Tensor:
    """(heads, W_old) bias per lag -> (heads, window): lag d takes the old bias at lag d * ratio (linear
    interpolation, clamped to the oldest old lag)."""
    pos = (torch.arange(window, dtype=torch.float64) * ratio).clamp(max=bias.shape[1] - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=bias.shape[1] - 1)
    w = (pos - lo).to(bias.dtype)
    return (bias[:, lo] * (1 - w) + bias[:, hi] * w).contiguous()


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to `min_ratio` at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def enable_gradient_checkpointing(net: nn.Module) -> None:
    """Recompute every transformer block in the backward pass (saves activation memory; `paper`)."""
    from torch.utils.checkpoint import checkpoint

    for stage in [*net.encoder, net.bottleneck, *net.decoder]:
        for block in stage.blocks:
            inner = block.forward

            def run(*args, _inner=inner):
                return checkpoint(_inner, *args, use_reentrant=False)
            block.forward = run  # instance attribute: the state_dict keys do not change


def parameter_groups(net: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices / kernels only, not on norms, biases or embeddings."""
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        (decay if p.dim() >= 2 and "embed" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def hardware(device: torch.device, world: int) -> dict[str, Any]:
    info = {"device": str(device), "world_size": world, "torch": str(torch.__version__), "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "host": platform.node()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


class MetricsLog:
    """`metrics.jsonl` (one JSON object per line) and TensorBoard scalars, written by rank 0 only."""

    def __init__(self, out: Path, tensorboard: bool, resume_step: int | None):
        self.path = out / "metrics.jsonl"
        if resume_step is not None and self.path.exists():  # drop what a killed run logged after its checkpoint
            keep = [ln for ln in self.path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= resume_step]
            self.path.write_text("".join(ln + "\n" for ln in keep))
        self.file = self.path.open("a")
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                print("warning: tensorboard is not installed; writing metrics.jsonl only")

    def write(self, entry: dict[str, Any], prefix: str) -> None:
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in entry.items():
                if isinstance(v, dict):
                    for kk, vv in v.items():
                        self.tb.add_scalar(f"{prefix}/{k}_{kk}", vv, entry["step"])
                elif isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.tb.add_scalar(f"{prefix}/{k}", v, entry["step"])

    def examples(self, step: int, sample_rate: int, stems: tuple[str, ...], mix: Tensor, est: Tensor, target: Tensor) -> None:
        """Audio of one validation segment (mixture, estimates, targets) and log-magnitude spectrogram images."""
        if self.tb is None:
            return
        def spec_image(x: Tensor) -> Tensor:
            mag = torch.stft(x.mean(0), 1024, 256, window=torch.hann_window(1024), return_complex=True).abs()
            db = 20 * torch.log10(mag + 1e-5)
            img = ((db - db.max() + 80) / 80).clamp(0, 1).flip(0)
            return img[None]
        self.tb.add_audio("example/mixture", mix.mean(0), step, sample_rate)
        self.tb.add_image("example/mixture_spec", spec_image(mix), step)
        for i, s in enumerate(stems):
            self.tb.add_audio(f"example/{s}_estimate", est[i].mean(0).clamp(-1, 1), step, sample_rate)
            self.tb.add_audio(f"example/{s}_target", target[i].mean(0).clamp(-1, 1), step, sample_rate)
            self.tb.add_image(f"example/{s}_estimate_spec", spec_image(est[i]), step)

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()


def plot_curves(out: Path) -> None:
    """curves.png (loss and validation SDR, from metrics.jsonl) in the run folder; never stops a run."""
    try:
        from .curves import write_training_plot
        write_training_plot(out)
    except Exception as e:  # noqa: BLE001 - a picture is not worth a training run
        print(f"warning: could not draw {out / 'curves.png'}: {e}")


# ------------------------------------------------------------------------------------------------
# the trainer

class Trainer:
    """One process of a (possibly distributed) run. `run()` trains to the end and returns a summary."""

    def __init__(self, spec: RunSpec, config: dict[str, Any], cfg: TrainConfig | None = None,
                 resume: dict[str, Any] | None = None, with_data: bool = True, init: dict[str, Any] | None = None):
        self.spec = spec
        self.cfg = cfg if cfg is not None else train_config(config)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = choose_device(spec.device, local_rank=local_rank, world=self.world)
        prepare_device(self.device, self.cfg.cpu_threads)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.is_main = self.rank == 0

        # model, bit-identical on every process and on every resume
        torch.manual_seed(self.cfg.seed)
        if resume is not None:
            self.separator = separator_from_dict(resume, where=f"resume checkpoint {spec.out}").train()
        else:
            self.separator = mdl.build_separator(spec.preset, spec.stems, config)
        if init is not None and resume is None:  # a new run that starts from a checkpoint's weights (fine-tuning)
            load_init_weights(self.separator, init, (spec.init or {}).get("path"))
        self.separator.to(self.device).train()
        if self.cfg.gradient_checkpointing:
            enable_gradient_checkpointing(self.separator.net)
        amp = self.cfg.amp if self.device.type == "cuda" else self.cfg.cpu_amp
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        self.model_forward = TrainForward(self.separator, self.amp_dtype)     # validation runs it as is
        self.forward = (nn.parallel.DistributedDataParallel(self.model_forward) if self.world > 1
                        else self.model_forward)
        self.loss_fn = SeparationLoss(self.cfg.loss).to(self.device)
        self.compute_loss = self.loss_fn
        if self.cfg.compile:  # compiled on the first step (minutes on a small CPU; see README)
            self.forward = torch.compile(self.forward)
            self.compute_loss = torch.compile(self.loss_fn)

        o = self.cfg.optimizer
        self.optimizer = torch.optim.AdamW(parameter_groups(self.separator.net, o.weight_decay), lr=o.lr, betas=tuple(o.betas),
                                           fused=True if self.device.type == "cuda" else None)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, o.warmup_steps, spec.total_steps, o.min_lr_ratio))
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
        self.step = 0
        self.best: float | None = None
        self.bad_validations = 0
        self.wall_time = 0.0
        self.cpu_time = 0.0   # CPU seconds of this process's training steps (as wall_time: no validations, no saves)
        self.last_valid: dict[str, Any] = {}
        if resume is not None:
            st = resume[TRAINING_KEY]
            self.optimizer.load_state_dict(st["optimizer"])
            self.scheduler.load_state_dict(st["scheduler"])
            self.scaler.load_state_dict(st["scaler"])
            self.step, self.best, self.bad_validations = st["step"], st["best"], st["bad_validations"]
            self.wall_time = st.get("wall_time_s", 0.0)
            self.cpu_time = st.get("cpu_time_s", 0.0)
            self.last_valid = st.get("last_valid", {})
            set_rng_state(st["rng"])

        sr = self.separator.sample_rate
        self.segment = round(self.cfg.segment_seconds * sr)
        self.valid_segment = round(self.cfg.validation.segment_seconds * sr)
        if with_data:
            self.train_set, self.valid_set = build_datasets(
                spec.data, self.separator.stems, spec.merges, sample_rate=sr, segment=self.segment,
                valid_segment=self.valid_segment, augment=self.cfg.augment, data_cfg=self.cfg.data, seed=self.cfg.seed,
                per_track=self.cfg.validation.segments_per_track,
                frames=(self.separator.stft.n_frames(self.segment), self.separator.stft.n_frames(self.valid_segment)),
                n_freq=self.separator.config.n_freq, progress=self.is_main)
        self._timer = PhaseTimer(self.device)  # off; the benchmark times the phases with its own
        self.seen: Tensor | None = None        # per training track: has any step drawn from it
        if with_data:
            self.seen = torch.zeros(self.train_set.n_tracks, dtype=torch.bool)
            packed = (resume or {}).get(TRAINING_KEY, {}).get("tracks_seen")
            if packed is not None and len(packed) == (self.train_set.n_tracks + 7) // 8:
                bits = np.unpackbits(np.frombuffer(bytes(packed), np.uint8))[:self.train_set.n_tracks]
                self.seen = torch.from_numpy(bits.astype(bool))

    @property
    def epoch(self) -> int:
        return self.step // self.cfg.steps_per_epoch

    # one optimiser step ------------------------------------------------------------------------
    def mixup(self, mix: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Mix each example (mixture and stems alike) with another example of the batch, with
        probability `augment.mixup`; the weights come from (seed, step, rank), not from global RNG."""
        a = self.cfg.augment
        b = target.shape[0]
        if a.mixup <= 0 or b < 2:
            return mix, target
        g = np.random.default_rng([self.cfg.seed, self.step, self.rank, 1])
        chosen = torch.from_numpy(g.random(b) < a.mixup)
        lam = torch.from_numpy(g.beta(a.mixup_alpha, a.mixup_alpha, b).astype(np.float32))
        lam = torch.where(chosen, torch.maximum(lam, 1 - lam), torch.ones_like(lam)).to(target.device)
        partner = torch.from_numpy((np.arange(b) + g.integers(1, b)) % b).to(target.device)
        return (lam[:, None, None] * mix + (1 - lam[:, None, None]) * mix[partner],
                lam[:, None, None, None] * target + (1 - lam[:, None, None, None]) * target[partner])

    def train_step(self, batch: list[Tensor], timer: PhaseTimer | None = None) -> dict[str, float]:
        """One optimiser step on a batch (mixture (B, C, N), targets (B, S, C, N), masks (B, T), (B, F)) -> scalars.

        Waits for the device; the training loop uses `_step` and reads the scalars one step later."""
        step = self.step + 1
        return self._scalars(self._step(batch, timer or PhaseTimer()), step)

    def _step(self, batch: list[Tensor], timer: PhaseTimer) -> dict[str, Tensor]:
        """Queue one optimiser step; returns its scalars as 0-d tensors, without waiting for the device.

        The batch runs in micro-batches of `training.micro_batch` items (gradients accumulate; the
        result equals the whole batch up to float summation order): on a CPU a small working set is
        faster, and the resident memory is that of one micro-batch."""
        with timer.phase("data"):
            mix, target, tmask, fmask = (x.to(self.device, non_blocking=True) for x in batch[:4])
            mix, target = self.mixup(mix, target)
        b = mix.shape[0]
        size = self.cfg.micro_batch if 0 < self.cfg.micro_batch < b else b
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, Tensor] = {}
        for start in range(0, b, size):
            part = slice(start, min(b, start + size))
            weight = (part.stop - part.start) / b
            last = part.stop == b
            sync = self.forward.no_sync() if self.world > 1 and not last else contextlib.nullcontext()
            with sync:
                with timer.phase("forward"):
                    est_spec, est_wav = self.forward(mix[part], tmask[part], fmask[part])
                with timer.phase("losses"):
                    with torch.no_grad():
                        target_spec = self.separator.stft(target[part])
                    loss, parts = self.compute_loss(est_spec, target_spec, est_wav, target[part])
                with timer.phase("backward"):
                    self.scaler.scale(loss * weight).backward()
            for k, v in {"loss": loss, **parts}.items():
                sums[k] = sums.get(k, 0) + v.detach() * weight
        with timer.phase("optimizer"):
            self.scaler.unscale_(self.optimizer)
            grad_norm = nn.utils.clip_grad_norm_(self.separator.net.parameters(), self.cfg.optimizer.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
        self.step += 1
        return {**sums, "grad_norm": grad_norm.detach()}

    def _scalars(self, scalars: dict[str, Tensor], step: int) -> dict[str, float]:
        """Device scalars of optimiser step `step` -> floats; a non-finite loss ends the run."""
        values = dict(zip(scalars, torch.stack([v.float() for v in scalars.values()]).tolist()))
        if not math.isfinite(values["loss"]):
            raise TrainingError(f"the loss became {values['loss']} at step {step}; lower the learning rate "
                                "or check the data for NaN / silence")
        return values

    # validation ----------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, log: MetricsLog | None) -> dict[str, Any]:
        """Loss and fast per-stem SDR over the validation set (sharded over processes, then averaged)."""
        self.separator.eval()
        sampler = DistributedSampler(self.valid_set, self.world, self.rank, shuffle=False) if self.world > 1 else None
        loader = self._loader(self.valid_set, batch_size=self.cfg.validation.batch_size, sampler=sampler)
        n_stems = len(self.separator.stems)
        sums = torch.zeros(2 + n_stems, dtype=torch.float64, device=self.device)  # loss*items, items, sdr sums
        example = None
        for batch in loader:
            mix, target, tmask, fmask = (x.to(self.device) for x in batch)
            est_spec, est_wav = self.model_forward(mix, tmask, fmask)
            loss, _ = self.loss_fn(est_spec, self.separator.stft(target), est_wav, target)
            b = mix.shape[0]
            sums[0] += loss.double() * b
            sums[1] += b
            sums[2:] += batch_sdr(est_wav.float(), target).double().sum(0)
            if example is None:
                example = (mix[0].cpu(), est_wav[0].float().cpu(), target[0].cpu())
        if self.world > 1:
            dist.all_reduce(sums)
        self.separator.train()
        count = max(sums[1].item(), 1.0)
        sdr = {s: round(sums[2 + i].item() / count, 4) for i, s in enumerate(self.separator.stems)}
        result = {"step": self.step, "epoch": self.epoch, "valid_loss": sums[0].item() / count, "sdr": sdr,
                  "sdr_mean": float(np.mean(list(sdr.values())))}
        metric = result["valid_loss"] if self.cfg.validation.best_metric == "valid_loss" else -result["sdr_mean"]
        improved = self.best is None or metric < self.best
        if improved:
            self.best, self.bad_validations = metric, 0
        else:
            self.bad_validations += 1
        result["best"] = improved
        if log is not None:
            log.write(result, "valid")
            plot_curves(self.spec.out)
            if example is not None and self.cfg.logging.audio_examples > 0:
                log.examples(self.step, self.separator.sample_rate, self.separator.stems, *example)
        self.last_valid = {k: result[k] for k in ("step", "valid_loss", "sdr", "sdr_mean")}
        return result

    # checkpoints ---------------------------------------------------------------------------------
    def metadata(self, tracks_seen: int | None = None) -> dict[str, Any]:
        return {
            "preset": self.spec.preset, "stems": list(self.separator.stems), "data": list(self.spec.data),
            "steps": self.step, "epoch": self.epoch, "total_steps": self.spec.total_steps,
            "wall_time_s": round(self.wall_time, 1), "cpu_time_s": round(self.cpu_time, 1), "hardware": hardware(self.device, self.world),
            "global_batch": self.cfg.batch_size * self.world, "segment_seconds": self.cfg.segment_seconds,
            "lr": self.cfg.optimizer.lr, "seed": self.cfg.seed, "validation": self.last_valid,
            "tracks_seen": self.tracks_seen() if tracks_seen is None else tracks_seen,
            "hours_seen": round(self.hours_seen, 4), "init": self.spec.init,
            "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def save(self, best: bool = False) -> None:
        """last.ckpt (with the resume state) and, when `best`, best.ckpt; atomic, rank 0 only."""
        tracks = self.tracks_seen()  # a collective under DDP: every process takes part
        if not self.is_main:
            return
        ckpt = checkpoint_dict(self.separator, **self.metadata(tracks))
        if best:
            atomic_torch_save(ckpt, self.spec.out / "best.ckpt")
        ckpt[TRAINING_KEY] = {
            "step": self.step, "best": self.best, "bad_validations": self.bad_validations,
            "wall_time_s": self.wall_time, "cpu_time_s": self.cpu_time, "last_valid": self.last_valid,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "rng": rng_state(),
            "tracks_seen": None if self.seen is None else np.packbits(self.seen.numpy()).tobytes(),
            "run": {"preset": self.spec.preset, "stems": list(self.separator.stems), "data": list(self.spec.data),
                    "total_steps": self.spec.total_steps, "merges": self.spec.merges, "train_config": self.cfg.to_dict(),
                    "init": self.spec.init},
        }
        atomic_torch_save(ckpt, self.spec.out / "last.ckpt")

    # the loop ------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train from `self.step` to `total_steps` (or `stop_at`, or early stop) -> summary dict."""
        spec, cfg = self.spec, self.cfg
        stop = min(spec.total_steps, spec.stop_at) if spec.stop_at else spec.total_steps
        log = None
        if self.is_main:
            spec.out.mkdir(parents=True, exist_ok=True)
            log = MetricsLog(spec.out, cfg.logging.tensorboard, self.step if self.step > 0 else None)
        loader = self._loader(self.train_set, batch_sampler=StepBatches(self.step, stop, cfg.batch_size, self.rank, self.world))
        progress = None
        if self.is_main and cfg.logging.progress:
            from tqdm import tqdm
            progress = tqdm(total=stop, initial=self.step, desc=f"train {spec.preset}", unit="step", dynamic_ncols=True)
        window: dict[str, list[float]] = {}
        waited = [0.0]  # seconds spent waiting for batches in this logging window
        t_window = t_last = t_saved = time.perf_counter()
        clock = time.process_time if spec.budget_clock == "cpu" else time.perf_counter
        c_start = clock()
        c_last = time.process_time()
        save_every = cfg.logging.checkpoint_minutes * 60
        stop_file = spec.out / STOP_FILE
        stopped_early = False
        stopped = None  # why the run stopped before `stop`: "budget" (stop_after_s) or "requested" (STOP file)
        pending: tuple[int, dict[str, Tensor]] | None = None

        def settle() -> None:
            """Read the scalars of the last queued step (once the next one is queued, this does not stall the device)."""
            nonlocal pending
            if pending is not None:
                for k, v in self._scalars(pending[1], pending[0]).items():
                    window.setdefault(k, []).append(v)
                if progress is not None:
                    progress.set_postfix(loss=f"{window['loss'][-1]:.4f}", refresh=False)
                pending = None

        try:
            for batch in _timed(loader, waited):
                self._note_tracks(batch)
                scalars = self._step(batch, self._timer)
                settle()
                pending = (self.step, scalars)
                if progress is not None:
                    progress.update(1)
                end_of_epoch = self.step % cfg.steps_per_epoch == 0 or self.step == spec.total_steps
                now = time.perf_counter()
                if spec.stop_after_s is not None and clock() - c_start >= spec.stop_after_s:
                    stopped = "budget"
                elif self.is_main and stop_file.exists():
                    stopped = "requested"
                if self.world > 1:  # every process stops at the same step
                    flag = torch.tensor([stopped is not None], dtype=torch.uint8, device=self.device)
                    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                    stopped = stopped or ("requested" if flag.item() else None)
                log_now = self.step % cfg.logging.log_interval == 0 or self.step == stop or stopped is not None
                save_now = (self.step % cfg.logging.checkpoint_interval == 0 or self.step == stop or stopped is not None
                            or (save_every > 0 and now - t_saved >= save_every))
                if not (end_of_epoch or log_now or save_now):
                    continue
                settle()
                now = time.perf_counter()
                self.wall_time += now - t_last
                self.cpu_time += time.process_time() - c_last
                t_last = now
                if log_now:
                    self._log_scalars(window, now - t_window, waited[0], log)
                    window, t_window, waited[0] = {}, time.perf_counter(), 0.0
                if end_of_epoch:
                    result = self.validate(log)
                    if progress is not None:
                        progress.write(f"step {self.step}: valid_loss {result['valid_loss']:.4f}, SDR "
                                       + ", ".join(f"{k} {v:.2f} dB" for k, v in result["sdr"].items()))
                    self.save(best=result["best"])
                    patience = cfg.validation.patience
                    if patience > 0 and self.bad_validations >= patience:
                        stopped_early = True
                        if progress is not None:
                            progress.write(f"early stop: {patience} validations without improvement")
                        break
                elif save_now:
                    self.save()
                if save_now or end_of_epoch:
                    t_saved = time.perf_counter()
                t_last, c_last = time.perf_counter(), time.process_time()
                if stopped is not None:
                    break
            settle()
        finally:
            if progress is not None:
                progress.close()
            if log is not None:
                log.close()
        if stopped == "requested" and self.is_main:
            stop_file.unlink(missing_ok=True)
        return {"step": self.step, "epoch": self.epoch, "stopped_early": stopped_early, "stopped": stopped, "best": self.best,
                "wall_time_s": self.wall_time, "out": str(spec.out), "validation": self.last_valid,
                "tracks_seen": self.tracks_seen(), "hours_seen": round(self.hours_seen, 4)}

    # data ----------------------------------------------------------------------------------------
    def _loader(self, dataset, **kwargs) -> DataLoader:
        """DataLoader with `num_workers` resolved for this machine, pinned memory and prefetch on CUDA."""
        workers = resolve_workers(self.cfg.num_workers, self.device, self.world)
        return DataLoader(dataset, num_workers=workers, pin_memory=self.device.type == "cuda",
                          prefetch_factor=4 if workers else None, persistent_workers=False, **kwargs)

    def _note_tracks(self, batch: list[Tensor]) -> None:
        if len(batch) > 4 and self.seen is not None:
            ids = batch[4]
            self.seen[ids[ids >= 0]] = True

    def tracks_seen(self) -> int:
        """Distinct training tracks any stem of any segment came from (all processes)."""
        if self.seen is None:
            return 0
        seen = self.seen.to(torch.uint8)
        if self.world > 1:
            seen = seen.to(self.device)
            dist.all_reduce(seen, op=dist.ReduceOp.MAX)
        return int(seen.sum())

    @property
    def hours_seen(self) -> float:
        """Hours of training audio the run has stepped through (all processes); `init` holds what its
        starting weights had seen before."""
        return self.step * self.cfg.batch_size * self.world * self.cfg.segment_seconds / 3600

    def _log_scalars(self, window: dict[str, list[float]], seconds: float, waited: float, log: MetricsLog | None) -> None:
        values = torch.tensor([float(np.mean(v)) for v in window.values()], dtype=torch.float64)
        if self.world > 1:
            values = values.to(self.device)
            dist.all_reduce(values)
            values = values.cpu() / self.world
        tracks = self.tracks_seen()
        if log is None:
            return
        steps = len(next(iter(window.values())))
        entry = {"step": self.step, "epoch": self.epoch, **{k: float(v) for k, v in zip(window, values.tolist())},
                 "lr": self.scheduler.get_last_lr()[0],
                 "segments_per_s": steps * self.cfg.batch_size * self.world / max(seconds, 1e-9),
                 "data_wait": round(waited / max(seconds, 1e-9), 4),
                 "tracks_seen": tracks, "hours_seen": round(self.hours_seen, 4)}
        log.write(entry, "train")


def _timed(loader, waited: list[float]):
    """Iterate `loader`, adding the seconds spent waiting for each batch to waited[0]."""
    it = iter(loader)
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            return
        waited[0] += time.perf_counter() - t0
        yield batch


def resolve_workers(setting: int | str, device: torch.device, world: int) -> int:
    """`training.num_workers` -> DataLoader workers per process. `auto`: on CUDA every core this
    process's share leaves after itself (at most 8); on CPU one (reading cached crops is light, and
    every core a worker takes is one the model's threads lose)."""
    if setting != "auto":
        return int(setting)
    if device.type != "cuda":
        return 1 if cpu_cores() > 1 else 0
    return max(1, min(8, cpu_cores() // max(1, world) - 1))


# ------------------------------------------------------------------------------------------------
# entry point used by the CLI

def load_resume(run_dir: Path) -> dict[str, Any]:
    """RUN_DIR -> the dict of RUN_DIR/last.ckpt, checked to hold a resumable training state."""
    path = Path(run_dir) / "last.ckpt"
    if not Path(run_dir).is_dir():
        raise TrainingError(f"--resume {run_dir}: expected a run folder written by `python -m training`, it does not exist")
    ckpt = read_checkpoint(path)
    if TRAINING_KEY not in ckpt:
        raise TrainingError(f"--resume {run_dir}: {path} holds weights but no training state (not a last.ckpt)")
    return ckpt


# what --resume may change: how the run is executed, not what it computes
RESUMABLE_OVERRIDES = ("num_workers", "micro_batch", "compile", "cpu_threads", "steps_per_epoch")


def train(config: dict[str, Any], *, preset: str | None, stems: str | None, data: list[str], out: Path | None,
          steps: int | None = None, epochs: int | None = None, resume: Path | None = None, device: str | None = None,
          stop_at: int | None = None, overrides: dict[str, Any] | None = None, init: Path | None = None,
          stop_after_s: float | None = None, budget_clock: str = "wall") -> dict[str, Any]:
    """Set up (or resume) a run and train it. Returns the summary of `Trainer.run`.

    `overrides`: dotted `training:` keys from the command line (e.g. {"batch_size": 4, "optimizer.lr": 1e-3}),
    applied over config.yaml and, on a CPU, over its `training.cpu` defaults. `init`: a new run starts from
    this checkpoint's weights (its preset and stems; hours it had seen are kept in the metadata's `init`).
    `stop_after_s`: checkpoint and return after this many seconds of training (the run continues with `resume`),
    counted on `budget_clock`: "wall" time, or "cpu" time of this process (equal compute for runs that share a
    loaded machine)."""
    ckpt = None
    init_ckpt = None
    init_info = None
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    device_type = choose_device(device, local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                                world=int(os.environ.get("WORLD_SIZE", "1"))).type
    if resume is not None:
        ckpt = load_resume(resume)
        run = ckpt[TRAINING_KEY]["run"]
        fixed = sorted(k for k in overrides if k not in RESUMABLE_OVERRIDES)
        if fixed:
            raise TrainingError(f"--resume {resume}: the run's {', '.join(fixed)} cannot change when it resumes "
                                "(start a new run with --out, or leave them out)")
        cfg = with_overrides(TrainConfig.from_dict(run["train_config"]), overrides)
        out = Path(resume)
        preset, stem_names, merges = run["preset"], tuple(run["stems"]), run["merges"]
        data = data or run["data"]
        total = run["total_steps"]
        init_info = run.get("init")
        if init is not None:
            raise TrainingError(f"--init {init}: a resumed run keeps the weights it has; --init starts a new run (--out)")
    else:
        if out is None:
            raise TrainingError("expected --out RUN_DIR (where checkpoints and logs go)")
        cfg = with_overrides(train_config(config, device_type), overrides)
        preset = preset or "streaming"
        names = mdl.preset_names(config)
        if preset not in names:
            raise TrainingError(f"unknown preset {preset!r}; expected one of {names}")
        stem_names = mdl.model_config(preset, config, stems).stems
        merges = mdl.stem_merges(config)
        if init is not None:
            init_ckpt = read_checkpoint(Path(init))
            meta = init_ckpt.get("metadata") or {}
            init_info = {"path": str(init), "preset": meta.get("preset"), "steps": int(meta.get("steps", 0)),
                         "hours_seen": round(prior_hours(meta), 4)}
        total = None
        if (Path(out) / "last.ckpt").exists():
            raise TrainingError(f"--out {out} already holds a run (last.ckpt); use --resume {out} or another --out")
    if steps is not None:
        total = steps
    elif epochs is not None:
        total = epochs * cfg.steps_per_epoch
    elif total is None:
        total = cfg.epochs * cfg.steps_per_epoch
    if total < 1:
        raise TrainingError(f"expected --steps / --epochs >= 1, got {total} steps")
    spec = RunSpec(preset=preset, stems=stem_names, data=list(data), out=Path(out), total_steps=total,
                   stop_at=stop_at, device=device, merges=merges, stop_after_s=stop_after_s, budget_clock=budget_clock,
                   init=init_info)
    trainer = Trainer(spec, config, cfg, resume=ckpt, init=init_ckpt)
    if trainer.step >= total:
        raise TrainingError(f"--resume {out}: the run is already at step {trainer.step} of {total}; "
                            "pass a larger --steps to continue it")
    try:
        return trainer.run()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
