"""Device negotiation: a RunPlan's device endpoints -> the format the live host runs at.

`negotiate(plan, source)` looks the devices up (PortAudio), asks a JACK server for its rate and period
(`--jack-ports`, or PortAudio's JACK host API), picks the input columns (the music and the mic) and says
what the run cannot honour: an explicit `--samplerate` or `--blocksize` that the JACK server does not
run at, a file whose rate differs from the device's, channels the device lacks. It opens no stream.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

from core.errors import UserError

from .sources import find_device


@dataclass(frozen=True)
class DeviceFormat:
    """What a live run opens: rate, block, devices and input columns."""

    rate: int
    blocksize: int                  # frames per callback as the host counts them (0: the device chooses)
    pa_blocksize: int               # frames per buffer asked of PortAudio (0 on its JACK host API)
    in_device: int | None           # sounddevice indices (None: a file on that side)
    out_device: int | None
    in_name: str
    out_name: str
    in_cols: tuple[int, ...] = ()   # 0-based device columns of the music input
    dev_in_channels: int = 0        # channels opened on the input device (music and mic)
    mic_channel: int | None = None  # 0-based device column of the mic
    max_out: int | None = None      # the output device's channel count (None: a file, or --jack-ports)
    in_live: bool = False           # the input is live (a device, or the JACK client's capture ports)
    out_live: bool = False          # the output is live (a device, or the JACK client's ports)
    jack_client: str | None = None  # --jack-ports / --input jack:: a JACK client of our own, not a PortAudio stream
    jack_wiring: object = None      # jack_ports.JackWiring of that client (what it follows and connects)


def _sd():
    import sounddevice as sd
    return sd


def _jack_period(device: int) -> int | None:
    """The JACK server's period when the PortAudio device is on the JACK host API, else None."""
    sd = _sd()
    try:
        api = sd.query_hostapis(sd.query_devices(device)["hostapi"])["name"]
    except Exception:  # noqa: BLE001 - no such device: the stream's settings check reports it
        return None
    if not api.startswith("JACK"):
        return None
    from .jack_ports import server_format
    try:
        return server_format("tfswa-live")[1]
    except UserError:
        return None


def _input_columns(plan, max_in: int) -> tuple[tuple[int, ...], int, int | None]:
    """(music columns, channels to open, mic column) of an input with `max_in` channels."""
    mic = plan.mic.channel if plan.mic is not None else None
    chans = plan.in_channels or tuple(range(min(2, max_in)))
    if mic is not None and mic in chans and not plan.in_channels:
        chans = tuple(c for c in range(max_in) if c != mic)[:2]
    if not chans or max(chans) >= max_in or min(chans) < 0 or len(chans) > 2:
        raise UserError(f"--channels: expected 1 or 2 input channels between 1 and {max_in}, "
                        f"got {','.join(str(c + 1) for c in chans) or 'none'}")
    if mic is not None:
        if not 0 <= mic < max_in:
            raise UserError(f"--mic: expected an input channel between 1 and {max_in} of this device, got {mic + 1}")
        if mic in chans:
            raise UserError(f"--mic {mic + 1}: that channel is also a music input (--channels); "
                            "expected a separate channel for the microphone")
    return chans, max((*chans, *(() if mic is None else (mic,)))) + 1, mic


def _jack_client_format(plan) -> DeviceFormat:
    """--jack-ports / --input jack:PATTERN: the server's rate and period; the inputs are its physical capture
    ports, or two ports that follow PATTERN's output ports (and the mic on a capture port)."""
    from .jack_ports import JackWiring, server_info
    host, given = plan.settings.host, plan.settings.host_flags
    rate, period, captures = server_info(plan.jack_client)
    if host.samplerate and host.samplerate != rate:
        where = "--samplerate" if "samplerate" in given else "config host.samplerate"
        raise UserError(f"{where} {host.samplerate}: the JACK server runs at {rate} Hz; "
                        f"expected that rate (or leave {where} out)")
    _check_period(plan, period)
    follow = plan.input.kind == "jack"
    wiring = JackWiring(connect=plan.connect, follow_interval_s=plan.settings.routing.follow_interval_s)
    live_in = plan.input.kind == "device" or follow
    in_name = f"JACK {plan.jack_client}" if live_in else ""
    if follow:
        mic = 2 if plan.mic is not None else None
        if plan.mic is not None and plan.mic.channel >= captures:
            raise UserError(f"--mic {plan.mic.channel + 1}: the JACK server has {captures} capture ports; expected "
                            f"a channel between 1 and {captures}")
        in_cols, dev_in = (0, 1), 2 + (mic is not None)
        wiring = dataclasses.replace(wiring, follow=plan.input.spec,
                                     mic_capture=plan.mic.channel if plan.mic is not None else None)
        in_name = plan.input.name
    else:
        in_cols, dev_in, mic = _input_columns(plan, captures) if live_in else ((), 0, None)
    out_live = plan.output.kind == "device"
    return DeviceFormat(rate=rate, blocksize=period, pa_blocksize=period, in_device=None, out_device=None,
                        in_name=in_name, out_name=f"JACK {plan.jack_client}" if out_live else str(plan.output.path),
                        in_cols=in_cols, dev_in_channels=dev_in, mic_channel=mic, jack_client=plan.jack_client,
                        jack_wiring=wiring, in_live=live_in, out_live=out_live)


def _check_period(plan, period: int) -> None:
    """A JACK server's period decides the block: an explicit other --blocksize is refused."""
    host = plan.settings.host
    if period == host.blocksize:
        return
    if "blocksize" in plan.settings.host_flags:
        raise UserError(f"--blocksize {host.blocksize}: the JACK server runs {period}-frame periods; "
                        "expected that block size (or leave --blocksize out and set the period on the server)")
    if plan.settings.mode is not None:
        print(f"streaming: note: the JACK server runs {period}-frame periods, not the latency mode's "
              f"{host.blocksize}", file=sys.stderr)


def negotiate(plan, source=None) -> DeviceFormat:
    """plan (a live RunPlan), the file source of a file -> device run -> DeviceFormat."""
    if plan.jack_client:
        fmt = _jack_client_format(plan)
    else:
        fmt = _portaudio_format(plan)
    if source is not None:
        if source.rate != fmt.rate:
            raise UserError(f"the input file runs at {source.rate} Hz but the output device at {fmt.rate} Hz; "
                            "expected equal rates (pass --samplerate or convert the file)")
        fmt = dataclasses.replace(fmt, in_name=source.name)
    return fmt


def _portaudio_format(plan) -> DeviceFormat:
    host = plan.settings.host
    inp = find_device(plan.input, "input") if plan.input.kind == "device" else None
    out = find_device(plan.output, "output") if plan.output.kind == "device" else None
    sd = _sd()
    any_dev = (inp or out).device
    rate = int(host.samplerate or sd.query_devices(any_dev)["default_samplerate"])
    blocksize, pa_blocksize = int(host.blocksize), int(host.blocksize)
    period = _jack_period(any_dev)
    if period is not None:
        # PortAudio's JACK host API with a fixed frames-per-buffer delays the output by one more block of its
        # own (measured with tools.roundtrip); unspecified (0) hands JACK's period straight to the callback.
        _check_period(plan, period)
        blocksize, pa_blocksize = period, 0
    in_cols, dev_in, mic = ((), 0, None)
    if inp is not None:
        in_cols, dev_in, mic = _input_columns(plan, int(sd.query_devices(inp.device)["max_input_channels"]))
    max_out = int(sd.query_devices(out.device)["max_output_channels"]) if out is not None else None
    return DeviceFormat(rate=rate, blocksize=blocksize, pa_blocksize=pa_blocksize,
                        in_device=None if inp is None else inp.device, out_device=None if out is None else out.device,
                        in_name=inp.name if inp is not None else "",
                        out_name=out.name if out is not None else str(plan.output.path),
                        in_cols=in_cols, dev_in_channels=dev_in, mic_channel=mic, max_out=max_out,
                        in_live=inp is not None, out_live=out is not None)
