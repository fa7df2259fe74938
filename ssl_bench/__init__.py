"""ssl-bench: a self-supervised learning benchmark suite.

The core (this package) names no method: methods live in ``methods/`` (installed as
``ssl_bench.methods``) and register themselves with :mod:`ssl_bench.registry`.
"""

__version__ = "0.1.0"
