"""Benchmarks: ``python -m bench`` runs them all and prints one JSON summary."""
