"""Name -> factory lookups for methods, backbones and datasets.

Each entry is registered by a decorator next to its definition (timm style), carries a
one-line description for ``ssl-bench list``, and a lookup of an unknown name fails with
the valid choices. Registries are plain objects created once at import; they hold only
factories, never run state, so several runs (or ranks) in one process stay independent.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ssl_bench.errors import unknown

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    factory: T
    description: str
    extra: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """A named collection of factories; ``get`` fails loudly on unknown names."""

    def __init__(self, kind: str, loader: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._loader = loader  # imports the modules that register entries, once

    def register(self, name: str, description: str, **extra: Any) -> Callable[[T], T]:
        def decorator(factory: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = Entry(name, factory, description, extra)
            return factory

        return decorator

    def _load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            loader()

    def get(self, name: str) -> Entry[T]:
        self._load()
        if name not in self._entries:
            raise unknown(self.kind, name, self._entries)
        return self._entries[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]


def _import_package(name: str) -> Callable[[], None]:
    """Import every module of package ``name`` so each entry in it registers itself."""

    def load() -> None:
        pkg = importlib.import_module(name)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{name}.{info.name}")

    return load


def _import_core(module: str) -> Callable[[], None]:
    return lambda: importlib.import_module(module) and None


METHODS: Registry[Any] = Registry("method", _import_package("ssl_bench.methods"))
# Evaluators (ssl_bench/evaluators/): run(ctx) -> dict, with needs/order/headline/...
EVALUATORS: Registry[Any] = Registry("evaluator", _import_package("ssl_bench.evaluators"))
# Report sections (ssl_bench/report/kinds/): render(df, stem, spec) -> markdown
REPORTS: Registry[Any] = Registry("report kind", _import_package("ssl_bench.report.kinds"))
BACKBONES: Registry[Any] = Registry("backbone", _import_core("ssl_bench.backbones"))
DATASETS: Registry[Any] = Registry("dataset", _import_core("ssl_bench.data.datasets"))
