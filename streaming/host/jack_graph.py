"""The JACK graph around the host's own client: `--input jack:PATTERN` (follow another program's output
ports), `--connect SOURCE=PORTS` (connect our output ports when the stream opens, undo it at exit) and
`--list-ports`.

Matching: a pattern matches a port when it is a case-insensitive substring of the port's full name
`client:port` (so `mpv`, `Firefox`, `system:capture` or an exact port name all work). Ports of the host's
own client never match.

`SourceFollower` runs beside the stream, off the audio path: a thread that looks at the server's output
ports when one registers or unregisters (woken by JACK's port-registration callback, which only sets an
event) and at least every `interval` seconds, and connects the first matching client's ports to the host's
inputs. When the player goes away, JACK drops the connections and the inputs read silence: the host keeps
running, and the follower counts the gap and connects the player again when its ports come back.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

from core.errors import UserError

from .jack_ports import open_client

GAP_LOG = 16        # how many connect / gap times the stats keep
SETTLE_S = 0.05     # a source's ports are connected once they have been there this long (registered one by one)


@dataclass(frozen=True)
class ConnectSpec:
    """`--connect SOURCE=PORTS` or a config `routing.connect` entry: our SOURCE_L / SOURCE_R ports to these
    JACK input ports (exact names or patterns, matched in the server's order)."""

    source: str
    targets: tuple[str, ...]
    explicit: bool = True              # from the command line (a target that matches nothing is an error)


def parse_connect(spec: str) -> ConnectSpec:
    """`vocals=ardour:in_1,ardour:in_2`, `mix=system:playback`, `mix=none` -> ConnectSpec."""
    source, sep, rest = spec.partition("=")
    targets = tuple(t.strip() for t in rest.split(",") if t.strip())
    if not sep or not source.strip() or not targets:
        raise UserError(f"--connect {spec!r}: expected SOURCE=PORTS, e.g. mix=system:playback or "
                        "vocals=ardour:in_1,ardour:in_2 (a port name or a pattern; 'none' leaves it unconnected)")
    if "none" in targets and len(targets) > 1:
        raise UserError(f"--connect {spec!r}: 'none' leaves the source unconnected; expected it alone")
    return ConnectSpec(source.strip(), () if targets == ("none",) else targets)


def matches(name: str, pattern: str) -> bool:
    return pattern.lower() in name.lower()


def source_ports(names: list[str], pattern: str, own_client: str) -> list[str]:
    """The output ports (server order) of the first client with a port matching `pattern`, that client's
    matching ports only, never our own client's."""
    hits = [n for n in names if matches(n, pattern) and n.partition(":")[0] != own_client]
    if not hits:
        return []
    first = hits[0].partition(":")[0]
    return [n for n in hits if n.partition(":")[0] == first]


def resolve_targets(names: list[str], targets: tuple[str, ...], own_client: str) -> list[str]:
    """Each target: the input port of that exact name, else every input port it matches (server order)."""
    out: list[str] = []
    for t in targets:
        exact = [n for n in names if n == t]
        found = exact or [n for n in names if matches(n, t) and n.partition(":")[0] != own_client]
        out += [n for n in found if n not in out]
    return out


def pair(ours: list[str], theirs: list[str]) -> list[tuple[str, str]]:
    """L/R ports to targets: one target takes both (JACK sums them); otherwise in order, cycling the
    shorter list (a mono source feeds both sides of a stereo target)."""
    if not ours or not theirs:
        return []
    if len(theirs) == 1:
        return [(o, theirs[0]) for o in ours]
    n = max(len(ours), len(theirs))
    return [(ours[i % len(ours)], theirs[i % len(theirs)]) for i in range(n)]


def list_ports(client_name: str) -> str:
    """`--list-ports`: the audio ports of the running JACK server, sources (for --input jack:) and
    destinations (for --connect), grouped by client."""
    client = open_client(f"{client_name}-list", "--list-ports")
    try:
        own = client.name
        lines = []
        for what, kw in (("sources (--input jack:PATTERN)", {"is_output": True}),
                         ("destinations (--connect SOURCE=PORTS)", {"is_input": True})):
            names = [p.name for p in client.get_ports(is_audio=True, **kw) if not p.name.startswith(own + ":")]
            lines.append(f"{what}:")
            if not names:
                lines.append("  none")
            clients: dict[str, list[str]] = {}
            for n in names:
                clients.setdefault(n.partition(":")[0], []).append(n.partition(":")[2])
            for c, ports in clients.items():
                lines.append(f"  {c}: {', '.join(ports)}")
        return "\n".join(lines)
    finally:
        client.close()


def wait_for_source(client_name: str, pattern: str, wait_s: float) -> list[str]:
    """`--wait S`: before the stream opens, wait up to S seconds for output ports matching `pattern`
    (0: look once) -> their names; none by then is a one-line error."""
    client = open_client(f"{client_name}-wait", f"--input jack:{pattern}")
    try:
        deadline = time.monotonic() + wait_s
        said = False
        while True:
            found = source_ports([p.name for p in client.get_ports(is_audio=True, is_output=True)], pattern,
                                 client_name)
            if found or time.monotonic() >= deadline:
                break
            if not said:
                print(f"streaming: waiting up to {wait_s:g} s for ports matching {pattern!r}", flush=True,
                      file=sys.stderr)
                said = True
            time.sleep(0.1)
    finally:
        client.close()
    if not found:
        within = "now" if wait_s == 0 else f"within {wait_s:g} s"
        raise UserError(f"--input jack:{pattern}: no JACK output ports match {pattern!r} {within}; expected a "
                        "running player (see --list-ports), or a longer --wait")
    return found


class SourceFollower:
    """Keeps `inputs` (our input port names, L then R) connected to the output ports matching `pattern`.

    Runs in its own thread; `start()` after the client is active, `close()` before it closes. `describe()`
    is what the stats and the status line show. Nothing here runs in the process callback."""

    def __init__(self, client, pattern: str, inputs: list[str], interval: float = 0.2):
        self.client = client
        self.pattern = pattern
        self.inputs = list(inputs)
        self.interval = float(interval)
        self.own = client.name
        self.connected: list[str] = []     # the source ports we are connected to now
        self.connects = 0                  # how many times a source was connected
        self.gaps = 0                      # how many times a connected source went away
        self.gap_s = 0.0                   # seconds without a source, after the first connect
        self.first_connect_s: float | None = None
        self.connect_delays_s: list[float] = []   # ports seen -> connected, per connect
        self.connect_times_s: list[float] = []    # when (since start()), per connect
        self.gap_times_s: list[float] = []        # when each gap began
        self._t0 = time.monotonic()
        self._lost_at: float | None = None
        self._seen_at: float | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jack-source-follower", daemon=True)
        client.set_port_registration_callback(self._registered, only_available=False)

    def _registered(self, port, register: bool) -> None:   # a JACK notification thread: only wake the follower
        self._wake.set()

    def start(self) -> None:
        self._t0 = time.monotonic()
        self.scan()
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(2.0)

    @property
    def waiting(self) -> bool:
        return not self.connected

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(SETTLE_S if self._seen_at is not None else self.interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.scan()
            except Exception:  # noqa: BLE001 - the server may be going away; the stream's shutdown says so
                time.sleep(self.interval)

    def scan(self) -> None:
        """Look at the graph once: connect a source that appeared (once its ports have settled: a player
        registers them one by one), follow a change of its ports, count one that went away."""
        now = time.monotonic()
        found = source_ports([p.name for p in self.client.get_ports(is_audio=True, is_output=True)],
                             self.pattern, self.own)[:2]
        if not found:
            if self.connected:                                   # the player went away
                self.connected = []
                self.gaps += 1
                self._lost_at = now
                if len(self.gap_times_s) < GAP_LOG:
                    self.gap_times_s.append(round(now - self._t0, 3))
            self._seen_at = None
            return
        if found == self.connected:
            return
        if not self.connected:
            if self._seen_at is None:
                self._seen_at = now
            if now - self._seen_at < SETTLE_S:
                return                                           # looked at again in SETTLE_S
        old, new = set(pair(self.connected, self.inputs)), pair(found, self.inputs)   # a mono source feeds both
        for a, b in old - set(new):
            try:
                self.client.disconnect(a, b)
            except Exception:  # noqa: BLE001, S110 - that port is gone already
                pass
        for a, b in new:
            if (a, b) not in old:
                try:
                    self.client.connect(a, b)
                except Exception:  # noqa: BLE001, S110 - already connected, or the port went away again
                    pass
        first = not self.connected
        self.connected = found
        if not first:
            return                                               # the same source, other ports
        done = time.monotonic()
        self.connects += 1
        if self.first_connect_s is None:
            self.first_connect_s = round(done - self._t0, 3)
        if self._lost_at is not None:
            self.gap_s += done - self._lost_at
            self._lost_at = None
        if len(self.connect_times_s) < GAP_LOG:
            self.connect_times_s.append(round(done - self._t0, 3))
            self.connect_delays_s.append(round(done - self._seen_at, 4))
        self._seen_at = None

    def describe(self) -> dict:
        gap = self.gap_s + (time.monotonic() - self._lost_at if self._lost_at is not None else 0.0)
        return {"pattern": self.pattern, "connected": list(self.connected), "waiting": self.waiting,
                "connects": self.connects, "gaps": self.gaps, "gap_s": round(gap, 3),
                "first_connect_s": self.first_connect_s, "connect_times_s": list(self.connect_times_s),
                "connect_delays_s": list(self.connect_delays_s), "gap_times_s": list(self.gap_times_s)}
