"""The benchmark suite of sessionstore: every figure beside its floor, measured in one run.

``python -m benchmarks --help`` for the options; RESULTS.md holds the latest full run.
"""
