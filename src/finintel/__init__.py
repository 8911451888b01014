"""finintel: customer and transaction intelligence for banks and fintechs.

Data flows one way: source files -> validation (clean rows + quarantined rows with reasons)
-> one feature row per customer -> models -> results, reports and services.

Example:
    >>> import finintel
    >>> finintel.__version__
    '0.1.0'
"""

__version__ = "0.1.0"
