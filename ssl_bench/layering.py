"""How a run's config is built: values are layered, dataclass defaults < the dataset's
recipe < the method's registered recipe < a YAML file < CLI flags < ``--set
section.key=value``. Every layer is type-checked against the dataclass fields of
:mod:`ssl_bench.config` and an unknown key is rejected with the closest valid key
suggested.
"""

from __future__ import annotations

import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from ssl_bench.config import SECTIONS, Config, MethodConfig
from ssl_bench.errors import UserError, suggest


def _coerce(path: str, annotation: Any, value: Any) -> Any:
    """Check ``value`` against a field's type; ints are accepted for floats."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(path, inner[0], value)
    if origin is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[float, ...]: any length
            if not isinstance(value, list | tuple):
                value = [value]
            return tuple(_coerce(f"{path}[{i}]", args[0], v) for i, v in enumerate(value))
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise UserError(f"{path} expects a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(f"{path}[{i}]", a, v) for i, (a, v) in enumerate(zip(args, value)))
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif annotation is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"unsupported config type {annotation} at {path}")
    name = getattr(annotation, "__name__", str(annotation))
    raise UserError(f"{path} expects {name}, got {value!r}")


def parse_value(text: str, annotation: Any) -> Any:
    """Turn the text of ``--set key=value`` into a value for a field of ``annotation``."""
    if annotation is str:
        return text
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and str in typing.get_args(
        annotation
    ):
        return None if text.lower() in ("null", "none", "~") else text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def field_types(section: Any) -> dict[str, Any]:
    """``{field name: resolved type}`` of a config dataclass (instance or class)."""
    cls = section if isinstance(section, type) else type(section)
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def merge(cfg: Config, updates: dict[str, Any], origin: str) -> None:
    """Apply ``{section: {key: value}}`` to ``cfg`` in place, type-checked.

    ``origin`` names where the values came from, for error messages.
    """
    if not isinstance(updates, dict):
        raise UserError(f"{origin}: expected a mapping of sections, got {type(updates).__name__}")
    for section, values in updates.items():
        if section not in SECTIONS:
            raise UserError(
                f"{origin}: unknown config section '{section}'{suggest(section, SECTIONS)}; "
                f"valid sections: {', '.join(SECTIONS)}"
            )
        if not isinstance(values, dict):
            raise UserError(f"{origin}: section '{section}' must be a mapping")
        target = getattr(cfg, section)
        types_ = field_types(target)
        for key, value in values.items():
            if key not in types_:
                raise UserError(
                    f"{origin}: unknown key '{section}.{key}'"
                    f"{suggest(key, types_)}; valid keys: {', '.join(types_)}"
                )
            if section == "method" and key == "name" and value != cfg.method.name:
                raise UserError(
                    f"{origin}: method.name is '{value}' but the method being run is "
                    f"'{cfg.method.name}'"
                )
            setattr(target, key, _coerce(f"{section}.{key}", types_[key], value))


def parse_set(items: list[str]) -> dict[str, dict[str, str]]:
    """``["optim.lr=0.1", ...]`` -> ``{"optim": {"lr": "0.1"}}`` (values still text)."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise UserError(f"--set expects section.key=value, got '{item}'")
        out.setdefault(section, {})[name] = value
    return out


def typed_set(cfg: Config, items: list[str]) -> dict[str, dict[str, Any]]:
    """Parse ``--set`` items, reading each value as the type of its field."""
    raw = parse_set(items)
    typed: dict[str, dict[str, Any]] = {}
    for section, values in raw.items():
        types_ = field_types(getattr(cfg, section)) if section in SECTIONS else {}
        typed[section] = {k: parse_value(v, types_.get(k, Any)) for k, v in values.items()}
    return typed


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a config file must not."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file; a missing or malformed file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as err:
        raise UserError(
            f"config file {path} is not valid YAML: {str(err).splitlines()[0]}"
        ) from None
    return data or {}


def build_config(
    method: str,
    method_cls: type[MethodConfig],
    recipes: list[tuple[str, dict[str, Any]]] | None = None,
    file_values: dict[str, Any] | None = None,
    flag_values: dict[str, Any] | None = None,
    set_items: list[str] | None = None,
) -> Config:
    """Resolve a config from its layers (see module docstring) and validate it.

    ``recipes`` are ``(origin, values)`` pairs applied in order before the file.
    """
    cfg = Config(method=method_cls(name=method))
    layers = [*(recipes or []), ("config file", file_values), ("command line", flag_values)]
    for origin, values in layers:
        if values:
            merge(cfg, values, origin)
    if set_items:
        merge(cfg, typed_set(cfg, set_items), "--set")
    cfg.validate()
    return cfg


def explicit_keys(
    file_values: dict[str, Any] | None, flag_values: dict[str, Any] | None, set_items: list[str]
) -> set[str]:
    """The dotted keys a user gave (config file, flags, --set), not defaults or recipes."""
    keys = {item.split("=", 1)[0].strip() for item in set_items}
    for values in (file_values, flag_values):
        for section, entries in (values or {}).items():
            if isinstance(entries, dict):
                keys |= {f"{section}.{k}" for k, v in entries.items() if v is not None}
    return keys


def resolve(
    method: str,
    file_values: dict[str, Any] | None = None,
    flag_values: dict[str, Any] | None = None,
    set_items: list[str] | None = None,
    saved: bool = False,
) -> Config:
    """The full config of a run: defaults < dataset recipe < method recipe < file < flags < --set.

    The dataset's recipe (for example stronger colour jitter on `shapes`) is looked up
    once the dataset name is known from the other layers. ``saved``: ``file_values`` is
    a run's own saved config (every key present), so no key counts as the user's.
    """
    from ssl_bench.registry import DATASETS, METHODS

    entry = METHODS.get(method)
    method_cls = entry.extra.get("config", MethodConfig)
    given = explicit_keys(None if saved else file_values, flag_values, set_items or [])
    for key, owner in method_cls.VIEW_KEYS_OWNED.items():
        if key in given:
            raise UserError(
                f"{key} has no effect for {method}: its views take their crop scales from "
                f"{owner}; set those instead"
            )
    method_recipe = (f"recipe of method '{method}'", entry.extra.get("recipe", {}))
    layers = {"file_values": file_values, "flag_values": flag_values, "set_items": set_items}
    first = build_config(method, method_cls, [method_recipe], **layers)
    data_recipe = DATASETS.get(first.data.name).extra.get("recipe", {})
    if not data_recipe:
        return first
    recipes = [(f"recipe of dataset '{first.data.name}'", data_recipe), method_recipe]
    return build_config(method, method_cls, recipes, **layers)


def diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    keys = sorted(set(a) | set(b))
    out: list[str] = []
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out
