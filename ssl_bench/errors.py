"""The one exception type that means "the user asked for something we cannot do".

The CLI prints it as a single line and exits non-zero; anything else is a bug and
shows a traceback only with ``--debug``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Bad input: an unknown name, a value out of range, a missing or corrupt file."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for the closest choice, or "" if none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown(kind: str, name: str, choices: Iterable[str]) -> UserError:
    """A UserError for an unknown name that lists the valid choices."""
    choices = sorted(choices)
    return UserError(
        f"unknown {kind} '{name}'{suggest(name, choices)}; valid choices: {', '.join(choices)}"
    )
