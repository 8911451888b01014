"""Models over the customer feature table: risk, anomalies, segments and personas.

This package's `__init__` imports nothing heavy: the settings modules (`*_config.py`) are plain
pydantic and load without scikit-learn, so the command line starts fast and core commands work
without the `models` extra. Each estimator follows scikit-learn's contract (settings in
`__init__`, learned state in attributes ending in `_`, `fit` returns `self`) and saves its
learned state as plain files through `to_files`/`from_files`, never with pickle.
"""
