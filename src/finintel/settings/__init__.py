"""Model settings: what the `[risk]`, `[anomaly]` and `[segments]` tables of a TOML config hold.

Plain pydantic with no scikit-learn, so a config validates without the `models` extra, and
`finintel.config` reads them without importing any model.

Example:
    >>> from finintel.settings.risk import RiskSettings
    >>> [b.name for b in RiskSettings().bands]
    ['Low', 'Medium', 'High', 'Critical']
"""
