"""Drift between a model's reference data and new data: exact statistics (stats.py), per-column verdicts
(compare.py), and the command line (`python -m mlops.drift`, cli.py)."""
