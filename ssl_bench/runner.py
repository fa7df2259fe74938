"""`ssl-bench run`: dataset -> method -> trainer -> evaluation -> summary.json.

This is the wiring (MAE's ``main_pretrain.py``): it builds parts from the config and
hands them to each other; the loop lives in :mod:`ssl_bench.trainer`.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from ssl_bench import checkpoint
from ssl_bench.config import Config, diff
from ssl_bench.data.datasets import channel_stats, load_dataset
from ssl_bench.data.splits import DatasetSplits
from ssl_bench.data.views import ViewGenerator
from ssl_bench.errors import UserError
from ssl_bench.eval.features import extract
from ssl_bench.eval.knn import knn_eval
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
from ssl_bench.trainer import Trainer

# Keys that may change between a run and its resumption: they do not change results.
RESUME_IGNORED = ("train.device", "train.progress", "train.threads", "train.log_every", "eval.")


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
    micro = bs // dist_info().world_size // cfg.train.accum_steps
    if micro < 2:
        raise UserError(
            f"train.batch_size {bs} leaves {micro} image per rank and accumulation "
            f"step; it must be at least 2 (BatchNorm and contrastive losses)"
        )


def evaluate(
    method: Method, data: DatasetSplits, cfg: Config, views: ViewGenerator, device: torch.device
) -> dict[str, Any]:
    """kNN on the test split with the train split as memory bank (DINO protocol)."""
    kw = {
        "views": views,
        "device": device,
        "batch_size": cfg.eval.batch_size,
        "precision": cfg.train.precision,
    }
    f_train = extract(method, method.embed, data.train.images, **kw)
    f_test = extract(method, method.embed, data.test.images, **kw)
    knn = knn_eval(
        f_train,
        data.train.labels,
        f_test,
        data.test.labels,
        data.num_classes,
        cfg.eval.knn_k,
        cfg.eval.knn_t,
    )
    return {"knn": knn}


def run(cfg: Config, out: Path | None = None, resume: bool = False) -> dict[str, Any]:
    """Train and evaluate one configuration; return the summary written to summary.json."""
    dist = dist_info()
    out = Path(out) if out is not None else default_out(cfg.method.name)
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
    folder.prepare()  # only now: bad input above leaves no folder behind
    folder.write_config(cfg.to_dict())
    seed_everything(cfg.train.seed)
    info = DataInfo(data.num_classes, data.image_size, data.classes)
    method = build_method(cfg, info).to(device)
    views = ViewGenerator(*channel_stats(data.pretrain_images(cfg.data.use_unlabeled)))

    trainer = Trainer(method, data, cfg, folder, device, views, dist)
    if resume:
        state = checkpoint.load(folder.checkpoint_path)
        trainer.load_state_dict(state)
        folder.truncate_metrics(trainer.progress.step)
    if method.trainable:
        progress = trainer.fit()
    else:
        trainer.save()  # nothing to train: the checkpoint holds the (random) weights
        progress = trainer.progress

    summary: dict[str, Any] = {
        "method": cfg.method.name,
        "dataset": cfg.data.name,
        "backbone": cfg.model.backbone,
        "batch_size": cfg.train.batch_size,
        "epochs": cfg.train.epochs if method.trainable else 0,
        "seed": cfg.train.seed,
        "images_seen": progress.images_seen,
        "train_seconds": round(progress.train_seconds, 2),
        "train_images_per_s": round(progress.images_seen / progress.train_seconds, 1)
        if progress.train_seconds > 0
        else None,
        "device": describe_device(device),
        "precision": precision_name(device, cfg.train.precision),
        "git_sha": git_sha(),
        "versions": versions(),
        "run_dir": str(out),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": cfg.to_dict(),
    }
    if cfg.eval.enabled:
        start = time.perf_counter()
        summary["eval"] = evaluate(method, data, cfg, views, device)
        summary["eval_seconds"] = round(time.perf_counter() - start, 2)
    folder.write_summary(summary)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """A short table for the terminal."""
    knn = summary.get("eval", {}).get("knn")
    rows = [
        ("method", summary["method"]),
        ("dataset / backbone", f"{summary['dataset']} / {summary['backbone']}"),
        (
            "epochs x batch",
            f"{summary['epochs']} x {summary['batch_size']} (seed {summary['seed']})",
        ),
        (
            "train time",
            f"{summary['train_seconds']:.1f} s"
            + (
                f" ({summary['train_images_per_s']:.0f} img/s)"
                if summary["train_images_per_s"]
                else ""
            ),
        ),
        ("device", f"{summary['device']}, {summary['precision']}"),
    ]
    if knn:
        rows.append((f"kNN top-1 (k={knn['k']}, T={knn['T']})", f"{100 * knn['top1']:.1f}%"))
        rows.append(("kNN top-5", f"{100 * knn['top5']:.1f}%"))
    rows.append(("run folder", summary["run_dir"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)
