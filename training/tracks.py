"""What every training data source is: `Source` (tracks of base stems, read as (stems, 2, n) float32), its
error (`DataError`) and the two array helpers the sources share. Below `training.data` and the sources
it builds (`training.real_vocals`, `training.songs`), so that none of them imports another's privates."""
from __future__ import annotations

import numpy as np

from core.errors import UserError


class DataError(UserError):
    """A dataset path, layout or stem selection is unusable."""


def to_stereo(x: np.ndarray) -> np.ndarray:
    """(ch, n) -> (2, n): mono is duplicated, extra channels dropped."""
    if x.shape[0] == 1:
        return np.concatenate([x, x])
    return x[:2]


def fit(x: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad the last axis to n samples."""
    if x.shape[-1] >= n:
        return x[..., :n]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])])


class Source:
    """Tracks of base stems. `read(i, stems, start, n)` -> (len(stems), 2, n) float32 at `sample_rate`."""

    name: str = "source"
    stems: tuple[str, ...] = ()
    sample_rate: int = 44100

    def __len__(self) -> int:
        raise NotImplementedError

    def track_name(self, i: int) -> str:
        return f"{self.name}#{i}"

    def track_length(self, i: int) -> int:
        raise NotImplementedError

    def read(self, i: int, stems: list[str], start: int, n: int) -> np.ndarray:
        raise NotImplementedError
