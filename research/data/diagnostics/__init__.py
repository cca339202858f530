"""Generators for diagnostic seq2seq datasets: algorithmic tasks and SCAN, as (source, target) string pairs."""
