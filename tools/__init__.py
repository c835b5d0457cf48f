"""Offline tools: separation of files, BSS Eval evaluation, benchmarks, export."""
