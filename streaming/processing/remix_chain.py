"""The worker-side processing chain shared by the live host and file runs:
sanitise -> (mono -> stereo) -> resample to the model rate -> StreamingSeparator -> StemMixer ->
resample back. Shapes: (n, C) frames-major at the I/O rate in and out; (S, C, n) stems inside.
"""
from __future__ import annotations

import numpy as np

from .meters import MeterConfig, Meters
from .resample import StreamResampler
from .stem_mixer import StemMixer


def level_db(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20.0 * np.log10(rms) if rms > 1e-10 else -200.0


class RemixChain:
    """`process(x)` (n, C_in) at `io_rate` -> remix (m, K) at `io_rate`; `flush()` -> the rest.

    Between the engine and the mixer, `fx` (stem_fx.StemEffects: key change, per-stem chains, alignment)
    and after it the mix chain; `meters` (meters.Meters) meter every stem and the master bus; `router`
    (routing.Router) lays the sources out on K output channels
    (default: the mix on 2, or its mono sum on 1). The output is delayed by `latency_frames`: the engine's
    latency plus the chains', at the I/O rate (soxr itself is time-aligned)."""

    def __init__(self, engine, mixer: StemMixer, io_rate: int, quality: str = "LQ", out_channels: int = 2,
                 fx=None, router=None, meter_cfg: MeterConfig | None = None):
        self.engine, self.mixer = engine, mixer
        self.io_rate, self.model_rate = int(io_rate), int(engine.sample_rate)
        self.channels = 2
        self.fx = fx if fx is not None and fx.active else None
        self.router = router
        self.out_channels = router.n_channels if router is not None else out_channels
        self.rs_in = StreamResampler(self.io_rate, self.model_rate, self.channels, quality)
        self.rs_out = StreamResampler(self.model_rate, self.io_rate, self.out_channels if router else self.channels,
                                      quality)
        self.fx_latency_samples = self.fx.latency_samples if self.fx else 0
        self._dry = None
        if router is not None and router.uses_dry:
            from .delay import DelayLine
            self._dry = DelayLine(self.channels, engine.latency_samples + self.fx_latency_samples)
        self.nonfinite_samples = 0
        self.stem_levels_db = np.full(len(mixer.stems), -200.0)
        self.meters = Meters(tuple(mixer.stems), self.model_rate, meter_cfg)   # per stem post-fader, master
        self.frames_in = 0

    @property
    def latency_frames(self) -> float:
        return (self.engine.latency_samples + self.fx_latency_samples) * self.io_rate / self.model_rate

    @property
    def fx_latency_ms(self) -> float:
        return 1000.0 * self.fx_latency_samples / self.model_rate

    def _stereo(self, x: np.ndarray) -> np.ndarray:
        if not np.isfinite(x).all():
            bad = ~np.isfinite(x)
            self.nonfinite_samples += int(bad.sum())
            x = np.where(bad, np.float32(0.0), x)
        if x.shape[1] == 1:
            x = np.repeat(x, 2, axis=1)
        assert x.shape[1] == 2, f"expected (n, 1 or 2) input frames, got {x.shape}"
        return x

    def _remix(self, stems: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        """stems (S, 2, k) and the model-rate input y (k, 2) (None at the flush) -> (k, K)."""
        fx = self.fx
        if fx is not None:
            stems = fx.process_stems(stems)
        if fx is not None and fx.mix_chain is not None:
            mix = self.mixer.limit(fx.process_mix(self.mixer.mix(stems, limit=False)))
        else:
            mix = self.mixer.mix(stems)
        self.meters.update(stems, mix, self.mixer.fader_gains(), self.mixer.reduction_db)
        router = self.router
        if router is None:
            return mix.T
        direct = None
        if router.uses_stems:
            direct = self.mixer.direct(stems)
            if fx is not None:
                direct = fx.align_direct(direct)
        dry = None
        if self._dry is not None:
            x = np.zeros((self.channels, stems.shape[-1]), np.float32) if y is None else np.ascontiguousarray(y.T)
            dry = self._dry.process(x)
        return router.render(direct, mix, dry, *self.mixer.limiter_levels).T

    def _model_block(self, y: np.ndarray) -> np.ndarray:
        """(k, 2) at the model rate -> remix (k, K) at the model rate."""
        stems = self.engine.feed(np.ascontiguousarray(y.T))                  # (S, 2, k)
        if stems.shape[-1]:
            for i in range(stems.shape[0]):
                self.stem_levels_db[i] = level_db(stems[i])
        return self._remix(stems, y)

    def _out(self, remix: np.ndarray) -> np.ndarray:
        out = self.rs_out.process(np.ascontiguousarray(remix))
        if self.router is None and self.out_channels == 1:
            out = out.mean(1, keepdims=True)
        return out

    def process(self, x: np.ndarray) -> np.ndarray:
        x = self._stereo(np.asarray(x, np.float32))
        self.frames_in += x.shape[0]
        return self._out(self._model_block(self.rs_in.process(x)))

    def flush(self) -> np.ndarray:
        """Everything still inside: the resampler tails, the engine's last latency_samples and the chains'."""
        a = self._model_block(self.rs_in.flush())
        tail = self.engine.flush()
        if self.fx_latency_samples:
            silence = np.zeros((*tail.shape[:2], self.fx_latency_samples), np.float32)
            tail = np.concatenate([tail, silence], axis=-1)
        b = self._remix(tail, None)
        out = self.rs_out.process(np.ascontiguousarray(np.concatenate([a, b])))
        out = np.concatenate([out, self.rs_out.flush()])
        return out.mean(1, keepdims=True) if self.router is None and self.out_channels == 1 else out


class AlignedWriter:
    """Drops the chain's first `latency` frames and writes at most `total` frames (set `total` as soon
    as it is known; `finish` pads with silence), so a file output lines up with its input."""

    def __init__(self, sink, latency_frames: float, total: int | None = None):
        self.sink = sink
        self._drop = round(latency_frames)
        self.total = total
        self.written = 0

    def write(self, block: np.ndarray) -> None:
        if self._drop:
            k = min(self._drop, block.shape[0])
            block = block[k:]
            self._drop -= k
        if self.total is not None:
            block = block[:max(0, self.total - self.written)]
        self.sink.write(block)
        self.written += block.shape[0]

    def finish(self, channels: int) -> None:
        """After the flush output was written: pad with silence up to `total` frames."""
        if self.total is not None and self.written < self.total:
            self.sink.write(np.zeros((self.total - self.written, channels), np.float32))
            self.written = self.total
