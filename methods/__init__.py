"""One file per method; each registers itself with ``ssl_bench.registry.METHODS``.

Installed as ``ssl_bench.methods`` (see pyproject.toml), so no bare ``methods`` package
reaches users' environments. Every module here is imported when the registry is first
used; a new method is one new file plus, optionally, an ``experiments/*.yaml``.
"""
