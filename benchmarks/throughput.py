"""Throughput of ssl-bench against the way lightly's own examples train, side by side.

(a) views/s: the batched view engine vs lightly's per-image PIL ``SimCLRTransform``,
    same images, same output size, two views per image.
(b) training images/s: ``ssl-bench run simclr`` (its trainer, in fp32 on whole 32 px
    views, so the same work per image as the reference) vs a
    reference loop written like lightly's examples: a torch DataLoader over PIL images
    with lightly's transform and one worker per core, the same backbone, projection
    head, NT-Xent loss, optimiser and batch size. Runs are interleaved, so machine
    noise hits both sides alike, and only ratios are reported.
(c) the ceiling: the same model step on two fixed, ready-made view batches (no data at
    all), interleaved with (b). Both loops are reported as a share of it: what a loop
    can still gain, and what only faster kernels can.
(d) ``ssl-bench run simclr`` at its own defaults (24 px training views, bf16 where the CPU
    multiplies it natively) against the same reference: what a user sees, not a like-
    for-like ratio.

    python benchmarks/throughput.py [--rounds 2] [--steps 30]

Prints the ratios and writes benchmarks/results/throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules.heads import SimCLRProjectionHead
from lightly.transforms import SimCLRTransform
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ssl_bench.cli import _parser, resolve_config
from ssl_bench.data.datasets import channel_stats, load_dataset
from ssl_bench.data.views import ViewGenerator, resolve_views
from ssl_bench.method import DataInfo, build_method
from ssl_bench.runner import run
from ssl_bench.runtime import versions

RESULTS = Path(__file__).parent / "results" / "throughput.json"


class PILDataset(Dataset):
    def __init__(self, images: torch.Tensor, transform) -> None:  # noqa: ANN001
        self.images = [Image.fromarray(im.permute(1, 2, 0).numpy()) for im in images]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):  # noqa: ANN204
        return self.transform(self.images[i])


def lightly_transform(size: int, mean: list[float], std: list[float]) -> SimCLRTransform:
    # Same strengths as our SimCLR views (crop scale, jitter, grayscale, blur, flip).
    from ssl_bench.config import AugConfig

    a = AugConfig()
    return SimCLRTransform(
        input_size=size,
        cj_prob=0.8,
        cj_bright=a.brightness,
        cj_contrast=a.contrast,
        cj_sat=a.saturation,
        cj_hue=a.hue,
        min_scale=a.crop_min_scale,
        random_gray_scale=0.2,
        gaussian_blur=0.5,
        sigmas=(a.blur_sigma_min, a.blur_sigma_max),
        vf_prob=0.0,
        hf_prob=0.5,
        rr_prob=0.0,
        normalize={"mean": mean, "std": std},
    )


def bench_views(images: torch.Tensor, seconds: float = 5.0) -> dict[str, float]:
    mean, std = channel_stats(images)
    size = images.shape[-1]
    # Ours: two SimCLR views per image, batches of 256.
    cfg = resolve_config(_parser().parse_args(["run", "simclr"]))
    method = build_method(cfg, DataInfo(10, size, []))
    specs = resolve_views(method.views(), cfg.aug, size)
    gen, g = ViewGenerator(mean, std), torch.Generator().manual_seed(0)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = images[(n % len(images)) : (n % len(images)) + 256]
        gen(batch, specs, g)
        n += len(batch)
    ours = n / (time.perf_counter() - start)
    # lightly: the per-image PIL pipeline, on the same images.
    ds = PILDataset(images, lightly_transform(size, mean, std))
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        ds[n % len(ds)]
        n += 1
    theirs = n / (time.perf_counter() - start)
    return {
        "ssl_bench_views_per_s": 2 * ours,
        "lightly_views_per_s": 2 * theirs,
        "ratio": ours / theirs,
    }


def reference_model(images: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """The model side of the lightly-style loop: our default backbone, lightly's head and
    loss, SGD; the same in the reference loop and the ceiling."""
    cfg = resolve_config(_parser().parse_args(["run", "simclr"]))
    torch.manual_seed(0)
    backbone = build_method(cfg, DataInfo(10, images.shape[-1], [])).backbone
    head = SimCLRProjectionHead(
        backbone.dim, cfg.method.proj_hidden_dim, cfg.method.proj_output_dim
    )
    criterion = NTXentLoss(temperature=cfg.method.temperature)
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.3, momentum=0.9, weight_decay=5e-4)

    def train_step(x0: torch.Tensor, x1: torch.Tensor) -> None:
        loss = criterion(head(backbone(x0)), head(backbone(x1)))
        opt.zero_grad()
        loss.backward()
        opt.step()

    return train_step


def reference_loop(images: torch.Tensor, steps: int, batch_size: int) -> float:
    """lightly-example training: DataLoader + PIL transform, one worker per core."""
    train_step = reference_model(images)
    mean, std = channel_stats(images)
    loader = DataLoader(
        PILDataset(images, lightly_transform(images.shape[-1], mean, std)),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=os.cpu_count() or 1,
        persistent_workers=True,
    )
    done, seen, start = 0, 0, None
    while done < steps + 2:
        for views in loader:
            if done == 2:  # skip worker start-up and the first steps
                start, seen = time.perf_counter(), 0
            train_step(views[0], views[1])
            done += 1
            seen += len(views[0])
            if done >= steps + 2:
                break
    return seen / (time.perf_counter() - start)


def ceiling_loop(images: torch.Tensor, steps: int, batch_size: int) -> float:
    """The model step alone on two fixed, ready-made view batches: no data pipeline, no
    bookkeeping. No loop with this model can beat it; what is left above it is the
    backbone's kernels (benchmarks/utilisation.py)."""
    train_step = reference_model(images)
    x0 = torch.randn(batch_size, 3, images.shape[-1], images.shape[-1])
    x1 = torch.randn_like(x0)
    for _ in range(2):
        train_step(x0, x1)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(x0, x1)
    return steps * batch_size / (time.perf_counter() - start)


# The same work as the reference loop: fp32 and whole 32 px views. By default a run
# trains on 24 px views (0.56x the pixels) and under bf16 where the CPU multiplies it
# natively, which would flatter the ratio with work the reference loop does not skip.
SAME_WORK = ["--set", "train.precision=fp32", "--set", "aug.view_scale=1.0"]


def ours_loop(steps_per_epoch: int, epochs: int, batch_size: int, same_work: bool = True) -> float:
    args = [
        "run",
        "simclr",
        "--no-progress",
        "--no-eval",
        "--epochs",
        str(epochs),
        "--batch-size",
        str(batch_size),
        "--set",
        "train.knn_monitor=false",
        "--set",
        f"data.train_size={steps_per_epoch * batch_size}",
        *(SAME_WORK if same_work else []),
    ]
    cfg = resolve_config(_parser().parse_args(args))
    with tempfile.TemporaryDirectory() as tmp:
        summary = run(cfg, Path(tmp) / "run")
    return summary["train_images_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds of (b)")
    p.add_argument("--steps", type=int, default=30, help="training steps per side per round")
    p.add_argument("--batch-size", type=int, default=256)
    args = p.parse_args()

    data = load_dataset(resolve_config(_parser().parse_args(["run", "simclr"])).data)
    images = data.train.images
    views = bench_views(images)
    print(
        f"(a) views/s: ssl-bench {views['ssl_bench_views_per_s']:.0f}, lightly PIL "
        f"{views['lightly_views_per_s']:.0f} per core-process -> {views['ratio']:.1f}x"
    )

    ours, ref, top, defaults = [], [], [], []
    for r in range(args.rounds):
        ours.append(ours_loop(args.steps, 1, args.batch_size))
        ref.append(reference_loop(images, args.steps, args.batch_size))
        top.append(ceiling_loop(images, args.steps, args.batch_size))
        defaults.append(ours_loop(args.steps, 1, args.batch_size, same_work=False))
        print(
            f"    round {r + 1}: ssl-bench {ours[-1]:.0f} img/s, "
            f"lightly-style loop {ref[-1]:.0f} img/s, model step alone {top[-1]:.0f} img/s "
            f"(all fp32, 32 px views); ssl-bench at its defaults {defaults[-1]:.0f} img/s"
        )
    ratio = statistics.median(o / t for o, t in zip(ours, ref))
    defaults_ratio = statistics.median(d / t for d, t in zip(defaults, ref))
    ours_share = statistics.median(o / c for o, c in zip(ours, top))
    ref_share = statistics.median(t / c for t, c in zip(ref, top))
    print(
        f"(b) training images/s: ssl-bench / lightly-style loop = {ratio:.2f}x (median of rounds)"
    )
    print(
        f"(c) against the model step alone: ssl-bench {100 * ours_share:.0f}%, lightly-style "
        f"loop {100 * ref_share:.0f}%; the model step alone is "
        f"{1 / ref_share:.2f}x the lightly-style loop, the most any loop can reach"
    )
    print(
        f"(d) ssl-bench at its defaults (the dataset recipe's view size; bf16 where the CPU "
        f"multiplies it natively) / the lightly-style loop = {defaults_ratio:.2f}x: less "
        f"work per image, not a faster loop"
    )

    result = {
        "views": views,
        "training": {
            "ssl_bench_images_per_s": ours,
            "reference_images_per_s": ref,
            "model_step_alone_images_per_s": top,
            "ratio_median": ratio,
            "ssl_bench_defaults_images_per_s": defaults,
            "defaults_ratio_median": defaults_ratio,
            "same_work_settings": " ".join(SAME_WORK),
            "ssl_bench_share_of_model_step": ours_share,
            "reference_share_of_model_step": ref_share,
            "batch_size": args.batch_size,
            "steps_per_round": args.steps,
            "backbone": "small_cnn",
            "image_size": 32,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
        },
        "versions": versions(),
        "command": "python benchmarks/throughput.py",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
