"""StreamingSeparator: a causal separator run one STFT hop at a time, with no audio I/O.

Per hop it frames the newest n_fft input samples (rolling STFT buffer), runs one static step of the
network on the new frame only (ring-buffer state updated in place, see `TFSWAUNet.step_hop`), and
overlap-adds the masked frame into the output (same window and normalisation as the offline iSTFT).
The step has the same shapes on every hop, so it can run compiled (`torch.compile`; on CUDA also
captured in a CUDA graph); a chunk holding k hops runs the step k times.

`hops_per_step` K > 1 runs K consecutive hops per call instead: the engine waits for K hops of input,
and their K frames go through the network as one batch (the rings advance frame by frame inside the
step, so the result is exactly that of K one-hop calls). That costs (K - 1) hops of latency
(`step_latency_samples`) for K times fewer calls, and larger matrix products per call.

The output is a sample-synchronous stream: `feed` returns exactly as many samples as it was given, and
stream sample i equals offline output sample i - latency_samples.

Shapes: S stems, C audio channels, n samples.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from core.errors import ConfigError, UserError
from core.schema import build, setting
from model.separator import Separator

from . import compiled, cpu

STEP_HISTORY = 4096  # per-hop compute times kept for statistics


@dataclass(frozen=True)
class EngineConfig:
    """`config.yaml` section `streaming`."""

    compile: str | bool = setting("auto", choices=("auto", "on", "off"))  # YAML reads on / off as booleans
    compile_min_file_s: float = setting(60.0, ge=0, le=1e6)  # auto, file -> file: compile from this much audio
    threads: int = setting(1, ge=0, le=256)   # intra-op threads on CPU; 0 = auto (see streaming/engine/cpu.py)
    hops_per_step: int | str = setting(1, ge=1, le=16)  # hops per network call (K - 1 hops of extra latency),
    #                                                     or "auto": the smallest K that the start-up probe finds fast enough
    auto_hops_max: int = setting(4, ge=1, le=16)        # auto: K tried 1, 2, 4, ... up to this
    auto_hops_budget: float = setting(0.5, gt=0.0, le=1.0)   # auto: a call's p99 within this share of its K hops

    def __post_init__(self):
        check_hops(self.hops_per_step, "config streaming.hops_per_step")

    @classmethod
    def from_config(cls, config: dict) -> EngineConfig:
        cfg = build(cls, config.get("streaming"), "config streaming")
        compiled.parse_setting(cfg.compile)
        cpu.pick_threads(cfg.threads)
        return cfg


def check_hops(value, where: str) -> None:
    """Hops per step: an integer from 1 to 16, or 'auto'."""
    if isinstance(value, bool) or not ((isinstance(value, int) and 1 <= value <= 16) or value == "auto"):
        raise ConfigError(f"{where}: expected an integer from 1 to 16 or auto, got {value!r}")


class HopCore(nn.Module):
    """The compiled unit: K consecutive STFT frames (real view) -> stem spectra, with the network's ring-buffer
    state and the frame position held as buffers and updated in place. spec (C, K, F+1, 2) -> (S, C, K, F+1, 2)."""

    def __init__(self, separator: Separator, dtype: torch.dtype, device: torch.device):
        super().__init__()
        self.separator = separator
        self.n_state = 0
        for i, t in enumerate(separator.net.init_hop_state(1, device, dtype)):
            self.register_buffer(f"state_{i}", t, persistent=False)
            self.n_state += 1
        self.register_buffer("pos", torch.zeros((), dtype=torch.int64, device=device), persistent=False)

    def state(self) -> list[Tensor]:
        return [getattr(self, f"state_{i}") for i in range(self.n_state)]

    def reset(self) -> None:
        """Zero the state in place (a compiled or captured graph keeps pointing at the same tensors) and
        rebuild the mask tables from the current weights."""
        for t in self.state():
            t.zero_()
        self.pos.zero_()
        self.separator.net.build_hop_masks()

    def forward(self, spec: Tensor) -> Tensor:
        out = self.separator.step_hop(spec.unsqueeze(0), self.state(), self.pos)[0]
        self.pos.add_(spec.shape[1])
        return out


class StreamingSeparator:
    """`feed(chunk)` (C, n) -> (S, C, n); `flush()` -> (S, C, latency_samples); `reset()`.

    `mode="cached"` carries the network state between hops (the product path); `mode="naive"`
    recomputes the whole receptive field every hop (a reference for tests and the benchmark).
    `compile`: "auto" | "on" | "off" (or a bool): run the cached step through `torch.compile`
    (on CUDA also as a CUDA graph); auto compiles where a C++ compiler (CPU) or Triton (CUDA) is
    there and falls back to eager with one warning line if compiling fails. Compilation happens on
    `warm_up()` (or the first hop). `half=True` runs the network in float16 (CUDA only).
    `engine_kind` says what runs ("compiled", "compiled+cudagraph", "eager", "eager+cudagraph", "naive").
    `threads`: intra-op threads to set (process-wide; see streaming/engine/cpu.py), None: leave torch's setting.
    `hops_per_step`: K hops per network call (cached mode), at (K - 1) hops of extra latency.
    """

    def __init__(self, separator: Separator, device: str | torch.device | None = None, channels: int = 2,
                 mode: str = "cached", max_block_hops: int = 32, half: bool = False, compile="off",
                 threads: int | str | None = None, hops_per_step: int = 1):
        if not separator.causal:
            raise UserError("streaming needs a causal separator (preset with causal: true); "
                            f"got an offline one (n_fft={separator.n_fft})")
        if channels not in (1, separator.audio_channels):
            raise UserError(f"expected 1 or {separator.audio_channels} audio channels, got {channels}")
        if mode not in ("cached", "naive"):
            raise ValueError(f"mode must be 'cached' or 'naive', got {mode!r}")
        if not isinstance(hops_per_step, int) or not 1 <= hops_per_step <= 16 or (mode == "naive" and hops_per_step != 1):
            raise UserError(f"expected hops per step from 1 to 16 (1 in naive mode), got {hops_per_step!r}")
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        if half and self.device.type != "cuda":
            raise UserError("half precision needs a CUDA device")
        self.separator = separator.to(self.device).eval()
        self.net = self.separator.net
        self.dtype = torch.float16 if half else torch.float32
        if half:
            self.net.half()
        self.mode = mode
        self.threads = cpu.set_threads(threads) if threads is not None else torch.get_num_threads()
        self.compile_setting = compiled.parse_setting(compile)
        self.compile_s = 0.0
        self.channels = channels
        self.stems = separator.stems
        self.sample_rate = separator.sample_rate
        self.n_fft = separator.n_fft
        self.hop_length = hop = separator.hop_length
        self.hops_per_step = k = hops_per_step
        self.step_latency_samples = (k - 1) * hop     # waiting for K hops before a call
        self.latency_samples = separator.latency_samples + self.step_latency_samples
        self.receptive_field_frames = separator.receptive_field_frames
        self.max_block_hops = -(-max(1, int(max_block_hops)) // k) * k   # whole steps
        n_stems, ca = len(self.stems), separator.audio_channels
        history = self.n_fft - hop
        # Synthesis span: the part of a frame that reaches the output (n_fft, or less for asymmetric windows).
        self.synthesis_length = span = separator.stft.synthesis_length

        # Rolling input buffer: n_fft - hop samples of history, then up to max_block_hops new hops.
        self._in = np.zeros((channels, history + self.max_block_hops * hop), np.float32)
        self._in_fill = 0                      # new samples after the history part
        # Overlap-add accumulator: the synthesis span of frame j of a batch lands at [j*hop, j*hop + span).
        self._acc = torch.zeros(n_stems, ca, span - hop + self.max_block_hops * hop, device=self.device)
        # Output FIFO of finished stem samples (starts with latency_samples of silence).
        self._out = np.zeros((n_stems, channels, self.latency_samples + (self.max_block_hops + 1) * hop), np.float32)
        self._step_ms = np.zeros(STEP_HISTORY, np.float64)
        self._window = self.separator.stft.window.to(self.device)
        self._synthesis = self.separator.stft.synthesis_window[self.n_fft - span:].to(self.device)   # (span,)
        env = self.separator.stft.envelope().float().to(self.device)
        self._inv_env = (1.0 / env).repeat(self.max_block_hops)      # (max_block_hops * hop,)
        self._core = HopCore(self.separator, self.dtype, self.device) if mode == "cached" else None
        self._hop_fn = self._hop_eager
        self.engine_kind = "eager" if mode == "cached" else "naive"
        self._ready = mode != "cached" or self.compile_setting == "off" or \
            not compiled.wanted(self.compile_setting, self.device)
        if self._ready and mode == "cached" and self.device.type == "cuda":
            self._capture_cuda_graph(self._hop_eager)
        self.reset()

    # --------------------------------------------------------------------------------------------
    @property
    def compiles_on_warm_up(self) -> bool:
        """True until the compiled step is built (by `warm_up()` or the first hop)."""
        return not self._ready

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.sample_rate

    @property
    def step_times_ms(self) -> np.ndarray:
        """Compute time per hop (ms) of the most recent hops, oldest first."""
        n = min(self._steps, STEP_HISTORY)
        i = self._steps % STEP_HISTORY
        return np.concatenate([self._step_ms[i:], self._step_ms[:i]])[-n:] if n else self._step_ms[:0].copy()

    @property
    def rtf(self) -> float:
        """Measured real-time factor: mean compute time per hop / hop duration (nan before any hop)."""
        t = self.step_times_ms
        return float(t.mean() / (1000.0 * self.hop_length / self.sample_rate)) if len(t) else float("nan")

    def reset(self) -> None:
        """Forget everything: input history, network state, overlap-add tail, output FIFO, counters."""
        self._in.fill(0.0)
        self._in_fill = 0
        self._acc.zero_()
        self._out.fill(0.0)
        self._out_len = self.latency_samples
        self._skip = self.synthesis_length - self.hop_length   # output of frames before sample 0 is dropped
        self._frame = 0                              # absolute index of the next STFT frame
        self._steps = 0
        self.model_calls = 0
        self.nonfinite_samples = 0
        if self.mode == "cached":
            self._core.reset()
        else:
            n_bins = self.separator.config.n_freq
            self._feat_hist = torch.zeros(1, self.separator.audio_channels, 0, n_bins, device=self.device, dtype=self.dtype)

    def reset_stats(self) -> None:
        """Forget the per-hop compute times (`step_times_ms`, `rtf`), nothing else."""
        self._steps = 0

    def warm_up(self, hops: int = 8) -> None:
        """Compile (when asked) and run silence through the per-hop path, then reset: call before a real-time
        stream starts so that no compilation or first-call allocation happens in the audio path."""
        self._ensure_ready()
        silence = np.zeros((self.channels, self.hop_length), np.float32)
        for _ in range(hops):
            self.feed(silence)
        self.feed(np.zeros((self.channels, 3 * self.hop_length), np.float32))
        self.reset()

    # compilation ---------------------------------------------------------------------------------
    def _example(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A step's input samples (Ca, n_fft + (K-1) hop) and its frames' spectra (Ca, K, F+1, 2)."""
        span = self.n_fft + (self.hops_per_step - 1) * self.hop_length
        probe = torch.zeros(self.separator.audio_channels, span, device=self.device)
        frames = probe.unfold(-1, self.n_fft, self.hop_length)
        return probe, torch.view_as_real(torch.fft.rfft(frames * self._window))

    def skip_compile_unless_cached(self) -> bool:
        """With compile=auto: run eager unless the compiled step is already cached (a short file run would
        wait longer for the compiler than for the eager step). True when the engine stays eager."""
        if self._ready or self.compile_setting != "auto":
            return False
        with torch.inference_mode():
            if compiled.is_cached(self._core, self._example()[1]):
                return False
        self._ready = True
        self._run_eager()
        return True

    def _run_eager(self) -> None:
        self._hop_fn = self._hop_eager
        self.engine_kind = "eager"

    def _ensure_ready(self) -> None:
        """Compile the per-hop core on first use; with compile=auto a failure falls back to eager."""
        if self._ready:
            return
        self._ready = True
        t = time.perf_counter()
        try:
            with torch.inference_mode():             # exactly as `_process` calls it
                probe, example = self._example()
                core = compiled.compile_step(self._core, example)
                for _ in range(2):
                    self._hop_with(core, probe)
            self._hop_fn = lambda x: self._hop_with(core, x)
            self.engine_kind = "compiled"
            if self.device.type == "cuda":
                self._capture_cuda_graph(self._hop_fn)
        except Exception as e:  # noqa: BLE001 - inductor raises many types; auto falls back, on reports
            if self.compile_setting == "on":
                raise UserError(f"compiling the streaming step failed ({type(e).__name__}: "
                                f"{str(e).splitlines()[0] if str(e) else ''}); expected a working C++ compiler "
                                "(CPU) or Triton (CUDA), or --no-compile") from None
            compiled.warn(f"compiling the streaming step failed ({type(e).__name__}); running it eager")
            self._run_eager()
        finally:
            self.compile_s = time.perf_counter() - t
            self._core.reset()

    def _capture_cuda_graph(self, fn) -> None:
        """On CUDA, replay the whole hop (FFT, network, inverse FFT) as one captured graph."""
        try:
            with torch.inference_mode():
                graph = compiled.CudaGraphHop(fn, self._example()[0])
        except Exception as e:  # noqa: BLE001 - capture is an optimisation; without it the hop still runs
            compiled.warn(f"CUDA graph capture failed ({type(e).__name__}); launching kernels one by one")
            return
        finally:
            self._core.reset()
        self._hop_fn = graph
        self.engine_kind += "+cudagraph"

    # --------------------------------------------------------------------------------------------
    def feed(self, chunk: np.ndarray | Tensor, out: np.ndarray | None = None) -> np.ndarray:
        """Push (C, n) samples; return the next (S, C, n) stem samples (written into `out` if given)."""
        if isinstance(chunk, Tensor):
            chunk = chunk.detach().cpu().numpy()
        chunk = np.asarray(chunk)
        if chunk.ndim != 2 or chunk.shape[0] != self.channels:
            raise UserError(f"expected a chunk of shape ({self.channels}, n), got {chunk.shape}")
        n = chunk.shape[1]
        if out is None:
            out = np.empty((len(self.stems), self.channels, n), np.float32)
        assert out.shape == (len(self.stems), self.channels, n), (out.shape, chunk.shape)
        history, hop = self.n_fft - self.hop_length, self.hop_length
        capacity = self._in.shape[1] - history
        done = 0
        pos = 0
        while pos < n:
            take = min(n - pos, capacity - self._in_fill)
            dst = self._in[:, history + self._in_fill:history + self._in_fill + take]
            np.copyto(dst, chunk[:, pos:pos + take], casting="same_kind")
            if not np.isfinite(dst).all():
                bad = ~np.isfinite(dst)
                self.nonfinite_samples += int(bad.sum())
                dst[bad] = 0.0
            self._in_fill += take
            pos += take
            hops = self._in_fill // (hop * self.hops_per_step) * self.hops_per_step
            if hops:
                self._process(hops)
            # Hand out what this input has paid for so the FIFO never overflows.
            ready = min(pos - done, self._out_len)
            self._pop(out[:, :, done:done + ready])
            done += ready
        assert done == n, (done, n)
        return out

    def flush(self) -> np.ndarray:
        """Return the last `latency_samples` of the stream (input padded with silence)."""
        return self.feed(np.zeros((self.channels, self.latency_samples), np.float32))

    # --------------------------------------------------------------------------------------------
    def _pop(self, dst: np.ndarray) -> None:
        k = dst.shape[-1]
        if k == 0:
            return
        dst[...] = self._out[:, :, :k]
        rest = self._out_len - k
        self._out[:, :, :rest] = self._out[:, :, k:self._out_len]
        self._out_len = rest

    def _push(self, y: np.ndarray) -> None:
        k = y.shape[-1]
        self._out[:, :, self._out_len:self._out_len + k] = y
        self._out_len += k

    def _hop_with(self, core, x: Tensor) -> Tensor:
        """The K frames of x (Ca, n_fft + (K-1) hop) -> the synthesis spans of the windowed stem frames
        (S, Ca, K, span): FFT, core, inverse FFT."""
        frames = x.unfold(-1, self.n_fft, self.hop_length)                         # (Ca, K, n_fft)
        spec = torch.view_as_real(torch.fft.rfft(frames * self._window))           # (Ca, K, F+1, 2)
        est = torch.view_as_complex(core(spec))                                    # (S, Ca, K, F+1)
        return torch.fft.irfft(est, n=self.n_fft)[..., self.n_fft - self.synthesis_length:] * self._synthesis

    def _hop_eager(self, x: Tensor) -> Tensor:
        return self._hop_with(self._core, x)

    @torch.inference_mode()
    def _process(self, hops: int) -> None:
        """Run `hops` new frames (a multiple of K) through STFT -> network -> masks -> overlap-add; push
        finished samples."""
        hop, n_fft = self.hop_length, self.n_fft
        frames_in = n_fft + (hops - 1) * hop           # input samples the k frames cover
        if not self._ready:
            self._ensure_ready()
        t_start = time.perf_counter()
        x = torch.from_numpy(self._in[:, :frames_in]).to(self.device, non_blocking=True)
        if self.channels == 1:
            x = x.expand(self.separator.audio_channels, -1)
        acc, span = self._acc, self.synthesis_length
        if self.mode == "cached":
            k = self.hops_per_step
            step_in = n_fft + (k - 1) * hop
            for g in range(0, hops, k):
                frames = self._hop_fn(x[:, g * hop:g * hop + step_in])              # (S, Ca, K, span)
                for j in range(k):
                    acc[:, :, (g + j) * hop:(g + j) * hop + span] += frames[:, :, j]
        else:
            spec = torch.stft(x, n_fft, hop, window=self._window, center=False, return_complex=True)
            spec = spec.transpose(1, 2).unsqueeze(0)                               # (1, Ca, k, F+1)
            masks = self._naive_masks(self.separator.features(spec).to(self.dtype), hops).float()
            est = self.separator.apply_masks(spec, masks)[0]                       # (S, Ca, k, F+1)
            frames = torch.fft.irfft(est, n=n_fft)[..., n_fft - span:] * self._synthesis   # (S, Ca, k, span)
            for j in range(hops):
                acc[:, :, j * hop:j * hop + span] += frames[:, :, j]
        done = hops * hop
        y = acc[:, :, :done] * self._inv_env[:done]
        if self.channels == 1:
            y = y.mean(1, keepdim=True)
        y = y.cpu().numpy()
        # Slide the accumulator and the input history.
        tail = acc.shape[-1] - done
        acc[:, :, :tail] = acc[:, :, done:].clone()
        acc[:, :, tail:] = 0.0
        keep = self.n_fft - hop + self._in_fill - done
        self._in[:, :keep] = self._in[:, done:done + keep].copy()
        self._in_fill -= done
        self._frame += hops
        self.model_calls += 1 if self.mode == "naive" else hops // self.hops_per_step
        skip = min(self._skip, done)
        self._skip -= skip
        self._push(y[:, :, skip:])
        elapsed = (time.perf_counter() - t_start) * 1000.0 / hops
        for _ in range(hops):
            self._step_ms[self._steps % STEP_HISTORY] = elapsed
            self._steps += 1

    def _naive_masks(self, feats: Tensor, hops: int) -> Tensor:
        """Naive reference: masks (1, S, Ca, k, F) of the k newest frames, recomputing the full receptive
        field from a fresh state; `feats` (1, Ca, k, F)."""
        t0 = self._frame
        rf = self.receptive_field_frames
        hist = torch.cat([self._feat_hist, feats], 2)
        self._feat_hist = hist[:, :, max(0, hist.shape[2] - (rf - 1)):]
        window = hist[:, :, max(0, hist.shape[2] - (rf - 1) - hops):]
        start = t0 + hops - window.shape[2]
        state = self.net.init_state(1, self.device, self.dtype)
        masks, _ = self.net.step(window, state, start)
        return masks[:, :, :, -hops:]
