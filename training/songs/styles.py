"""The song engine's styles: the modes (scales) and the drum grooves a song may be drawn in. Shared by the
composer (`compose`) and the settings that name them (`settings`), below both."""
from __future__ import annotations

MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}

# 16-step drum grooves: kick, snare, hat (x = hit, o = open hat, g = ghost note).
GROOVES: dict[str, dict[str, str]] = {
    "rock": {"kick": "x.......x.x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
    "pop": {"kick": "x.....x.x.......", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.xo"},
    "disco": {"kick": "x...x...x...x...", "snare": "....x.......x...", "hat": "x.o.x.o.x.o.x.o."},
    "funk": {"kick": "x..x..x...x..x..", "snare": "..g.x..g.g..x..g", "hat": "xxxxxxxxxxxxxxxx"},
    "halftime": {"kick": "x.........x.....", "snare": "........x.......", "hat": "x.x.x.x.x.x.x.x."},
    "hiphop": {"kick": "x.....x...x..x..", "snare": "....x.......x...", "hat": "x.x.x.x.x.xxx.x."},
    "ballad": {"kick": "x.......x.......", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
    "shuffle": {"kick": "x.....x.x.......", "snare": "....x.......x...", "hat": "x.xxx.xxx.xxx.xx"},
    "reggae": {"kick": "........x.......", "snare": "........x.......", "hat": "x.x.x.x.x.x.x.x."},
    "punk": {"kick": "x.x.x.x.x.x.x.x.", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
}
