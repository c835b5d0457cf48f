#!/usr/bin/env bash
# Set up everything this project needs on a fresh Debian machine with Python 3.11:
# system packages (when missing), a virtual environment in .venv, the CPU build of PyTorch and the
# project with its dependencies. Safe to run again: it only does what is not done yet.
set -euo pipefail
cd "$(dirname "$0")"

SYSTEM_PACKAGES=(g++ python3-dev libportaudio2 libsndfile1 ffmpeg jackd2 libjack-jackd2-0 pipewire-bin pipewire-jack fluidsynth libfluidsynth3 fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont)

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing system packages: ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PY --version)" >&2
    "$PY" -m venv .venv
fi

# Reinstall Python packages only when pyproject.toml changed since the last successful setup.
stamp=.venv/.setup-stamp
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing Python packages into .venv" >&2
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    # torch first, pinned: the local CPU wheel, so nothing pulls the multi-GB CUDA build.
    .venv/bin/python -m pip install -q torch==2.13.0
    .venv/bin/python -m pip install -q -e ".[export,dev]"
    # Peer architectures for `python -m tools.bench` (speed only). They declare torchaudio, which has no
    # build for this torch, so they go in without their declared dependencies; the bench says so.
    .venv/bin/python -m pip install -q --no-deps openunmix demucs
    .venv/bin/python -m pip install -q julius einops
    echo "$want" > "$stamp"
fi

# Real band accompaniment for `--data real-vocals`: the Frets-on-Fire song packs, fetched with `apt-get download`
# into a cache outside the repository (real_vocals.fretsonfire_dir). Optional: without it that source is not used.
if ! fetch_err=$(.venv/bin/python -m training.fetch_accompaniment 2>&1 >/dev/null); then
    echo "setup: warning: Frets-on-Fire songs not fetched (${fetch_err##*$'\n'}); real-vocals trains without them" >&2
fi
