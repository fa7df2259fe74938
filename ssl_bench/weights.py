"""Backbone weights in and out: `ssl-bench export` and `ssl-bench eval --weights`.

An exported file holds the backbone alone (no heads, no EMA teacher unless asked for,
no optimiser), so it is small and loads anywhere:

- ``ssl-bench`` format: ``{"format": "ssl-bench-backbone", "state_dict": ..., "meta": ...}``
  in our backbone's key layout; ``meta`` names the backbone and its settings, the image
  size, the normalisation mean/std the run trained with, the method and the git sha.
- ``torchvision`` format (resnet18/resnet50): a bare state dict in torchvision's key
  layout (``conv1.weight``, ``layer1.0.bn1.running_mean``, ...; no ``fc``), which
  ``torchvision.models.resnet18().load_state_dict`` takes directly once ``fc`` is an
  ``Identity`` (and, for runs at <= 64 px, the CIFAR stem swapped in); the metadata goes
  to ``FILE.json`` beside it.

Every file is read with ``torch.load(weights_only=True)``
(:func:`ssl_bench.checkpoint.load_tensors`): a file that would need to unpickle code is
refused.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ssl_bench import checkpoint
from ssl_bench.errors import UserError

FORMATS = ("ssl-bench", "torchvision")
TAG = "ssl-bench-backbone"
TORCHVISION = ("resnet18", "resnet50")


def to_torchvision(state: dict[str, Tensor], backbone: str) -> dict[str, Tensor]:
    """Our ResNet keys (``net.conv1.weight``) -> torchvision's (``conv1.weight``)."""
    if backbone not in TORCHVISION:
        raise UserError(
            f"--format torchvision needs a backbone of torchvision's layout "
            f"({', '.join(TORCHVISION)}); this run's backbone is '{backbone}'"
        )
    return {k.removeprefix("net."): v for k, v in state.items()}


def from_torchvision(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """torchvision ResNet keys -> ours; a classifier (``fc.*``) is dropped."""
    return {f"net.{k}": v for k, v in state.items() if not k.startswith("fc.")}


def _contiguous(state: dict[str, Tensor]) -> dict[str, Tensor]:
    # Our CNNs keep channels-last weights; a file in the default layout loads anywhere.
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def export(
    run_dir: Path, out: Path, fmt: str = "ssl-bench", teacher: bool = False
) -> dict[str, Any]:
    """Write ``run_dir``'s backbone (online, or the EMA teacher's) to ``out``; return its meta."""
    from ssl_bench.runner import open_run

    if fmt not in FORMATS:
        raise UserError(f"unknown --format '{fmt}'; valid: {', '.join(FORMATS)}")
    r = open_run(Path(run_dir), "cpu")
    cfg, data, method, folder, state, ckpt = r.cfg, r.data, r.method, r.folder, r.state, r.ckpt
    if fmt == "torchvision":
        to_torchvision({}, cfg.model.backbone)  # fail before writing anything
    module: nn.Module | None = method.backbone
    if teacher:
        module = method.ema_backbone()
        if module is None:
            raise UserError(
                f"--teacher: method '{cfg.method.name}' has no EMA teacher; "
                f"export its backbone without --teacher"
            )
    if not list(module.state_dict()):
        raise UserError(f"method '{cfg.method.name}' has no backbone weights to export")
    weights = _contiguous(module.state_dict())
    mean, std = list(r.views.mean), list(r.views.std)  # what the run normalised with
    summary = folder.read_summary() if folder.summary_path.is_file() else {}
    meta = {
        "backbone": cfg.model.backbone,
        "model": asdict(cfg.model),  # width, patch size, ...: what rebuilds it
        "image_size": data.image_size,
        "cifar_stem": cfg.model.backbone in TORCHVISION and data.image_size <= 64,
        "mean": mean,
        "std": std,
        "method": cfg.method.name,
        "teacher": teacher,
        "dataset": cfg.data.name,
        "seed": cfg.train.seed,
        "step": int(state.get("progress", {}).get("step", 0)),
        "git_sha": summary.get("git_sha"),
        "source": str(ckpt),
    }
    if fmt == "torchvision":
        tv = to_torchvision(weights, cfg.model.backbone)
        checkpoint.atomic_write_bytes(out, lambda f: torch.save(tv, f))
        side = out.with_name(out.name + ".json")
        checkpoint.atomic_write_bytes(side, lambda f: f.write(json.dumps(meta, indent=2).encode()))
    else:
        payload = {"format": TAG, "state_dict": weights, "meta": meta}
        checkpoint.atomic_write_bytes(out, lambda f: torch.save(payload, f))
    return meta


def read(path: Path) -> tuple[dict[str, Tensor], dict[str, Any] | None]:
    """A weights file -> (state dict, our meta or None). Ours, a bare state dict in our
    layout or torchvision's, or a dict with a ``state_dict``/``model`` entry."""
    obj = checkpoint.load_tensors(path, "weights file")
    if isinstance(obj, dict) and obj.get("format") == TAG:
        return obj["state_dict"], obj["meta"]
    if isinstance(obj, dict) and obj.get("format") == 1 and "model" in obj:
        raise UserError(
            f"{path} is an ssl-bench training checkpoint, not a weights file: evaluate its "
            f"run folder with `ssl-bench eval RUN_DIR`, or export it with `ssl-bench export`"
        )
    for key in ("state_dict", "model"):  # common wrappers (Lightning, timm, ...)
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise UserError(f"{path} holds no state dict (a mapping of names to tensors)")
    return obj, None


def load_into(backbone: nn.Module, name: str, state: dict[str, Tensor], path: Path) -> str:
    """Load ``state`` into ``backbone`` exactly (every key, every shape); return the layout
    it was in. A mismatch is one line naming the first offending keys."""
    layout = "ssl-bench"
    if name in TORCHVISION and not any(k.startswith("net.") for k in state):
        state, layout = from_torchvision(state), "torchvision"
    want = backbone.state_dict()

    def shown(key: str) -> str:  # a key as the file's own layout spells it
        return key.removeprefix("net.") if layout == "torchvision" else key

    missing = [shown(k) for k in want if k not in state]
    unexpected = [shown(k) for k in state if k not in want]
    shapes = [
        f"{shown(k)} {list(state[k].shape)} (backbone: {list(v.shape)})"
        for k, v in want.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if shapes:
        problems.append("wrong shape: " + ", ".join(shapes[:3]))
        if "net.conv1.weight" in state and state["net.conv1.weight"].shape[-1] == 7:
            problems.append(
                "a 7x7 ImageNet stem: at <= 64 px our resnets use the CIFAR 3x3 stem, "
                "so evaluate at --set data.image_size=96 or more"
            )
    if missing:
        problems.append(f"missing {len(missing)} keys: " + ", ".join(missing[:3]))
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: " + ", ".join(unexpected[:3]))
    if problems:
        raise UserError(f"weights {path} do not fit backbone '{name}': " + "; ".join(problems))
    backbone.load_state_dict(state, strict=True)
    return layout


def evaluate_weights(
    path: Path,
    backbone: str | None,
    flags: dict[str, dict[str, Any]],
    set_items: list[str],
    only_text: str | None,
    out: Path | None,
) -> dict[str, Any]:
    """`ssl-bench eval --weights`: score a backbone from a weights file with the full
    protocol, as a run folder of its own (config, checkpoint, summary.json), so that
    `ssl-bench results` and `report` list it beside trained runs.

    The images are normalised with the evaluation dataset's own channel statistics, as
    for every run; the file's recorded mean/std is for users of the weights elsewhere.
    """
    import time
    from datetime import datetime

    from ssl_bench.data.datasets import channel_stats, load_dataset
    from ssl_bench.data.views import ViewGenerator
    from ssl_bench.eval.names import parse_only
    from ssl_bench.layering import resolve
    from ssl_bench.method import DataInfo, build_method
    from ssl_bench.runfolder import RunFolder
    from ssl_bench.runner import evaluate_run, make_summary
    from ssl_bench.runtime import seed_everything, select_device
    from ssl_bench.trainer import Progress

    path = Path(path)
    state, meta = read(path)
    model = dict(meta["model"]) if meta else {}
    if backbone is not None:
        if meta and backbone != meta["backbone"]:
            raise UserError(
                f"--backbone {backbone}: {path} holds a '{meta['backbone']}' backbone "
                f"(leave --backbone out for files written by `ssl-bench export`)"
            )
        model["backbone"] = backbone
    elif not meta:
        raise UserError(f"{path} carries no metadata: say which backbone it is with --backbone")
    if meta and "name" not in flags.get("data", {}):
        flags.setdefault("data", {})["name"] = meta["dataset"]
    cfg = resolve("random", flag_values={**flags, "model": model}, set_items=set_items)
    only = parse_only(only_text, cfg.eval.evaluators)
    out = Path(out) if out else Path("runs") / f"weights-{path.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    folder = RunFolder(out)
    if folder.has_run():
        raise UserError(f"output directory {out} already holds a run; choose another --out")
    device = select_device(cfg.train.device)
    data = load_dataset(cfg.data)
    seed_everything(cfg.train.seed)
    method = build_method(cfg, DataInfo.of(data, cfg.data.use_unlabeled))
    layout = load_into(method.backbone, cfg.model.backbone, state, path)
    method.to(device)
    folder.prepare()
    folder.write_config(cfg.to_dict())
    # A checkpoint like any run's, so `ssl-bench eval OUT` re-evaluates it later.
    ckpt = {
        "format": 1,
        "method": "random",
        "backbone": cfg.model.backbone,
        "config": cfg.to_dict(),
        "model": method.state_dict(),
        "progress": {},
    }
    checkpoint.save(folder.checkpoint_path, ckpt)
    views = ViewGenerator(*channel_stats(data.pretrain_images(cfg.data.use_unlabeled)))
    summary = make_summary(cfg, 0, Progress(), device, out)
    summary["method"] = f"weights:{path.stem}"
    summary["weights"] = {"file": str(path), "layout": layout, "meta": meta}
    start = time.perf_counter()
    summary["eval"] = evaluate_run(method, data, cfg, views, device, folder, only, True)
    summary["eval_seconds"] = round(time.perf_counter() - start, 2)
    folder.write_summary(summary)
    return summary
