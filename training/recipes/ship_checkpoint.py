"""Turn a training run's checkpoint into the shipped default checkpoint.

    python -m training.recipes.ship_checkpoint runs/default/best.ckpt model/weights/streaming_default.ckpt

Keeps the weights, config and the run's metadata, drops optimiser / scheduler / RNG state (not needed
to separate, and it triples the file), and records what the model was trained on, in words.
"""
from __future__ import annotations

import argparse
import sys

import core
import model
from model.checkpoint import atomic_torch_save, read_checkpoint

TRAINING_DATA = (
    "Synthetic multitrack songs only: 143 songs x 20 s rendered by `python -m training.render --n 320 "
    "--seconds 20 --seed 1000` (render stopped after 143 to free the CPU), procedurally composed, General "
    "MIDI instruments through FluidSynth (FluidR3, MuseScore_General, TimGM6mb), a formant singing "
    "synthesiser for vocals, per-stem production and a linked bus limiter; stems remixed across songs. "
    "No MUSDB18, no ../shared/data, no stempeg preview in training (those are for measuring).")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.recipes.ship_checkpoint", description=__doc__)
    p.add_argument("run_checkpoint")
    p.add_argument("out")
    p.add_argument("--recipe", default="training/recipes/default_checkpoint.yaml")
    args = p.parse_args(argv)
    try:
        ckpt = read_checkpoint(args.run_checkpoint)
        sep = model.checkpoint.separator_from_dict(ckpt, where=args.run_checkpoint)
    except core.UserError as e:
        print(f"ship_checkpoint: error: {e}", file=sys.stderr)
        return 2
    meta = dict(ckpt.get("metadata") or {})
    meta.update(training_data=TRAINING_DATA, recipe=args.recipe, source_checkpoint=str(args.run_checkpoint))
    atomic_torch_save(model.checkpoint.checkpoint_dict(sep, **meta), args.out)
    print(f"wrote {args.out}: {sep.num_parameters()} parameters, step {meta.get('steps')}, stems {', '.join(sep.stems)}")
    return 0


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
