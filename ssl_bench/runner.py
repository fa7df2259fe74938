"""`ssl-bench run`: dataset -> method -> trainer -> evaluation -> summary.json.

This is the wiring (MAE's ``main_pretrain.py``): it builds parts from the config and
hands them to each other; the loop lives in :mod:`ssl_bench.trainer`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from ssl_bench import checkpoint, distributed
from ssl_bench.config import Config
from ssl_bench.data.datasets import channel_stats, load_dataset
from ssl_bench.data.splits import DatasetSplits
from ssl_bench.data.views import ViewGenerator
from ssl_bench.errors import UserError
from ssl_bench.eval.evaluator import evaluate, summary_rows
from ssl_bench.eval.features import FeatureCache, checkpoint_key
from ssl_bench.eval.names import parse_only
from ssl_bench.flops import flops_per_image, matmul_flops_per_s
from ssl_bench.layering import diff
from ssl_bench.method import DataInfo, Method, build_method
from ssl_bench.runfolder import RunFolder
from ssl_bench.runtime import (
    describe_device,
    dist_info,
    git_sha,
    precision_name,
    seed_everything,
    select_device,
    versions,
)
from ssl_bench.trainer import Progress, Trainer

# Keys that may change between a run and its resumption: they do not change results.
RESUME_IGNORED = (
    "train.device",
    "train.progress",
    "train.threads",
    "train.log_every",
    "train.tensorboard",
    "eval.",
)


def default_out(method: str) -> Path:
    return Path("runs") / f"{method}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def check_resume(cfg: Config, saved: dict[str, Any], where: Path) -> None:
    changed = [k for k in diff(saved, cfg.to_dict()) if not k.startswith(RESUME_IGNORED)]
    if changed:
        shown = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
        raise UserError(
            f"--resume: the config differs from the checkpoint's in {where} at {shown}; "
            f"repeat the original settings or use a new --out"
        )


def check_batch(cfg: Config, data: DatasetSplits) -> None:
    n = len(data.pretrain_images(cfg.data.use_unlabeled))
    bs = cfg.train.batch_size
    if bs > n:
        raise UserError(f"train.batch_size {bs} is larger than the training set ({n} images)")
    world = dist_info().world_size
    if bs % (world * cfg.train.accum_steps):
        raise UserError(
            f"train.batch_size {bs} is the global batch; it must be divisible by the world "
            f"size ({world} processes) x train.accum_steps ({cfg.train.accum_steps})"
        )
    micro = bs // world // cfg.train.accum_steps
    if micro < 2:
        raise UserError(
            f"train.batch_size {bs} leaves {micro} image per rank and accumulation "
            f"step; it must be at least 2 (BatchNorm and contrastive losses)"
        )


def feature_cache(
    method: Method,
    data: DatasetSplits,
    cfg: Config,
    views: ViewGenerator,
    device: torch.device,
    folder: RunFolder | None = None,
) -> FeatureCache:
    """The features of a model; kept in ``folder``/features when ``folder`` holds its
    checkpoint (the key names the checkpoint's content), in memory otherwise."""
    stored: dict[str, Any] = {}
    if folder is not None:
        stored = {
            "folder": folder.path / "features",
            "key": checkpoint_key(folder.checkpoint_path, f"plain{data.image_size}"),
            "write": folder.is_main,
        }
    e, t = cfg.eval, cfg.train
    return FeatureCache(method, data, views, device, e.batch_size, t.precision, **stored)


def evaluate_run(
    method: Method,
    data: DatasetSplits,
    cfg: Config,
    views: ViewGenerator,
    device: torch.device,
    folder: RunFolder,
    only: list[str],
    explicit: bool = False,
) -> dict[str, Any]:
    """Evaluate the model whose checkpoint is in ``folder``, caching its features there."""
    cache = feature_cache(method, data, cfg, views, device, folder)
    out_dir = folder.path if folder.is_main else None
    return evaluate(method, data, cfg, views, device, cache, only, explicit, out_dir)


def run(cfg: Config, out: Path | None = None, resume: bool = False) -> dict[str, Any]:
    """Train and evaluate one configuration; return the summary written to summary.json."""
    dist = dist_info()
    # Every rank uses rank 0's folder name (the default one holds a timestamp).
    out = Path(
        distributed.broadcast(str(out) if out is not None else str(default_out(cfg.method.name)))
    )
    folder = RunFolder(out, is_main=dist.is_main)
    if resume:
        if not folder.checkpoint_path.is_file():
            raise UserError(f"--resume: no checkpoint in {out} (expected {folder.checkpoint_path})")
        check_resume(cfg, folder.read_config(), out)
    elif folder.has_run():
        raise UserError(
            f"output directory {out} already holds a run; pass --resume to continue "
            f"it or choose another --out"
        )
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = select_device(cfg.train.device)
    data = load_dataset(cfg.data)
    check_batch(cfg, data)
    seed_everything(cfg.train.seed)
    info = DataInfo.of(data, cfg.data.use_unlabeled)
    method = build_method(cfg, info).to(device)  # a method may reject its settings here
    distributed.barrier()  # every rank has checked its input before rank 0 writes
    folder.prepare()  # only now: bad input above leaves no folder behind
    folder.write_config(cfg.to_dict())
    if cfg.train.tensorboard:
        folder.mirror_to_tensorboard()
    views = ViewGenerator(*channel_stats(data.pretrain_images(cfg.data.use_unlabeled)))

    trainer = Trainer(method, data, cfg, folder, device, views, dist)
    if resume:
        state = checkpoint.load(folder.checkpoint_path)
        trainer.load_state_dict(state)
        folder.truncate_metrics(trainer.progress.step)
    flops = None
    if method.trainable:  # counted on one step, the method and RNGs restored afterwards
        flops = flops_per_image(
            method,
            views,
            trainer.images,
            trainer.targets,
            trainer.specs,
            device,
            cfg.train.precision,
        )
    try:
        if method.trainable:
            progress = trainer.fit()
        else:
            trainer.save()  # nothing to train: the checkpoint holds the (random) weights
            progress = trainer.progress
    finally:
        folder.close()
    if not dist.is_main:  # rank 0 evaluates and writes the summary; the others are done
        return {}

    epochs = cfg.train.epochs if method.trainable else 0
    summary = make_summary(cfg, epochs, progress, device, out)
    if method.trainable:
        summary.update(compute_use(progress, trainer.steps_per_epoch, flops, device, cfg))
    if cfg.eval.enabled:
        start = time.perf_counter()
        summary["eval"] = evaluate_run(method, data, cfg, views, device, folder, evaluators(cfg))
        summary["eval_seconds"] = round(time.perf_counter() - start, 2)
    folder.write_summary(summary)
    return summary


def evaluators(cfg: Config) -> list[str]:
    """The evaluators a run's config asks for: eval.evaluators, plus finetune when on."""
    only = parse_only(cfg.eval.evaluators, "")
    if cfg.eval.finetune and "finetune" not in only:
        only.append("finetune")
    return only


def make_summary(
    cfg: Config, epochs: int, progress: Progress, device: torch.device, out: Path
) -> dict[str, Any]:
    """The summary.json contract (MISSION.md), without ``eval``."""
    seconds, world = progress.train_seconds, dist_info().world_size
    return {
        "method": cfg.method.name,
        "dataset": cfg.data.name,
        "backbone": cfg.model.backbone,
        "batch_size": cfg.train.batch_size,
        "world_size": world,
        "batch_size_per_rank": cfg.train.batch_size // world,
        "epochs": epochs,
        "seed": cfg.train.seed,
        "images_seen": progress.images_seen,
        "train_seconds": round(seconds, 2),
        "train_images_per_s": round(progress.images_seen / seconds, 1) if seconds > 0 else None,
        "device": describe_device(device),
        "precision": precision_name(device, cfg.train.precision),
        "git_sha": git_sha(),
        "versions": versions(),
        "run_dir": str(out),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": cfg.to_dict(),
    }


def compute_use(
    progress: Progress, steps_per_epoch: int, flops: float | None, device: torch.device, cfg: Config
) -> dict[str, Any]:
    """Steps/s and the utilisation figure: achieved FLOP/s over a measured matmul peak."""
    seconds = progress.train_seconds
    if seconds <= 0:
        return {}
    out: dict[str, Any] = {"train_steps_per_s": round(progress.step / seconds, 3)}
    if flops is not None:
        achieved = flops * progress.images_seen / seconds
        peak = matmul_flops_per_s(device, cfg.train.precision)
        out.update(
            train_gflops_per_image=round(flops / 1e9, 4),
            achieved_gflops_per_s=round(achieved / 1e9, 1),
            matmul_peak_gflops_per_s=round(peak / 1e9, 1),
            utilisation=round(achieved / peak, 4),
        )
    return out


def train_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The training lines of the terminal summary."""
    ips = summary["train_images_per_s"]
    return [
        (
            "epochs x batch",
            f"{summary['epochs']} x {summary['batch_size']} (seed {summary['seed']})",
        ),
        (
            "train time",
            f"{summary['train_seconds']:.1f} s" + (f" ({ips:.0f} img/s)" if ips else ""),
        ),
    ] + (
        [
            (
                "compute",
                f"{summary['achieved_gflops_per_s']:.0f} GFLOP/s, "
                f"{100 * summary['utilisation']:.0f}% of a matmul's "
                f"{summary['matmul_peak_gflops_per_s']:.0f}",
            )
        ]
        if "utilisation" in summary
        else []
    )


def format_summary(summary: dict[str, Any]) -> str:
    """A short table for the terminal."""
    rows = [
        ("method", summary["method"]),
        ("dataset / backbone", f"{summary['dataset']} / {summary['backbone']}"),
    ]
    if "weights" in summary:  # `eval --weights`: nothing was trained here
        w = summary["weights"]
        rows.append(("weights", f"{w['file']} ({w['layout']} layout)"))
    else:
        rows += train_rows(summary)
    rows.append(("device", f"{summary['device']}, {summary['precision']}"))
    rows += summary_rows(summary.get("eval", {}))
    rows.append(("run folder", summary["run_dir"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def _locate(target: Path) -> tuple[RunFolder, Path]:
    """A run folder or a checkpoint file -> (run folder, checkpoint path)."""
    if target.is_file():
        run_dir = target.parent.parent if target.parent.name == "checkpoints" else target.parent
        return RunFolder(run_dir), target
    if target.is_dir():
        folder = RunFolder(target)
        if not folder.checkpoint_path.is_file():
            raise UserError(
                f"no checkpoint in {target} (expected {folder.checkpoint_path}); "
                f"was the run started?"
            )
        return folder, folder.checkpoint_path
    raise UserError(f"no such run folder or checkpoint: {target}")


@dataclass
class OpenRun:
    """A finished run (or a checkpoint) rebuilt for evaluation: its model, data and views."""

    folder: RunFolder
    ckpt: Path
    state: dict[str, Any]
    cfg: Config
    data: DatasetSplits
    method: Method
    views: ViewGenerator
    device: torch.device

    def cache(self) -> FeatureCache:
        """The features of this checkpoint, cached in the run folder when it is the run's own."""
        own = self.folder if self.ckpt == self.folder.checkpoint_path else None
        return feature_cache(self.method, self.data, self.cfg, self.views, self.device, own)


def open_run(target: Path, device_name: str | None = None) -> OpenRun:
    """Rebuild the method of a run folder's last checkpoint (or a checkpoint file)."""
    from ssl_bench.layering import resolve

    folder, ckpt = _locate(Path(target))
    state = checkpoint.load(ckpt)
    saved = state.get("config")
    if not isinstance(saved, dict) or "method" not in saved:
        raise UserError(f"corrupt checkpoint {ckpt}: it carries no config")
    if folder.config_path.is_file():
        backbone = (folder.read_config().get("model") or {}).get("backbone")
        if backbone != state.get("backbone"):
            raise UserError(
                f"checkpoint {ckpt} holds a '{state.get('backbone')}' backbone but "
                f"{folder.config_path} says '{backbone}'"
            )
    cfg = resolve(
        saved["method"]["name"],
        file_values=saved,
        flag_values={"train": {"device": device_name}} if device_name else None,
        saved=True,
    )
    device = select_device(cfg.train.device)
    data = load_dataset(cfg.data)
    seed_everything(cfg.train.seed)
    method = build_method(cfg, DataInfo.of(data, cfg.data.use_unlabeled)).to(device)
    try:
        method.load_state_dict(state["model"])
    except RuntimeError as err:
        raise UserError(
            f"checkpoint {ckpt} does not fit method '{cfg.method.name}' with backbone "
            f"'{cfg.model.backbone}': {str(err).splitlines()[0]}"
        ) from None
    views = ViewGenerator(*channel_stats(data.pretrain_images(cfg.data.use_unlabeled)))
    return OpenRun(folder, ckpt, state, cfg, data, method, views, device)


def evaluate_twin(
    folder: Path, cfg: Config, summary: dict[str, Any], source: Path, run_dir: Path
) -> dict[str, Any]:
    """Evaluate ``folder``, a copy of the finished run ``source`` whose training ``cfg``
    repeats, under ``cfg``'s own evaluation settings (a sweep reusing another sweep's run);
    write cfg as its config and ``summary`` (the source's, re-evaluated) as its summary.
    ``run_dir``: where the copy will live (it is evaluated before it is moved there)."""
    config = cfg.to_dict()
    summary = {**summary, "run_dir": str(run_dir), "reused_from": str(source), "config": config}
    for key in ("eval", "eval_seconds", "evaluated_checkpoint"):
        summary.pop(key, None)
    if cfg.eval.enabled:
        r = open_run(folder, cfg.train.device)
        r.cfg.eval = cfg.eval  # the checkpoint carries the source's evaluators
        start = time.perf_counter()
        summary["eval"] = evaluate(
            r.method, r.data, r.cfg, r.views, r.device, r.cache(), evaluators(cfg), False, folder
        )
        summary["eval_seconds"] = round(time.perf_counter() - start, 2)
    run_folder = RunFolder(folder)
    run_folder.write_config(config)
    run_folder.write_summary(summary)
    return summary


def evaluate_existing(target: Path, only_text: str | None, device_name: str | None = None) -> dict:
    """`ssl-bench eval`: re-evaluate a finished run (or a checkpoint) and update its summary."""
    r = open_run(target, device_name)
    only = parse_only(only_text, r.cfg.eval.evaluators)
    out_dir = r.folder.path if r.ckpt == r.folder.checkpoint_path else None
    results = evaluate(r.method, r.data, r.cfg, r.views, r.device, r.cache(), only, True, out_dir)
    folder = r.folder
    if folder.summary_path.is_file():
        summary = folder.read_summary()
    else:
        progress = Progress(**r.state.get("progress", {}))
        summary = make_summary(r.cfg, progress.epoch, progress, r.device, folder.path)
    summary.setdefault("eval", {}).update(results)
    summary["evaluated_checkpoint"] = str(r.ckpt)
    folder.write_summary(summary)
    return summary
