"""`tools.separate --plot`: spectrogram overviews built block by block in bounded memory.

`SpectrogramSketch` takes (n, C) blocks, frames the channel mean with a Hann window (n_fft, hop) and
keeps at most `max_columns` magnitude columns: when they would overflow, neighbouring columns are
averaged in pairs and later frames are pooled twice as wide, so an hour costs what a minute does.
`plot_separation` draws the mixture, and per stem its ratio mask |stem| / |mixture| and its spectrogram.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.files import atomic_output


class SpectrogramSketch:
    """feed((n, C) blocks) -> `columns()` (F, T) pooled STFT magnitudes, T <= max_columns."""

    def __init__(self, n_fft: int, hop: int, max_columns: int = 2048):
        self.n_fft, self.hop, self.max_columns = n_fft, hop, max_columns
        self.window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
        self._tail = np.zeros(0, np.float32)
        self._cols: list[np.ndarray] = []
        self._pool = 1                         # frames per column
        self._acc: np.ndarray | None = None    # sum of the frames of the column being filled
        self._acc_n = 0
        self.samples = 0

    def write(self, block: np.ndarray) -> None:
        x = np.concatenate([self._tail, np.asarray(block, np.float32).mean(1)])
        self.samples += block.shape[0]
        n_frames = 0 if x.shape[0] < self.n_fft else 1 + (x.shape[0] - self.n_fft) // self.hop
        if n_frames:
            idx = np.arange(self.n_fft)[None] + self.hop * np.arange(n_frames)[:, None]
            mags = np.abs(np.fft.rfft(x[idx] * self.window, axis=1)).astype(np.float32)   # (frames, F)
            for m in mags:
                self._acc = m if self._acc is None else self._acc + m
                self._acc_n += 1
                if self._acc_n == self._pool:
                    self._push(self._acc / self._pool)
        self._tail = x[n_frames * self.hop:]

    def _push(self, col: np.ndarray) -> None:
        self._cols.append(col)
        self._acc, self._acc_n = None, 0
        if len(self._cols) >= self.max_columns:
            self._cols = [(a + b) / 2 for a, b in zip(self._cols[0::2], self._cols[1::2])]
            self._pool *= 2

    def columns(self) -> np.ndarray:
        cols = self._cols + ([self._acc / self._acc_n] if self._acc_n else [])
        return np.stack(cols, 1) if cols else np.zeros((self.n_fft // 2 + 1, 1), np.float32)


class Tee:
    """One writer in, several out (a stem to its file sink and to its sketch)."""

    def __init__(self, *sinks):
        self.sinks = sinks

    def write(self, block: np.ndarray) -> None:
        for s in self.sinks:
            s.write(block)


def plot_separation(path: Path, mixture: SpectrogramSketch, stems: dict[str, SpectrogramSketch], rate: int) -> None:
    """PNG at `path` (written through core.files): mixture spectrogram, then per stem its ratio mask
    |stem| / |mixture| and its spectrogram."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mix = mixture.columns()
    extent = (0, mixture.samples / rate, 0, rate / 2000)
    fig, axes = plt.subplots(1 + len(stems), 2, figsize=(12, 2.6 * (1 + len(stems))), squeeze=False)

    def db(m: np.ndarray) -> np.ndarray:
        return 20 * np.log10(m + 1e-6)

    axes[0, 0].imshow(db(mix), origin="lower", aspect="auto", extent=extent, vmin=-80, vmax=20, cmap="magma")
    axes[0, 0].set_title("mixture (dB)")
    axes[0, 1].axis("off")
    for i, (name, sketch) in enumerate(stems.items(), 1):
        s = sketch.columns()
        t = min(s.shape[1], mix.shape[1])
        axes[i, 0].imshow(np.clip(s[:, :t] / (mix[:, :t] + 1e-8), 0, 1), origin="lower", aspect="auto",
                          extent=extent, vmin=0, vmax=1, cmap="viridis")
        axes[i, 0].set_title(f"{name}: mask |stem| / |mixture|")
        axes[i, 1].imshow(db(s), origin="lower", aspect="auto", extent=extent, vmin=-80, vmax=20, cmap="magma")
        axes[i, 1].set_title(f"{name} (dB)")
    for ax in axes.flat:
        ax.set_xlabel("s")
        ax.set_ylabel("kHz")
    fig.tight_layout()
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=80, format="png")
    finally:
        plt.close(fig)
