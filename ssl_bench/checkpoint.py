"""Atomic checkpoints: written to a temporary file, flushed, then renamed into place,
so a crash or kill mid-write leaves the previous checkpoint intact."""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from ssl_bench.errors import UserError


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temp file next to ``path``, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(path: Path, state: dict[str, Any]) -> None:
    atomic_write_bytes(path, lambda f: torch.save(state, f))


def load_tensors(path: Path, what: str = "checkpoint") -> Any:
    """Unpickle ``path`` on the CPU, tensors and plain types only; a missing,
    unreadable or unsafe file is a UserError naming ``what`` it was meant to be."""
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        # weights_only: tensors and plain types only. A full unpickle could run any code
        # the file's author put in it; our own files never need one.
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch names the object it refused ("Unsupported global: GLOBAL os.system").
        refused = [x for x in str(err).splitlines() if "Unsupported global" in x]
        if refused:
            found = refused[0].split("error:")[-1].strip()
            raise UserError(
                f"refusing to load {path}: it holds objects other than tensors and plain "
                f"types, which could run code when unpickled ({found[:160]})"
            ) from None
        raise UserError(f"corrupt {what} {path}: not a readable torch file") from None
    except Exception as err:
        raise UserError(f"corrupt {what} {path}: {str(err).splitlines()[0]}") from None


def load(path: Path) -> dict[str, Any]:
    """Load an ssl-bench checkpoint safely (see :func:`load_tensors`)."""
    state = load_tensors(path)
    if not isinstance(state, dict) or "model" not in state:
        raise UserError(f"corrupt checkpoint {path}: not an ssl-bench checkpoint")
    return state
