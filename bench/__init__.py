"""Benchmarks of the embedded store and the blast-radius analysis; see BENCHMARKS.md."""
