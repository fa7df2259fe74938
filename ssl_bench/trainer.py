"""The generic training loop. It knows optimisers, schedules, accumulation, precision,
checkpoints and logging; it never knows which method it runs (the method computes its
own loss and does its own EMA in ``after_optimizer_step``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.profiler import record_function
from tqdm import tqdm

from ssl_bench import checkpoint, distributed
from ssl_bench.config import Config
from ssl_bench.data.sampler import epoch_batches, rank_rows, steps_per_epoch
from ssl_bench.data.splits import DatasetSplits
from ssl_bench.data.views import Draws, ViewGenerator, training_views
from ssl_bench.eval.collapse import embedding_std, rankme
from ssl_bench.eval.features import extract_features
from ssl_bench.eval.knn import knn_eval
from ssl_bench.method import Method
from ssl_bench.optim import apply_schedule, build_optimizer, peak_lr
from ssl_bench.runfolder import RunFolder
from ssl_bench.runtime import DistInfo, autocast, rng_state, set_rng_state, to_device


class Diverged(Exception):
    """The loss became NaN or inf; the last good checkpoint is kept."""

    def __init__(self, step: int, epoch: int, checkpoint_epoch: int) -> None:
        super().__init__(
            f"loss became non-finite (NaN/inf) by step {step} (epoch {epoch + 1}); training "
            f"stopped. The last good checkpoint (epoch {checkpoint_epoch}) is kept; try a "
            f"lower --lr"
        )
        self.step, self.epoch, self.checkpoint_epoch = step, epoch, checkpoint_epoch


# Images whose views one call makes when micro-batches are smaller (gradient
# accumulation): enough to amortise a call's fixed cost, small enough that the views of
# a step's other micro-batches never cost much memory.
VIEWS_PER_CALL = 64


def step_seed(seed: int, step: int) -> int:
    """The augmentation generator's seed at ``step`` of a run with ``seed``."""
    return (seed * 1_000_003 + step) * 7919 + 17


@dataclass
class Progress:
    epoch: int = 0  # completed epochs
    step: int = 0  # optimiser steps taken
    images_seen: int = 0
    train_seconds: float = 0.0


class Trainer:
    def __init__(
        self,
        method: Method,
        data: DatasetSplits,
        cfg: Config,
        run: RunFolder,
        device: torch.device,
        views: ViewGenerator,
        dist: DistInfo,
    ) -> None:
        self.method, self.data, self.cfg, self.run = method, data, cfg, run
        self.device, self.views, self.dist = device, views, dist
        t = cfg.train
        self.images = data.pretrain_images(cfg.data.use_unlabeled).to(device)  # uint8 on device
        # Class labels (-1 = unknown), or what the method trains against (captions' ids).
        self.targets = method.training_targets(data.pretrain_labels(cfg.data.use_unlabeled)).to(
            device
        )
        self.specs = training_views(method.views(), cfg.aug, data.image_size)
        self.steps_per_epoch = steps_per_epoch(len(self.images), t.batch_size)
        self.total_steps = t.epochs * self.steps_per_epoch
        self.warmup_steps = round(cfg.optim.warmup_epochs * self.steps_per_epoch)
        self.micro_batch = t.batch_size // dist.world_size // t.accum_steps
        self.lr = peak_lr(cfg.optim, t.batch_size)
        self.optimizer = build_optimizer(method, cfg.optim, self.lr)
        # The method's step as the module a step calls: DDP-wrapped under torchrun.
        self.step_module = distributed.wrap(method, device, t.sync_bn)
        # Augmentation randomness has its own generator on the training device, seeded
        # from (seed, step) at every step: a resumed run, and any world size, draws the
        # same views for the same global batch (data/views.py, Draws).
        self.generator = torch.Generator(device=device)
        # This rank's positions in every global batch, for its views' random numbers.
        self.rows = rank_rows(t.batch_size, dist.rank, dist.world_size).to(device)
        self.progress = Progress()

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": 1,
            "method": self.cfg.method.name,
            "backbone": self.cfg.model.backbone,
            "config": self.cfg.to_dict(),
            "model": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng_state(),
            "progress": asdict(self.progress),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        self.progress = Progress(**state["progress"])

    def save(self) -> None:
        if self.run.is_main:
            checkpoint.save(self.run.checkpoint_path, self.state_dict())

    # ---------------------------------------------------------------- loop
    def fit(self) -> Progress:
        """Train from ``self.progress`` to the configured number of epochs."""
        t = self.cfg.train
        bar = tqdm(
            total=self.total_steps,
            initial=self.progress.step,
            unit="step",
            desc=self.cfg.method.name,
            dynamic_ncols=True,
            disable=not (t.progress and self.dist.is_main),
        )
        try:
            if self.monitoring and self.progress.step == 0:  # the initialisation, for reference
                self.run.log({"epoch": 0, "step": 0, **self.monitor()})
            for epoch in range(self.progress.epoch, t.epochs):
                self._epoch(epoch, bar)
        finally:
            bar.close()
        return self.progress

    def _epoch(self, epoch: int, bar: tqdm) -> None:
        t, method, opt = self.cfg.train, self.method, self.optimizer
        method.train()
        bad = torch.zeros((), dtype=torch.bool, device=self.device)  # no per-step sync
        sums: dict[str, torch.Tensor] = {}
        logged_steps, window_images, window_start = 0, 0, time.perf_counter()
        epoch_start = time.perf_counter()
        batches = epoch_batches(
            len(self.images), t.batch_size, epoch, t.seed, self.dist.rank, self.dist.world_size
        )
        for i, index in enumerate(batches):
            step = epoch * self.steps_per_epoch + i
            lr = apply_schedule(
                opt, self.cfg.optim, step, self.total_steps, self.warmup_steps, self.lr
            )
            self.generator.manual_seed(step_seed(t.seed, step))
            micro_steps = -(-len(index) // self.micro_batch)
            for k, (micro, views) in enumerate(self._micro_batches(index)):
                last_micro = k + 1 == micro_steps
                with distributed.no_sync(self.step_module, skip=not last_micro):
                    with record_function("step/forward"), autocast(self.device, t.precision):
                        out = self.step_module(views, self.targets[micro], step, self.total_steps)
                    with record_function("step/backward"):
                        (out["loss"] / t.accum_steps).backward()
                bad |= ~torch.isfinite(out["loss"].detach())
                for key, value in out.items():
                    sums[key] = sums.get(key, 0) + value.detach().float() / t.accum_steps
            with record_function("step/optimizer"):
                opt.step()
                opt.zero_grad(set_to_none=True)
            with record_function("step/ema"):
                method.after_optimizer_step(step + 1, self.total_steps)
            self.progress.step = step + 1
            self.progress.images_seen += t.batch_size
            window_images += t.batch_size
            logged_steps += 1
            bar.update(1)

            if (step + 1) % t.log_every == 0 or i + 1 == self.steps_per_epoch:
                if distributed.any_rank(bad):  # every rank stops at the same step
                    raise Diverged(step, epoch, self.progress.epoch)
                elapsed = time.perf_counter() - window_start
                record = {k: (v / logged_steps).item() for k, v in sums.items()}
                record.update(
                    epoch=epoch + 1,
                    step=step + 1,
                    lr=lr,
                    images_seen=self.progress.images_seen,
                    images_per_s=window_images / max(elapsed, 1e-9),
                )
                self.run.log(record)
                bar.set_postfix(
                    epoch=f"{epoch + 1}/{t.epochs}",
                    loss=f"{record['loss']:.4f}",
                    img_s=f"{record['images_per_s']:.0f}",
                )
                sums, logged_steps, window_images = {}, 0, 0
                window_start = time.perf_counter()
            last = i + 1 == self.steps_per_epoch  # the epoch-end record monitors anyway
            if (
                self.monitoring
                and t.monitor_every
                and (step + 1) % t.monitor_every == 0
                and not last
            ):
                paused = time.perf_counter()
                self.run.log({"epoch": epoch + 1, "step": step + 1, **self.monitor()})
                paused = time.perf_counter() - paused  # kept out of images/s and train time
                window_start += paused
                epoch_start += paused

        self.progress.train_seconds += time.perf_counter() - epoch_start
        self.progress.epoch = epoch + 1
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": self.progress.step,
            "train_seconds": self.progress.train_seconds,
        }
        if self.monitoring:
            record.update(self.monitor())
            shown = {"knn_val": f"{record['knn_val_top1']:.3f}"}
            if "head_std" in record:  # collapse shows here as it happens
                shown["head_std"] = f"{record['head_std'] / record['head_std_ref']:.2f}x"
                shown["rankme"] = f"{record['head_rankme']:.1f}"
            bar.set_postfix(epoch=f"{epoch + 1}/{t.epochs}", **shown)
        self.run.log(record)
        self.save()

    def _micro_batches(self, index: torch.Tensor) -> Iterator[tuple[torch.Tensor, list]]:
        """This step's micro-batches (indices into the images) with their views.

        A sample's views depend only on the generator's state at the step's start and on
        its position in the global batch (:class:`Draws`), so several micro-batches'
        views can be made in one call and sliced, bit for bit the views each would make
        alone. One call covers up to ``VIEWS_PER_CALL`` images: a view call costs ~4,000
        small ops whatever its size, which a loss batch of 8 paid 8 times a step.
        """
        t = self.cfg.train
        start = self.generator.get_state()
        micros = to_device(index, self.device).split(self.micro_batch)
        rows = self.rows.split(self.micro_batch)
        per_call = max(1, VIEWS_PER_CALL // self.micro_batch)
        for first in range(0, len(micros), per_call):
            group = micros[first : first + per_call]
            # record_function: named spans for benchmarks/profile_step.py (no-ops otherwise)
            with record_function("step/views"):
                self.generator.set_state(start)  # every call draws from the step's start
                draws = Draws(
                    self.generator, torch.cat(rows[first : first + per_call]), t.batch_size
                )
                views = self.views(self.images[torch.cat(group)], self.specs, draws)
            for k, micro in enumerate(group):
                part = slice(k * self.micro_batch, (k + 1) * self.micro_batch)
                yield micro, [v[part] for v in views]

    @property
    def monitoring(self) -> bool:
        """The kNN/collapse monitor runs on rank 0 only (the others train on)."""
        return self.cfg.train.knn_monitor and self.dist.is_main

    def monitor(self) -> dict[str, float]:
        """Cheap per-epoch health checks on the val split: kNN top-1 (a subset of train as
        memory bank) and, for methods with an embedding head, the head's std of
        l2-normalised outputs against 1/sqrt(d) and its RankMe, so collapse is seen while
        it happens rather than at the end."""
        t = self.cfg.train
        bank = self.data.train.subset(slice(0, t.knn_monitor_size))
        val = self.data.val.subset(slice(0, max(1, t.knn_monitor_size // 2)))
        kw = {
            "views": self.views,
            "device": self.device,
            "batch_size": self.cfg.eval.batch_size,
            "precision": t.precision,
        }
        # Pooled and head features from one pass; the spatial maps are not kept.
        f_bank = extract_features(self.method, bank.images, **kw, spatial=False)
        f_val = extract_features(self.method, val.images, **kw, spatial=False)
        out = {
            "knn_val_top1": knn_eval(
                f_bank["pooled"],
                bank.labels,
                f_val["pooled"],
                val.labels,
                self.data.num_classes,
                self.cfg.eval.knn_k,
                self.cfg.eval.knn_t,
            )["top1"]
        }
        if "head" in f_val:
            head = f_val["head"]
            out.update(
                head_std=embedding_std(head),
                head_std_ref=head.shape[1] ** -0.5,
                head_rankme=rankme(head),
            )
        return out
