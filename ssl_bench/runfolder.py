"""The run folder contract (MISSION.md): config.yaml, metrics.jsonl, checkpoints/last.pt,
summary.json. Writes happen on rank 0 only; the caller passes ``is_main``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from ssl_bench.checkpoint import atomic_write_bytes
from ssl_bench.errors import UserError


class RunFolder:
    def __init__(self, path: str | Path, is_main: bool = True) -> None:
        self._tb: Any = None  # a TensorBoard SummaryWriter, when mirrored
        self.path = Path(path)
        self.is_main = is_main

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    def prepare(self) -> None:
        """Create the folder and prove it is writable, before any work is done."""
        if not self.is_main:
            return
        try:
            (self.path / "checkpoints").mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as err:
            raise UserError(
                f"cannot write to output directory {self.path}: {err.strerror}"
            ) from None

    def has_run(self) -> bool:
        return self.checkpoint_path.is_file() or self.summary_path.is_file()

    def write_config(self, config: dict[str, Any]) -> None:
        if self.is_main:
            text = yaml.safe_dump(config, sort_keys=False)
            atomic_write_bytes(self.config_path, lambda f: f.write(text.encode()))

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            raise UserError(f"{self.path} has no config.yaml; is it an ssl-bench run folder?")
        return yaml.safe_load(self.config_path.read_text())

    def mirror_to_tensorboard(self) -> None:
        """Also write every logged number to a TensorBoard log in RUN/tensorboard/;
        metrics.jsonl stays the record (train.tensorboard)."""
        if self.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.path / "tensorboard"))

    def log(self, record: dict[str, Any]) -> None:
        if not self.is_main:
            return
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(_finite(record)) + "\n")
        if self._tb is not None:
            step = record.get("step", 0)
            for key, value in record.items():
                if key not in ("step", "epoch") and isinstance(value, int | float):
                    group = "monitor" if key.startswith(("knn_val", "head_")) else "train"
                    self._tb.add_scalar(f"{group}/{key}", value, step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def truncate_metrics(self, after_step: int) -> None:
        """On resume, drop lines logged after the checkpoint so no step appears twice."""
        if not (self.is_main and self.metrics_path.is_file()):
            return
        keep = [
            line
            for line in self.metrics_path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= after_step
        ]
        self.metrics_path.write_text("".join(line + "\n" for line in keep))

    def write_summary(self, summary: dict[str, Any]) -> None:
        if self.is_main:
            text = json.dumps(_finite(summary), indent=2)
            atomic_write_bytes(self.summary_path, lambda f: f.write(text.encode()))

    def read_summary(self) -> dict[str, Any]:
        if not self.summary_path.is_file():
            raise UserError(f"{self.path} has no summary.json")
        return json.loads(self.summary_path.read_text())


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
