"""The kinds of report section, one module each, next to the sweep kind it reads.

A module registers its section on ``REPORTS``:

    @REPORTS.register("collapse", "Q5-6: collapse variants: ...", paper=paper.COLLAPSE)
    def render(df: pd.DataFrame, stem: Path, spec: ReportSpec) -> str: ...

declaring what its reading may need from the sweep file (each optional):

- ``reference``: a sentence saying what the reference arm is (the arm the others are
  compared with); the section cannot read without one when ``reference_required``;
- ``paper``: the paper rows an arm may stand for (the keys of a table in `paper.py`);
- ``components``: the components an arm may remove, each with the question it answers.

The sweep file names its kind and declares the roles of its arms under ``report:``,
checked by :func:`parse` when the file is read, so renaming an arm cannot silently drop a
sentence from the report:

    report:
      kind: detailclip
      reference: detailclip            # the full method
      paper: {clip: clip, detailclip: detailclip}
      removes: {no_distillation: distillation, clip: all}

``report: methods`` (a kind alone) declares no roles. ``ssl-bench report --kind`` on a
folder without its sweep file has none either; the sections say what they left out.
"""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass, field
from typing import Any

from ssl_bench.errors import UserError, unknown
from ssl_bench.registry import REPORTS

SPEC_KEYS = ("kind", "reference", "paper", "removes")


@dataclass(frozen=True)
class ReportSpec:
    """What a sweep file declares for its report: the kind and the roles of its arms."""

    kind: str
    reference: str | None = None
    paper: dict[str, str] = field(default_factory=dict)  # arm -> paper row
    removes: dict[str, str] = field(default_factory=dict)  # arm -> component

    def arm_for(self, component: str) -> str | None:
        """The arm declared to remove ``component``, if any."""
        return next((a for a, c in self.removes.items() if c == component), None)


def title(kind: str) -> str:
    return REPORTS.get(kind).description


def parse(value: Any, arms: list[str], origin: str) -> ReportSpec | None:
    """A sweep file's ``report:`` (a kind, or a mapping with ``kind`` and arm roles),
    checked against its kind's declarations and the file's arms."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, dict) or "kind" not in value:
        raise UserError(f"{origin}: report must be a kind or a mapping with `kind`")
    for key in value:
        if key not in SPEC_KEYS:
            raise unknown(f"key under report in {origin}", str(key), SPEC_KEYS)
    kind = str(value["kind"])
    try:
        extra = REPORTS.get(kind).extra
    except UserError as err:
        raise UserError(f"{origin}: {err}") from None

    def arm(name: Any, what: str) -> str:
        if arms and str(name) not in arms:
            raise unknown(f"arm in report.{what} of {origin}", str(name), arms)
        return str(name)

    def roles(key: str, valid: Any) -> dict[str, str]:
        given = value.get(key) or {}
        if given and not valid:
            raise UserError(f"{origin}: the {kind} report reads no report.{key}")
        if not isinstance(given, dict):
            raise UserError(f"{origin}: report.{key} must map arm names to {key} entries")
        out = {arm(a, key): str(v) for a, v in given.items()}
        for v in out.values():
            if v not in valid:
                raise unknown(f"report.{key} entry in {origin}", v, list(valid))
        return out

    reference = value.get("reference")
    if reference is not None and not extra.get("reference"):
        raise UserError(f"{origin}: the {kind} report reads no report.reference")
    if reference is None and extra.get("reference_required"):
        raise UserError(f"{origin}: the {kind} report needs report.reference: {extra['reference']}")
    return ReportSpec(
        kind,
        None if reference is None else arm(reference, "reference"),
        roles("paper", extra.get("paper") or {}),
        roles("removes", extra.get("components") or {}),
    )


def kinds() -> dict[str, str]:
    """Every report kind and its title, for --help and error messages."""
    return {e.name: e.description for e in REPORTS.entries()}


def kind_names() -> list[str]:
    """The kinds' names without importing their modules (one module per kind, named as
    its kind): ``--help`` lists them, and every CLI start would otherwise pay for
    matplotlib and pandas (about 2 s on a slow CPU)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
