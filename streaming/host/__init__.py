"""Audio I/O and the live host: PortAudio / JACK streams and their callback, rings, the head start,
latency modes, endpoints (devices, files, demo), file runs and the run's report."""
