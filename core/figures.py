"""Figure helpers for every package's pictures: a display-free matplotlib figure and an atomic PNG writer."""
from __future__ import annotations

from pathlib import Path

from .errors import UserError


def figure(width: float, height: float):
    """A matplotlib Figure (no display, no pyplot state) of `width` x `height` inches."""
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def save_png(fig, path: str | Path) -> Path:
    """Write the figure as a PNG atomically: a temp file beside the target, renamed when complete."""
    from .files import atomic_output
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"--plot: folder does not exist: {path.parent}")
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
