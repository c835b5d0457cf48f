"""The live host: a sounddevice (PortAudio) stream, its callback, and the separation worker thread.

The callback only copies frames between the device and two preallocated `AudioRing`s and counts
status flags; it never allocates buffers, locks, logs or calls the model. The worker thread drains
the input ring (or reads a file), runs the `RemixChain` (resample -> engine -> mixer -> resample) and
fills the output ring (or writes a file). When the output ring lacks a block the callback plays the
dry input on the mix ports (or silence on every port, `host.late_policy`; see `plan._late_policy`) and
counts a late block. With `host.adaptive_headstart` that block becomes one more block of head start: the
audio behind it plays one block later from then on, with nothing skipped, until the head start reaches
`host.adaptive_headstart_max_ms`; after that (or with the switch off) the missing block is skipped later
so the latency stays constant. The first block after a late one cross-fades in from the filler (64
samples), so no step adds a click of its own.

Modes: device -> device (duplex stream), file/demo -> device (output stream, paced by the ring),
device -> file (input stream; the file is latency-aligned and as long as the capture).
"""
from __future__ import annotations

import gc
import os
import select
import sys
import threading
import time

import numpy as np

from core.errors import UserError
from core.signals import stop_on_signals

from ..engine import cpu
from ..processing.remix_chain import AlignedWriter
from ..processing.resample import chain_lag_frames
from . import headstart
from .config import HostConfig
from .devices import DeviceFormat
from .report import RunStats, latency_line, status_line
from .ring import AudioRing
from .sources import FileSink

XRUN_LOG = 16  # how many xrun / late-block / head-start step times the stats keep
FADE = 64      # frames of the cross-fade from a late block's filler back to the processed output
WAKE_MS = 0.2  # allowance for the worker's wake-up after the callback posts input (eventfd + scheduling)


class LiveHost:
    """One live run. `run(duration)` blocks until the duration, end of file or Ctrl-C -> RunStats."""

    def __init__(self, pieces, fmt: DeviceFormat, cfg: HostConfig, source=None, out_path=None, status: bool = True):
        """pieces: build.Pieces (the remix chain with its mixer, effects and router; the mic path; the controls,
        applied between blocks); fmt: the negotiated devices.DeviceFormat; source: the file / demo input of a
        file -> device run (None: the input device); out_path: the file of a device -> file run."""
        self.sd = None
        if not fmt.jack_client:
            # PortAudio only when it plays: initialised, it is a JACK client of its own, whose exit handler
            # aborts the process when that server has gone away (our own JACK client runs without it).
            import sounddevice as sd
            self.sd = sd
        self.pieces = pieces
        self.chain, self.engine, self.mixer = pieces.chain, pieces.chain.engine, pieces.mixer
        self.controls, self.mic, self.router = pieces.controls, pieces.mic, pieces.router
        self.cfg, self.fmt, self.midi = cfg, fmt, None
        self.jack_client = fmt.jack_client
        self.in_device, self.out_device, self.source, self.out_path = fmt.in_device, fmt.out_device, source, out_path
        self.show_status = status
        assert fmt.in_live != (source is not None), "exactly one of a live input or a file source"
        assert fmt.out_live != (out_path is not None), "exactly one of a live output or an output file"
        self.rate, self.blocksize, self._pa_blocksize = fmt.rate, fmt.blocksize, fmt.pa_blocksize
        self.in_cols, self.dev_in_channels, self.mic_channel = fmt.in_cols, fmt.dev_in_channels, fmt.mic_channel
        self.port_names = list(self.router.port_names) if fmt.jack_client and fmt.out_live else None
        self.out_channels = self.chain.out_channels if fmt.out_live else 0
        if not fmt.jack_client:
            self._check_settings()
        cap = max(4 * max(self.blocksize, 1024), int(cfg.ring_seconds * self.rate))
        mic = self.mic
        ring_cols = len(self.in_cols) + (1 if mic is not None else 0)
        self.in_ring = AudioRing(cap, ring_cols) if self.in_cols else None
        self._ring_cols = (*self.in_cols, *(() if mic is None else (self.mic_channel,)))
        self.out_ring = AudioRing(cap, self.out_channels) if self.out_channels else None
        # Late blocks play the dry input on the channels of the mix and of the dry source (all channels without
        # routing); the plan made the policy silence where a stem is routed (plan._late_policy).
        if not self.in_cols or cfg.late_policy != "dry":
            self._dry_map = []
        elif self.router is None:
            self._dry_map = [(j, self.in_cols[min(j, len(self.in_cols) - 1)]) for j in range(self.out_channels)]
        else:
            self._dry_map = [(c, self.in_cols[min(k, len(self.in_cols) - 1)]) for r in self.router.routes
                             if r.source in ("mix", "dry") for k, c in enumerate(r.channels)]
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(FADE) + 0.5) / FADE)
        self._ramp = ramp.astype(np.float32)                 # filler -> processed, raised cosine
        self._ramp_rest = (1.0 - ramp).astype(np.float32)
        self._fade_tmp = np.zeros(FADE, np.float32)
        self._fade = False           # callback: the next block that plays from the ring fades in
        # The mic: its own ring with a short head start, added by the callback (no separation delay).
        self.mic_ring = AudioRing(cap, 2) if mic is not None else None
        self._mic_buf = np.zeros((cap, 2), np.float32)
        self._mic_tmp = np.zeros(cap, np.float32)
        self._mic_taps = self.router.mic_taps() if mic is not None else []
        self._mic_debt = self._mic_late = 0
        self.mic_prefill = int(pieces.mic_prefill_blocks) * self.block
        # Resampler lag as measured at this block size (filter delay plus soxr's bursty release; 0 at 44.1 kHz).
        self.resampler_frames = chain_lag_frames(self.rate, self.engine.sample_rate, cfg.resample_quality, self.block)
        self.headstart: headstart.HeadStart | None = None     # planned in run(), before the stream opens
        self.prefill = 0
        self.stats = RunStats(io_sample_rate=self.rate, model_sample_rate=self.engine.sample_rate,
                              blocksize=self.blocksize, algorithmic_latency_ms=self.engine.latency_ms,
                              resampler_latency_ms=1000.0 * self.resampler_frames / self.rate,
                              chain_latency_ms=self.chain.fx_latency_ms)
        self.stats.extra["resample_quality"] = cfg.resample_quality if self.resampler_frames else "bypassed"
        self.stats.extra["hops_per_step"] = self.engine.hops_per_step
        self.stats.extra["step_latency_ms"] = round(1000.0 * self.engine.step_latency_samples / self.engine.sample_rate, 3)
        if self.out_ring is None:
            self.stats.buffer_latency_ms = 1000.0 * self.block / self.rate
        # Callback-owned counters (plain ints: written by the callback only).
        self._overflows = self._underflows = self._late = self._debt = self._in_drops = 0
        self._grow_left = 0                                  # frames the head start may still grow (set in run())
        self._grown = self._grow_steps = 0                   # frames it grew by, in how many steps
        self._grow_at = np.zeros(XRUN_LOG, np.int64)         # callback frame of the first steps
        self._base_buffer_ms = 0.0
        self._cb_frames = 0                                  # frames the callback has handled
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK) if hasattr(os, "eventfd") and self.in_ring is not None else None
        self._xrun_at = np.zeros(XRUN_LOG, np.int64)         # callback frame of the first xruns
        self._late_at = np.zeros(XRUN_LOG, np.int64)         # callback frame of the first late blocks
        self._eof = False            # worker -> callback: the file source is exhausted and flushed
        self._drained = False        # callback -> main: the output ring ran dry after _eof
        self._stop = False
        self._closing = False        # main -> callback: the stream is about to close; play silence, count nothing
        self._error: BaseException | None = None
        self._stream = None          # the open stream (a JackStream: its source follower and connections)
        self._gone: str | None = None   # a JACK thread -> main: the server went away mid-run (why)
        self._captured = 0           # frames the callback put into the input ring (device -> file)
        self._busy_s = 0.0           # worker: seconds spent in chain.process (the mean load)
        self._busy_frames = 0        # worker: frames those seconds processed

    # setup ---------------------------------------------------------------------------------------
    @property
    def block(self) -> int:
        """Frames per callback (256 assumed when the device chooses: blocksize 0)."""
        return self.blocksize if self.blocksize > 0 else 256

    @property
    def poll_s(self) -> float:
        """How long the worker sleeps when it finds no input: at most a quarter block, at most 2 ms."""
        return min(0.002, 0.25 * self.block / self.rate)

    @property
    def wake_ms(self) -> float:
        """How late the worker may see a new input block: woken by the callback through an eventfd (Linux),
        else its polling interval."""
        return WAKE_MS if self._wake_fd is not None else 1000.0 * self.poll_s

    def _wake_worker(self) -> None:
        """Callback: tell the worker input is there (one non-blocking eventfd write; no lock, no allocation)."""
        if self._wake_fd is not None:
            os.eventfd_write(self._wake_fd, 1)

    def _wait_for_input(self, timeout: float) -> None:
        """Worker: sleep until the callback posts new input (or `timeout` passes)."""
        if self._wake_fd is None:
            time.sleep(timeout)
            return
        if select.select([self._wake_fd], [], [], timeout)[0]:
            try:
                os.eventfd_read(self._wake_fd)
            except BlockingIOError:
                pass

    def plan_headstart(self) -> headstart.HeadStart:
        """Time the real chain on silence (warmed up, compiled) in device blocks and size the output ring's
        head start from it (streaming/host/headstart.py); `host.prefill_blocks: N` fixes the block count instead."""
        cfg = self.cfg
        fixed = None if cfg.prefill_blocks == "auto" else int(cfg.prefill_blocks)
        times, withheld = np.zeros(0), 0
        if fixed is None:
            frames_before = self.chain.frames_in
            result = []

            def probe() -> None:     # timed at the worker's own scheduling priority
                try:
                    cpu.promote_current_thread(cfg.realtime_priority)
                    result.append(headstart.time_blocks(self.chain.process, self.block, len(self.in_cols) or 2,
                                                        self.rate, cfg.prefill_probe_s))
                except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread
                    result.append(e)
            t = threading.Thread(target=probe, name="headstart-probe", daemon=True)
            t.start()
            t.join()
            if isinstance(result[0], BaseException):
                raise result[0]
            times, withheld = result[0]
            self.chain.frames_in = frames_before
        plan = headstart.plan(times, self.block, self.rate, self.resampler_frames, float(cfg.prefill_margin_ms),
                              self.wake_ms, float(cfg.prefill_quantile), fixed)
        self.headstart = plan
        # What the probe left inside the resamplers leads the live output: prime the ring with that much less.
        self.prefill = plan.frames - withheld
        self.stats.buffer_latency_ms = plan.buffer_ms
        self.stats.extra.update(plan.describe())
        return plan

    def plan_growth(self) -> None:
        """How far the adaptive head start may grow: from the planned buffers up to adaptive_headstart_max_ms."""
        self._base_buffer_ms = self.stats.buffer_latency_ms
        cfg = self.cfg
        room_ms = cfg.adaptive_headstart_max_ms - self._base_buffer_ms if cfg.adaptive_headstart else 0.0
        self._grow_left = max(0, int(room_ms * self.rate / 1000.0))
        self.stats.extra["adaptive_headstart"] = bool(cfg.adaptive_headstart)
        self.stats.extra["late_policy"] = cfg.late_policy

    def _check_settings(self) -> None:
        try:
            if self.in_device is not None:
                self.sd.check_input_settings(self.in_device, channels=self.dev_in_channels, dtype="float32",
                                             samplerate=self.rate)
            if self.out_device is not None:
                self.sd.check_output_settings(self.out_device, channels=self.out_channels, dtype="float32",
                                              samplerate=self.rate)
        except Exception as e:  # noqa: BLE001 - PortAudio raises several types for unsupported settings
            raise UserError(f"the audio device does not support {self.rate} Hz float32 with these channels "
                            f"({str(e).splitlines()[0]}); expected a supported --samplerate / --channels") from None

    def _latency_arg(self):
        lat = self.cfg.latency
        try:
            return float(lat)
        except (TypeError, ValueError):
            return lat

    def _open_stream(self):
        if self.jack_client:
            from .jack_ports import JackStream
            if self.out_ring is None:
                cb = self.capture
            else:
                cb = self.duplex if self.in_ring is not None else self.playback
            return JackStream(self.jack_client, self.in_cols, self.dev_in_channels, self.mic_channel,
                              self.port_names or [], cb, self.fmt.jack_wiring, on_shutdown=self._server_gone)
        sd, kw = self.sd, {"samplerate": self.rate, "blocksize": self._pa_blocksize, "dtype": "float32",
                               "latency": self._latency_arg()}
        try:
            if self.in_ring is not None and self.out_ring is not None:
                return sd.Stream(device=(self.in_device, self.out_device),
                                 channels=(self.dev_in_channels, self.out_channels), callback=self.duplex, **kw)
            if self.out_ring is not None:
                return sd.OutputStream(device=self.out_device, channels=self.out_channels, callback=self.playback, **kw)
            return sd.InputStream(device=self.in_device, channels=self.dev_in_channels, callback=self.capture, **kw)
        except sd.PortAudioError as e:
            raise UserError(f"cannot open the audio stream ({e}); expected a free device (see --list-devices)") from None

    # callbacks: copy and count only --------------------------------------------------------------
    def _count(self, status, frames: int) -> None:
        if status and (status.input_overflow or status.output_underflow):
            n = max(self._overflows, self._underflows)
            if n < XRUN_LOG:
                self._xrun_at[n] = self._cb_frames
            if status.input_overflow:
                self._overflows += 1
            if status.output_underflow:
                self._underflows += 1
        self._cb_frames += frames

    def _pull(self, outdata, frames, dry) -> None:
        ring = self.out_ring
        if ring.available() >= frames + self._debt:
            if self._debt:
                ring.skip(self._debt)
                self._debt = 0
            ring.read_into(outdata)
            if self._fade:
                self._fade_in(outdata, frames, dry)
            return
        if self._eof:                       # end of the file: play what is left, then report drained
            n = ring.read_into(outdata)
            if n < frames:
                outdata[n:] = 0.0
                self._drained = True
            return
        if self._late < XRUN_LOG:
            self._late_at[self._late] = self._cb_frames
        self._late += 1
        if self._grow_left >= frames:       # adaptive head start: this block is one more block of head start
            self._grow_left -= frames
            self._grown += frames
            if self._grow_steps < XRUN_LOG:
                self._grow_at[self._grow_steps] = self._cb_frames
            self._grow_steps += 1
        else:
            self._debt += frames
        self._fade = True
        outdata.fill(0.0)
        if dry is not None:
            for j, c in self._dry_map:
                outdata[:, j] = dry[:, c]

    def _fade_in(self, outdata, frames, dry) -> None:
        """Callback: the first block after a late one cross-fades from the filler (the dry input on its
        channels, else silence) to the processed output over FADE frames, in place."""
        self._fade = False
        n = min(frames, FADE)
        head = outdata[:n]
        head *= self._ramp[:n, None]
        if dry is not None:
            tmp = self._fade_tmp[:n]
            for j, c in self._dry_map:
                np.multiply(dry[:n, c], self._ramp_rest[:n], out=tmp)
                head[:, j] += tmp

    def _add_mic(self, outdata, frames) -> None:
        """Callback: add the processed mic (its own ring, no separation delay) on its channels."""
        ring = self.mic_ring
        if ring.available() < frames + self._mic_debt:
            self._mic_late += 1
            self._mic_debt += frames
            return
        if self._mic_debt:
            ring.skip(self._mic_debt)
            self._mic_debt = 0
        buf = self._mic_buf[:frames]
        ring.read_into(buf)
        for col, ch in self._mic_taps:
            if ch is None:
                tmp = self._mic_tmp[:frames]
                np.add(buf[:, 0], buf[:, 1], out=tmp)
                tmp *= 0.5
                outdata[:, col] += tmp
            else:
                outdata[:, col] += buf[:, ch]
        np.clip(outdata, -1.0, 1.0, out=outdata)

    def duplex(self, indata, outdata, frames, time_info, status) -> None:
        """The duplex stream's callback (PortAudio's or JackStream's signature)."""
        if self._closing:
            outdata.fill(0.0)
            return
        self._count(status, frames)
        if self.in_ring.write_columns(indata, self._ring_cols) < frames:
            self._in_drops += 1
        self._wake_worker()
        self._pull(outdata, frames, indata)
        if self.mic_ring is not None:
            self._add_mic(outdata, frames)

    def playback(self, outdata, frames, time_info, status) -> None:
        """The output-only stream's callback (file -> device)."""
        if self._closing:
            outdata.fill(0.0)
            return
        self._count(status, frames)
        self._pull(outdata, frames, None)

    def capture(self, indata, frames, time_info, status) -> None:
        """The input-only stream's callback (device -> file)."""
        if self._closing:
            return
        self._count(status, frames)
        n = self.in_ring.write_columns(indata, self.in_cols)
        self._wake_worker()
        self._captured += n
        if n < frames:
            self._in_drops += 1

    # worker --------------------------------------------------------------------------------------
    def _worker(self, writer: AlignedWriter | None) -> None:
        why = cpu.promote_current_thread(self.cfg.realtime_priority)
        self.stats.extra["worker_realtime"] = not why
        if why:
            self.stats.extra["worker_realtime_note"] = why
        try:
            self._work(writer)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, which re-raises it
            self._error = e
            self._stop = True

    def _work(self, writer: AlignedWriter | None) -> None:
        chunk = np.zeros((self.in_ring.capacity if self.in_ring else self.cfg.file_block,
                          self.in_ring.channels if self.in_ring else 1), np.float32)
        block = self.block
        idle = self.poll_s
        load_ema = 0.0
        while not self._stop:
            if self.controls is not None:
                self.controls.apply_pending()
            if self.in_ring is not None:
                n = self.in_ring.available()
                if n == 0:
                    self._wait_for_input(idle)
                    continue
                # At most a few blocks per pass: a worker that fell behind still sees _stop and controls soon.
                x = chunk[:self.in_ring.read_into(chunk[:min(n, 8 * block)])]
                if self.mic is not None:      # first the mic: it must reach the callback within its head start
                    if self.mic_ring.write(self.mic.process(x[:, -1])) < x.shape[0]:
                        self.stats.extra["mic_ring_drops"] = self.stats.extra.get("mic_ring_drops", 0) + 1
                    x = x[:, :-1]
            else:
                if self._eof:
                    time.sleep(idle)
                    continue
                if self.out_ring.space() < 2 * block + 4096:   # real-time pacing: keep the ring full
                    time.sleep(idle)
                    continue
                x = self.source.read(block)
                if x.shape[0] == 0:
                    tail = self.chain.flush()
                    self.out_ring.write(tail[:self.out_ring.space()])
                    self._eof = True
                    continue
            t0 = time.perf_counter()
            y = self.chain.process(x)
            dt = time.perf_counter() - t0
            load_ema += 0.1 * (dt * self.rate / max(1, x.shape[0]) - load_ema)
            self.stats.worker_load = load_ema
            self._busy_s += dt
            self._busy_frames += x.shape[0]
            if self.out_ring is not None:
                if self.out_ring.write(y) < y.shape[0]:
                    self.stats.output_ring_drops += 1
            else:
                writer.write(y)

    # run -----------------------------------------------------------------------------------------
    def _warm_up(self) -> None:
        """One pass of silence through the model so the first real hop is not the slow first call, and the
        numba kernels (key shifter, low-delay resampler) compiled or loaded from numba's cache: a kernel's
        first call compiles it, for seconds, which inside the worker made a file -> device run miss
        thousands of blocks."""
        from ..processing.keyshift import warm_kernels as warm_key
        from ..processing.resample import warm_kernels as warm_resampler
        warm_key()
        warm_resampler()
        self.engine.feed(np.zeros((2, 4 * self.engine.hop_length + self.engine.latency_samples), np.float32))
        self.engine.reset()

    def run(self, duration: float | None = None, main_loop=None, banner: str = "") -> RunStats:
        """main_loop(t0, duration): what the main thread does while the stream runs (default: the status line;
        the terminal mixer passes its own); it returns when `running(t0, duration)` turns False or the user quits.
        `banner` goes to stderr once the stream and the worker run, when a stop signal is the run's normal end."""
        self._warm_up()
        if self.out_ring is not None and self.in_ring is not None and self.headstart is None:
            self.plan_headstart()
        elif self.out_ring is not None and self.headstart is None:     # file -> device: the worker fills ahead
            self.prefill = self.resampler_frames + self.block
            self.stats.buffer_latency_ms = 1000.0 * self.block / self.rate
        sink = writer = None
        if self.out_path is not None:
            sink = FileSink(self.out_path, self.rate, self.chain.out_channels)
            writer = AlignedWriter(sink, self.chain.latency_frames)
        if self.out_ring is not None:
            self.out_ring.write_zeros(self.prefill)
            self.plan_growth()
        if self.mic_ring is not None:
            self.mic_ring.write_zeros(self.mic_prefill)
        self.stats.mode = ("device" if self.in_ring is not None else "file") + "->" + \
            ("device" if self.out_ring is not None else "file")
        worker = threading.Thread(target=self._worker, args=(writer,), name="separation-worker", daemon=True)
        signals = stop_on_signals()          # SIGINT / SIGTERM / SIGHUP end the run like Ctrl-C
        signals.__enter__()
        old_switch = sys.getswitchinterval()
        # The callback needs the GIL within a fraction of a block: make the worker hand it over sooner.
        sys.setswitchinterval(min(old_switch, self.cfg.gil_switch_interval_ms / 1000.0))
        # A cyclic-GC pass holds the GIL for milliseconds, long enough for the callback to miss a period.
        # Tensors are freed by reference counting; freeze what exists and collect only after the run.
        gc_was_enabled = gc.isenabled()
        gc.freeze()
        gc.disable()
        t0 = time.perf_counter()
        try:
            stream = self._open_stream()
            worker.start()
            with stream:
                self._stream = stream
                for note in getattr(stream, "notes", ()):
                    print(f"streaming: note: {note}", file=sys.stderr, flush=True)
                try:
                    dev_lat = stream.latency
                    self.stats.device_latency_ms = 1000.0 * (sum(dev_lat) if isinstance(dev_lat, tuple) else dev_lat)
                    if self.out_ring is not None:
                        print(f"streaming: {latency_line(self.stats)}", file=sys.stderr, flush=True)
                    if banner:       # printed once the stream runs and a stop signal ends the run as Ctrl-C
                        print(banner, file=sys.stderr, flush=True)
                    (main_loop or self._main_loop)(t0, duration)
                finally:
                    self._quiesce(worker)
        except KeyboardInterrupt:
            pass
        except BaseException:
            self._stop = True
            if sink is not None:
                sink.discard()
            raise
        finally:
            sys.setswitchinterval(old_switch)
            gc.unfreeze()
            if gc_was_enabled:
                gc.enable()
            signals.__exit__(None, None, None)
            self._stop = True
            if worker.is_alive():
                worker.join(5.0)
            if self._wake_fd is not None and not worker.is_alive():
                os.close(self._wake_fd)
                self._wake_fd = None
            self.collect(time.perf_counter() - t0)
            if self.show_status:
                print(file=sys.stderr, flush=True)
        if self._error is not None:
            if sink is not None:
                sink.discard()
            raise self._error
        if sink is not None:
            # Drain what the callback captured but the worker has not processed, then flush.
            rest = np.zeros((self.in_ring.available(), len(self.in_cols)), np.float32)
            self.in_ring.read_into(rest)
            writer.total = self._captured
            writer.write(self.chain.process(rest))
            writer.write(self.chain.flush())
            writer.finish(self.chain.out_channels)
            sink.commit()
            self.stats.extra["output_frames"] = writer.written
        return self.stats

    def _quiesce(self, worker: threading.Thread) -> None:
        """Before the stream closes: the worker stops, and the callbacks play silence and return at once,
        counting nothing (the blocks the stopped worker no longer fills are not late blocks). Nothing
        holds the GIL for milliseconds while the stream closes; how a JACK client closes without hanging
        is `jack_ports.ProcessCallback`'s business."""
        self._closing = True
        self._stop = True
        self._wake_worker()
        if worker.is_alive():
            worker.join(5.0)

    def _server_gone(self, reason: str) -> None:
        """A JACK notification thread: the server shut down; the run ends (flags only)."""
        self._gone = reason
        self._stop = True

    def running(self, t0: float, duration: float | None) -> bool:
        """Main thread: whether the run goes on (no stop, error or drained file, duration not reached)."""
        return not (self._stop or self._drained or (duration is not None and time.perf_counter() - t0 >= duration))

    def _main_loop(self, t0: float, duration: float | None) -> None:
        interval = max(0.5, float(self.cfg.status_interval_s))
        next_status = t0 + interval
        noted = False
        while not self._stop:
            if not noted and "worker_realtime" in self.stats.extra:
                noted = True
                if self.show_status and not self.stats.extra["worker_realtime"]:
                    print(f"streaming: note: worker thread at normal priority: "
                          f"{self.stats.extra['worker_realtime_note']}", file=sys.stderr, flush=True)
            now = time.perf_counter()
            if duration is not None and now - t0 >= duration:
                break
            if self._drained:
                break
            if self.show_status and now >= next_status:
                self.collect(now - t0)
                end = "\r" if sys.stderr.isatty() else "\n"
                print(status_line(self.stats, self.mixer, self.chain.stem_levels_db), end=end, file=sys.stderr,
                      flush=True)
                next_status = now + interval
            time.sleep(0.01)

    def collect(self, wall: float) -> None:
        """Copy the callback's and the worker's counters into `self.stats` (any thread, any time)."""
        s = self.stats
        s.wall_seconds = wall
        s.input_overflows, s.output_underflows, s.late_blocks = self._overflows, self._underflows, self._late
        s.input_ring_drops = self._in_drops
        s.xrun_times_s = [round(float(f) / self.rate, 3) for f in self._xrun_at[:min(XRUN_LOG, max(self._overflows, self._underflows))]]
        s.late_block_times_s = [round(float(f) / self.rate, 3) for f in self._late_at[:min(XRUN_LOG, self._late)]]
        if self.out_ring is not None:
            s.buffer_latency_ms = self._base_buffer_ms + 1000.0 * self._grown / self.rate
            s.extra["headstart_steps"] = self._grow_steps
            s.extra["headstart_step_times_s"] = [round(float(f) / self.rate, 3)
                                                 for f in self._grow_at[:min(XRUN_LOG, self._grow_steps)]]
            s.extra["headstart_grown_ms"] = round(1000.0 * self._grown / self.rate, 3)
        s.nonfinite_samples = self.chain.nonfinite_samples
        follower = getattr(self._stream, "follower", None)
        if follower is not None:
            s.extra["jack_source"] = follower.describe()
        if self._gone is not None:
            s.extra["jack_server_gone"] = self._gone
        if self.mic is not None:
            s.extra["mic_late_blocks"] = self._mic_late
            s.extra["mic_latency_ms"] = round(1000.0 * (self.mic_prefill + self.block) / self.rate
                                              + s.device_latency_ms, 3)
        s.seconds = self.chain.frames_in / self.rate
        if self._busy_frames:
            s.extra["worker_load_mean"] = round(self._busy_s * self.rate / self._busy_frames, 4)

