"""Realistic song data engine: composed, sample-rendered, produced multitrack songs for training.

`SongSource(seed, sample_rate, seconds, config).song(index)` -> {"vocals", "drums", "bass", "other"}:
(2, N) float32 stems whose sum is the mixture. See training/render.py for the listening / cache CLI.
"""
from training.songs.settings import SongsConfig
from training.songs.source import STEMS, SongSource

__all__ = ["STEMS", "SongSource", "SongsConfig"]
