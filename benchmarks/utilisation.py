"""How much of the machine each backbone's training step uses: achieved FLOP/s of a
forward + backward pass (FLOPs counted by PyTorch's FlopCounterMode) over the FLOP/s of
a 2048^2 matmul measured in the same run, the machine's practical peak.

    python benchmarks/utilisation.py [--backbones small_cnn,resnet18,vit_tiny] [--batch 256]
                                     [--compile]

``--compile`` also times ``torch.compile`` of each backbone (inductor) on the same input,
after its compile time, which is reported on its own: the speedup a run would get from
compiling once it has paid for it (issue 15, item 2).

Writes benchmarks/results/utilisation.json and prints one line per backbone.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ssl_bench.backbones import build_backbone
from ssl_bench.config import ModelConfig
from ssl_bench.flops import measure_matmul_flops_per_s
from ssl_bench.runtime import autocast, versions

RESULTS = Path(__file__).parent / "results" / "utilisation.json"


def step(net: torch.nn.Module, x: torch.Tensor, device: torch.device, precision: str) -> None:
    with autocast(device, precision):
        out = net(x)
    out.float().pow(2).mean().backward()


def images_per_s(
    net: torch.nn.Module, x: torch.Tensor, device: torch.device, precision: str
) -> float:
    for _ in range(2):  # warm-up
        step(net, x, device, precision)
    reps, start = 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - start < 3.0:
        step(net, x, device, precision)
        reps += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return len(x) * reps / (time.perf_counter() - start)


def measure(
    name: str, batch: int, size: int, device: torch.device, precision: str, compiled: bool
) -> dict:
    net = build_backbone(ModelConfig(backbone=name), size).to(device).train()
    x = torch.full((batch, 3, size, size), 0.5, device=device)
    with FlopCounterMode(display=False) as counter:
        step(net, x[:8], device, precision)
    flops = counter.get_total_flops() / 8  # per image, forward + backward
    img_s = images_per_s(net, x, device, precision)
    row = {
        "backbone": name,
        "batch": batch,
        "image_size": size,
        "gflops_per_image": flops / 1e9,
        "images_per_s": img_s,
        "achieved_gflops_per_s": flops * img_s / 1e9,
    }
    if compiled:
        fast = torch.compile(net)
        start = time.perf_counter()
        step(fast, x, device, precision)  # the first call compiles (forward and backward)
        row["compile_seconds"] = time.perf_counter() - start
        row["compiled_images_per_s"] = images_per_s(fast, x, device, precision)
        row["eager_again_images_per_s"] = images_per_s(net, x, device, precision)
        # Against the mean of the eager runs before and after, so drift hits both sides.
        row["compile_speedup"] = row["compiled_images_per_s"] / (
            (img_s + row["eager_again_images_per_s"]) / 2
        )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", default="small_cnn,resnet18,vit_tiny")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = ap.parse_args()
    device = torch.device(args.device)
    rows = []
    for name in args.backbones.split(","):
        peak = measure_matmul_flops_per_s(device, args.precision)  # beside each, so noise hits both
        r = measure(name, args.batch, args.size, device, args.precision, args.compile)
        r["matmul_peak_gflops_per_s"] = peak / 1e9
        r["utilisation"] = r["achieved_gflops_per_s"] / r["matmul_peak_gflops_per_s"]
        rows.append(r)
        print(
            f"{name:>10}: {r['gflops_per_image'] * 1e3:.0f} MFLOP/image, "
            f"{r['images_per_s']:.0f} img/s, {r['achieved_gflops_per_s']:.0f} GFLOP/s = "
            f"{100 * r['utilisation']:.0f}% of a matmul's {r['matmul_peak_gflops_per_s']:.0f}"
        )
        if args.compile:
            print(
                f"{'':>10}  torch.compile: {r['compiled_images_per_s']:.0f} img/s = "
                f"{r['compile_speedup']:.2f}x eager, after {r['compile_seconds']:.0f} s compiling"
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "device": str(device),
                "threads": torch.get_num_threads(),
                "command": "python benchmarks/utilisation.py"
                + (" --compile" if args.compile else ""),
                "versions": versions(),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
