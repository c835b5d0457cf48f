"""`--jack-ports`: the live host as a JACK client (JACK-Client package) with one named output port pair per
source, so that a DAW, Carla, OBS or a recorder can take each stem live.

Ports of client `tfswa-live` (config `routing.jack_client_name`): inputs `in_N` for each input channel N used
(connected to `system:capture_N`) plus `mic_in` with `--mic`; outputs `mix_L`/`mix_R` (connected to
`system:playback_1/2`), `STEM_L`/`STEM_R` per stem, `mic_L`/`mic_R` with `--mic` (left unconnected: connect
them with `jack_connect`, QjackCtl, Carla or your DAW).

`JackStream` looks to `LiveHost` like a sounddevice stream: a context manager with `latency`, calling the
host's callback `(indata, outdata, frames, time_info, status)` with (frames, channels) float32 arrays. It
copies the port buffers into / out of preallocated interleaved arrays; nothing is allocated per cycle
beyond the NumPy views JACK-Client hands out. Server xruns are counted as output underflows.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

import numpy as np

from core.errors import UserError


def jack_module():
    try:
        import jack
    except (ImportError, OSError) as e:
        raise UserError(f"--jack-ports needs the JACK-Client package and libjack ({e}); expected "
                        "`pip install JACK-Client` and a JACK (or PipeWire-JACK) server") from None
    return jack


def open_client(name: str, what: str = "JACK"):
    """A JACK client of this name on the running server (never starting one); `what` leads the one-line error."""
    jack = jack_module()
    try:
        return jack.Client(name, no_start_server=True)
    except jack.JackError as e:
        raise UserError(f"{what}: cannot connect to a JACK server ({e}); expected a running jackd "
                        "or PipeWire-JACK (pw-jack)") from None


def server_format(client_name: str) -> tuple[int, int]:
    """(sample rate, period frames) of the running JACK server."""
    return server_info(client_name)[:2]


def server_info(client_name: str) -> tuple[int, int, int]:
    """(sample rate, period frames, physical capture ports) of the running JACK server."""
    client = open_client(f"{client_name}-probe")
    try:
        captures = client.get_ports(is_audio=True, is_output=True, is_physical=True)
        return int(client.samplerate), int(client.blocksize), len(captures)
    finally:
        client.close()


class ProcessCallback:
    """`callback(frames)` as `client`'s process callback, and a `close()` that cannot hang the process.

    jack_deactivate (JACK2) stops a client's process thread with pthread_cancel. A thread cancelled
    inside a Python callback (waiting for the GIL, or in a system call with the GIL held) dies with the
    GIL or its mutex locked, and the whole process hangs for good; on a loaded machine the process
    thread is often still inside the callback when the server gives up waiting for it. So `close()`
    first makes the callback raise `jack.CallbackExit` on its next cycle: JACK then deactivates the
    client from that thread and ends it outside Python, and deactivate() finds nothing left to cancel.
    It waits until that thread is gone (at most `timeout`: a server that stopped running cycles never
    calls the callback again), removes the xrun callback (close() also cancels the notification
    thread, which runs it), then deactivates and closes the client. `silence`: output ports zeroed on
    that last cycle. Activate the client through `activate()`, so that `close()` knows whether a
    process thread runs.
    """

    def __init__(self, client, callback: Callable[[int], None], silence: tuple = ()):
        jack = jack_module()
        self.client = client
        self._callback = callback
        self._silence = tuple(silence)
        self._exit = jack.CallbackExit
        self._closing = False
        self._ended_tid: int | None = None
        self.active = False
        client.set_process_callback(self._process)

    def activate(self) -> None:
        self.client.activate()
        self.active = True

    def _process(self, frames: int) -> None:
        if self._closing:
            for port in self._silence:
                port.get_array().fill(0.0)
            self._ended_tid = threading.get_native_id()
            raise self._exit
        self._callback(frames)

    def close(self, timeout: float = 2.0) -> None:
        """Deactivate (after ending the process thread, when active) and close; never raises (the server
        may be gone already). Closing twice is harmless."""
        if self.active:
            self.active = False
            self._end_thread(timeout)
        try:
            self.client.deactivate()
            self.client.close()
        except Exception:  # noqa: BLE001, S110 - the server may already be gone
            pass

    def _end_thread(self, timeout: float) -> None:
        self._closing = True
        linux = os.path.isdir("/proc/self/task")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tid = self._ended_tid
            if tid is not None:
                if not linux:                    # no way to see the thread go: give it a moment
                    time.sleep(0.05)
                    break
                if not os.path.exists(f"/proc/self/task/{tid}"):
                    break
            time.sleep(0.002)
        if self._ended_tid is None:
            return
        jack = jack_module()
        lib, ffi, ptr = getattr(jack, "_lib", None), getattr(jack, "_ffi", None), getattr(self.client, "_ptr", None)
        if lib is not None and ffi is not None and ptr is not None:
            lib.jack_set_xrun_callback(ptr, ffi.NULL, ffi.NULL)     # accepted now that the client is inactive


class _Status:
    """What the host's callback reads of a PortAudio status (reset every cycle)."""

    __slots__ = ("input_overflow", "output_underflow")

    def __init__(self):
        self.input_overflow = False
        self.output_underflow = False

    def __bool__(self) -> bool:
        return self.input_overflow or self.output_underflow


@dataclass(frozen=True)
class JackWiring:
    """What the client connects: `follow` (a pattern: the music inputs follow another program's output ports,
    `--input jack:PATTERN`; None: they take system:capture_N), `mic_capture` (0-based system:capture port
    of the mic with `follow`), `connect` (our output pairs to other clients' inputs, `--connect` and config
    routing.connect)."""

    follow: str | None = None
    follow_interval_s: float = 0.2
    mic_capture: int | None = None
    connect: tuple = ()                    # jack_graph.ConnectSpec


class JackStream:
    """A JACK client with named ports driving `callback` like a sounddevice duplex / output / input stream.

    `on_shutdown(reason)` is called (from a JACK thread) when the server goes away mid-run; `gone` holds
    the reason after that."""

    def __init__(self, client_name: str, in_columns: tuple[int, ...], in_total: int, mic_column: int | None,
                 out_names: list[str], callback, wiring: JackWiring = JackWiring(), on_shutdown=None):
        self.client = open_client(client_name)
        self.rate = int(self.client.samplerate)
        self.blocksize = int(self.client.blocksize)
        self.callback = callback
        self.in_total = in_total
        self.wiring = wiring
        self._in_ports = []      # (port, column of indata)
        for c in in_columns:
            self._in_ports.append((self.client.inports.register(f"in_{c + 1}"), c))
        if mic_column is not None:
            self._in_ports.append((self.client.inports.register("mic_in"), mic_column))
        self._out_ports = [self.client.outports.register(n) for n in out_names]
        cap = max(self.blocksize, 8192)
        self._indata = np.zeros((cap, max(1, in_total)), np.float32) if in_total else None
        self._outdata = np.zeros((cap, max(1, len(out_names))), np.float32)
        self._status = _Status()
        self._xruns = 0
        self._seen_xruns = 0
        if wiring.follow is None:
            self._connect_in = {port.name: f"system:capture_{c + 1}" for port, c in self._in_ports}
        else:
            mic = [port for port, c in self._in_ports if c == mic_column]
            self._connect_in = {mic[0].name: f"system:capture_{wiring.mic_capture + 1}"} if mic else {}
        self.follower = None
        if wiring.follow is not None:
            from .jack_graph import SourceFollower
            music = [port.name for port, c in self._in_ports if c != mic_column]
            self.follower = SourceFollower(self.client, wiring.follow, music, wiring.follow_interval_s)
        self._made: list[tuple[str, str]] = []       # (ours, theirs) output connections to undo at exit
        self.notes: list[str] = []                   # config connections that found no ports
        self.gone: str | None = None
        self._on_shutdown = on_shutdown
        self.client.set_shutdown_callback(self._shutdown)
        self._runner = ProcessCallback(self.client, self._process, silence=tuple(self._out_ports))
        self.client.set_xrun_callback(self._xrun)
        # One period in, one out: what PortAudio reports for the same JACK server.
        self.latency = (self.blocksize / self.rate, self.blocksize / self.rate)

    def _xrun(self, delay_usecs) -> None:
        self._xruns += 1

    def _shutdown(self, status, reason) -> None:     # a JACK thread: set flags only
        self.gone = str(reason) or "the server shut down"
        if self._on_shutdown is not None:
            self._on_shutdown(self.gone)

    def _process(self, frames: int) -> None:
        st = self._status
        st.output_underflow = self._xruns != self._seen_xruns
        self._seen_xruns = self._xruns
        outdata = self._outdata[:frames]
        if self._indata is not None:
            indata = self._indata[:frames]
            for port, c in self._in_ports:
                indata[:, c] = port.get_array()
            if self._out_ports:
                self.callback(indata, outdata, frames, None, st)
            else:
                self.callback(indata, frames, None, st)
        else:
            self.callback(outdata, frames, None, st)
        for i, port in enumerate(self._out_ports):
            port.get_array()[:] = outdata[:, i]

    def __enter__(self) -> Self:
        self._runner.activate()
        try:
            self._connect_inputs()
            self._connect_outputs()
        except BaseException:
            self.close()
            raise
        if self.follower is not None:
            self.follower.start()
        return self

    def _connect_inputs(self) -> None:
        physical_in = {p.name for p in self.client.get_ports(is_audio=True, is_output=True, is_physical=True)}
        for ours, theirs in self._connect_in.items():
            if theirs not in physical_in:
                flag = "--mic" if ours.endswith(":mic_in") else "--jack-ports"
                raise UserError(f"{flag}: the JACK server has no {theirs}; expected one of: "
                                f"{', '.join(sorted(physical_in)) or 'none'}")
            self.client.connect(theirs, ours)

    def _connect_outputs(self) -> None:
        from .jack_graph import pair, resolve_targets
        own = self.client.name
        inputs = [p.name for p in self.client.get_ports(is_audio=True, is_input=True)]
        for spec in self.wiring.connect:
            ours = [p.name for p in self._out_ports if p.shortname in (f"{spec.source}_L", f"{spec.source}_R")]
            theirs = resolve_targets(inputs, spec.targets, own)
            if spec.targets and not theirs:
                where = "--connect" if spec.explicit else "config routing.connect"
                msg = (f"{where} {spec.source}={','.join(spec.targets)}: no JACK input ports match; expected "
                       "a running client (see --list-ports)")
                if spec.explicit:
                    raise UserError(msg)
                self.notes.append(msg)
                continue
            for a, b in pair(ours, theirs):
                self.client.connect(a, b)
                self._made.append((a, b))

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop following, undo the output connections we made, end the process thread, close the client."""
        if self.follower is not None:
            self.follower.close()
        if self.gone is None:
            for a, b in self._made:
                try:
                    self.client.disconnect(a, b)
                except Exception:  # noqa: BLE001, S110 - the other client may be gone already
                    pass
        self._made = []
        self._runner.close(timeout=0.5 if self.gone else 2.0)

    @property
    def port_names(self) -> list[str]:
        return [p.name for p in self._out_ports]
