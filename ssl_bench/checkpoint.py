"""Atomic checkpoints: written to a temporary file, flushed, then renamed into place,
so a crash or kill mid-write leaves the previous checkpoint intact."""

from __future__ import annotations

import os
import tempfile
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


def load(path: Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU; a missing or unreadable file is a UserError."""
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        # Our checkpoints hold numpy RNG state and config dicts, not just tensors.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise UserError(f"corrupt checkpoint {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(state, dict) or "model" not in state:
        raise UserError(f"corrupt checkpoint {path}: not an ssl-bench checkpoint")
    return state
