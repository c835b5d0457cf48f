"""File -> file as fast as possible through the same chain (engine + mixer) as the live host.

The output has the input's rate and length and is aligned with it (the engine latency is dropped).
Written to a temporary beside it and renamed at the end (core.files). `--duration` ends the run early
with a complete (shorter) file; an error or a stop signal (Ctrl-C, SIGTERM, SIGHUP) leaves the output
name as it was (no half file, no temporary).
"""
from __future__ import annotations

import time

from ..processing.remix_chain import AlignedWriter
from .config import HostConfig
from .report import RunStats
from .sources import FileSink


def run_file_to_file(source, out_path, pieces, cfg: HostConfig, duration: float | None = None) -> RunStats:
    """source: FileSource / ArraySource (N, C) at its own rate -> out_path (N', K), N' = N or the frames
    read before `duration` / Ctrl-C; K = 2, or the routed channels (one multichannel file).
    pieces: build.Pieces built at the source's rate; its controls' queued requests (MIDI) apply between blocks."""
    chain, controls, engine = pieces.chain, pieces.controls, pieces.chain.engine
    stats = RunStats(mode="file->file", io_sample_rate=source.rate, model_sample_rate=engine.sample_rate,
                     blocksize=cfg.file_block, algorithmic_latency_ms=engine.latency_ms,
                     chain_latency_ms=chain.fx_latency_ms)
    limit = source.frames if duration is None else min(source.frames, round(duration * source.rate))
    sink = FileSink(out_path, source.rate, chain.out_channels)
    writer = AlignedWriter(sink, chain.latency_frames)
    t0 = time.perf_counter()
    read = 0
    try:
        while read < limit:
            block = source.read(min(cfg.file_block, limit - read))
            if block.shape[0] == 0:
                break
            read += block.shape[0]
            if controls is not None:
                controls.apply_pending()
            writer.write(chain.process(block))
        writer.total = read
        writer.write(chain.flush())
        writer.finish(chain.out_channels)
        sink.commit()
    except KeyboardInterrupt as e:
        sink.discard()
        e.note = f" after {read / source.rate:.1f} s of {limit / source.rate:.1f} s; {out_path} not written"
        raise
    except BaseException:
        sink.discard()
        raise
    finally:
        source.close()
    stats.seconds = read / source.rate
    stats.wall_seconds = time.perf_counter() - t0
    stats.nonfinite_samples = chain.nonfinite_samples
    stats.worker_load = stats.wall_seconds / stats.seconds if stats.seconds else 0.0
    stats.extra["output_frames"] = writer.written
    return stats
