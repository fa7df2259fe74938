"""CUDA path check and GPU throughput (images/s, bf16) of ssl-bench.

Run on a machine with a GPU; it exits early (rc 2) without one. It checks that the same
code that runs on CPU runs on CUDA (device chosen automatically, bf16 autocast, views
made on the GPU, finite losses, checkpoints, kNN eval) and records throughput:

    python benchmarks/gpu_check.py [--out benchmarks/results/gpu_check.json]

- views/s of the batched view engine on the GPU (SimCLR's two views, uint8 -> float);
- training images/s of `ssl-bench run simclr` and `run byol` on `shapes` (bf16);
- forward+backward images/s of each backbone at 32 px, bf16 vs fp32 in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from ssl_bench import checkpoint
from ssl_bench.backbones import build_backbone
from ssl_bench.config import ModelConfig
from ssl_bench.data.datasets import channel_stats, load_dataset
from ssl_bench.data.views import ViewGenerator, resolve_views
from ssl_bench.layering import resolve
from ssl_bench.method import DataInfo, build_method
from ssl_bench.runner import run
from ssl_bench.runtime import versions


def timed(fn, seconds: float = 3.0) -> tuple[int, float]:  # noqa: ANN001
    torch.cuda.synchronize()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        n += fn()
    torch.cuda.synchronize()
    return n, time.perf_counter() - start


def views_per_s(images: torch.Tensor) -> float:
    cfg = resolve("simclr")
    method = build_method(cfg, DataInfo(10, 32, []))
    specs = resolve_views(method.views(), cfg.aug, 32)
    gen = ViewGenerator(*channel_stats(images.cpu()))
    g = torch.Generator(device="cuda").manual_seed(0)
    batch = images[:1024]

    def step() -> int:
        gen(batch, specs, g)
        return 2 * len(batch)

    step()
    n, dt = timed(step)
    return n / dt


def backbone_speed(name: str, dtype: torch.dtype | None) -> float:
    net = build_backbone(ModelConfig(backbone=name), 32).cuda()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x = torch.randn(512, 3, 32, 32, device="cuda")

    def step() -> int:
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = net(x).float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return len(x)

    for _ in range(3):
        step()
    n, dt = timed(step)
    return n / dt


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_check.json"))
    p.add_argument("--epochs", type=int, default=5)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check", file=sys.stderr)
        return 2
    result: dict = {"device": torch.cuda.get_device_name(), "versions": versions()}

    data = load_dataset(resolve("simclr").data)
    images = data.train.images.cuda()
    result["views_per_s"] = views_per_s(images)
    print(f"views/s on GPU: {result['views_per_s']:.0f}")

    result["runs"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("simclr", "byol"):
            cfg = resolve(
                method,
                set_items=[
                    f"train.epochs={args.epochs}",
                    "train.progress=false",
                    "train.batch_size=512",
                ],
            )
            summary = run(cfg, Path(tmp) / method)
            state = checkpoint.load(Path(tmp) / method / "checkpoints/last.pt")
            finite = all(
                torch.isfinite(v).all().item()
                for v in state["model"].values()
                if v.is_floating_point()
            )
            result["runs"][method] = {
                "device": summary["device"],
                "precision": summary["precision"],
                "epochs": summary["epochs"],
                "batch_size": summary["batch_size"],
                "train_images_per_s": summary["train_images_per_s"],
                "knn_top1": summary["eval"]["knn"]["top1"],
                "weights_finite": finite,
            }
            print(method, result["runs"][method])

    result["backbones"] = {}
    for name in ("small_cnn", "resnet18", "vit_tiny"):
        bf16, fp32 = backbone_speed(name, torch.bfloat16), backbone_speed(name, None)
        result["backbones"][name] = {
            "bf16_images_per_s": bf16,
            "fp32_images_per_s": fp32,
            "bf16_over_fp32": bf16 / fp32,
        }
        print(name, result["backbones"][name])
    result["command"] = "python benchmarks/gpu_check.py"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
