"""The engine: `StreamingSeparator` (one STFT hop at a time, explicit state, no I/O), its compiled step
(`compiled`), the CPU thread policy (`cpu`) and the offline chunked apply (`chunked`)."""
