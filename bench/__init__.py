"""Benchmarks (`make bench`): each module's main() prints figures as ratios against a same-run baseline."""
