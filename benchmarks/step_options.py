"""Two per-step options measured side by side, on the same inputs and in one process:

(a) the optimiser update on BYOL's default parameters (small_cnn + heads, ~1.4M, three
    groups): torch's per-tensor loop (what AdamW picks on the CPU), ``foreach=True`` and
    ``fused=True``; each one's ms per update, and whether 50 updates of a small network
    end bit-identical to the per-tensor loop;
(b) the two paths of the views' subset ops (colour jitter with a per-sample op order,
    blur): on a subset of the batch (the CPU's) and on the whole batch with a select
    (accelerators': no host-device sync); ms per call at several batch sizes, and
    whether they agree bit for bit;
(c) a kNN-sized product, (queries x 512) @ (512 x 50,000), in fp32, bf16, fp16 and int8
    (``torch._int_mm``), with a 2048² fp32 matmul's FLOP/s: whether a low-precision
    candidate pass could speed up an exact kNN on this CPU.

    python benchmarks/step_options.py [--rounds 3]

Prints the figures; what they decided is in benchmarks/results/profile.md.
"""

from __future__ import annotations

import argparse
import copy
import functools
import time
from collections.abc import Callable

import torch
from torch import nn

from ssl_bench.data import ops
from ssl_bench.data.datasets import load_dataset
from ssl_bench.flops import matmul_flops_per_s
from ssl_bench.layering import resolve
from ssl_bench.method import DataInfo, build_method

OPTIONS = {"per-tensor": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def ms(fn: Callable[[], object], n: int) -> float:
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return 1e3 * (time.perf_counter() - start) / n


def optimizer_options(rounds: int) -> None:
    cfg = resolve("byol", set_items=["data.train_size=64"])
    method = build_method(cfg, DataInfo.of(load_dataset(cfg.data)))
    params = [p for p in method.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    thirds = [params[i::3] for i in range(3)]
    print(f"(a) AdamW update, {sum(p.numel() for p in params):,} parameters in 3 groups")
    for r in range(rounds):
        row = []
        for name, kw in OPTIONS.items():
            opt = torch.optim.AdamW([{"params": g} for g in thirds], lr=1e-3, **kw)
            row.append(f"{name} {ms(opt.step, 30):.1f} ms")
        print(f"  round {r + 1}: " + ", ".join(row))
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, 32))
    ends = {}
    for name, kw in OPTIONS.items():
        twin = copy.deepcopy(net)
        opt = torch.optim.AdamW(twin.parameters(), lr=3e-3, weight_decay=1e-4, **kw)
        g = torch.Generator().manual_seed(1)
        for _ in range(50):
            opt.zero_grad(set_to_none=True)
            twin(torch.randn(32, 64, generator=g)).pow(2).mean().backward()
            opt.step()
        ends[name] = torch.cat([p.detach().flatten() for p in twin.parameters()])
    for name in ("foreach", "fused"):
        gap = (ends[name] - ends["per-tensor"]).abs().max().item()
        print(f"  {name} after 50 updates: max |difference| from per-tensor {gap:.2e}")


def view_paths(rounds: int) -> None:
    print("(b) views' subset ops: subset path / whole-batch path, ms per call")
    cpu_rule = ops.on_subsets
    for batch in (8, 64, 128):
        g = torch.Generator().manual_seed(batch)
        x = torch.rand(batch, 3, 32, 32, generator=g)
        factors = torch.stack(
            [0.6 + 0.8 * torch.rand(batch, generator=g) for _ in range(3)]
            + [0.2 * torch.rand(batch, generator=g) - 0.1],
            dim=1,
        )
        order = torch.rand(batch, 4, generator=g).argsort(dim=1)
        apply = torch.rand(batch, generator=g) < 0.8
        sigma = 0.1 + 1.9 * torch.rand(batch, generator=g)
        blur = torch.rand(batch, generator=g) < 0.5

        jitter = functools.partial(ops.color_jitter, x, factors, order, apply)
        blurred = functools.partial(ops.gaussian_blur, x, sigma, 3, blur)
        times: dict[str, list[float]] = {"jitter": [], "blur": []}
        outs = []
        for whole in (False, True):
            ops.on_subsets = (lambda d: False) if whole else cpu_rule
            times["jitter"].append(min(ms(jitter, 20) for _ in range(rounds)))
            times["blur"].append(min(ms(blurred, 20) for _ in range(rounds)))
            outs.append((jitter(), blurred()))
        same = all(torch.equal(a, b) for a, b in zip(*outs))
        print(
            f"  batch {batch}: jitter {times['jitter'][0]:.1f} / {times['jitter'][1]:.1f}, "
            f"blur {times['blur'][0]:.2f} / {times['blur'][1]:.2f}; bit-identical: {same}"
        )
    ops.on_subsets = cpu_rule


def precisions(queries: int = 500) -> None:
    peak = matmul_flops_per_s(torch.device("cpu"), "fp32") / 1e9
    print(f"(c) ({queries} x 512) @ (512 x 50,000); 2048² fp32 matmul {peak:.0f} GFLOP/s")
    g = torch.Generator().manual_seed(0)
    q, bank = torch.randn(queries, 512, generator=g), torch.randn(50_000, 512, generator=g)
    qi = torch.randint(-127, 127, (queries, 512), dtype=torch.int8, generator=g)
    bank_i = torch.randint(-127, 127, (50_000, 512), dtype=torch.int8, generator=g)
    products = {
        "fp32": lambda: q @ bank.T,
        "bf16": functools.partial(torch.matmul, q.bfloat16(), bank.bfloat16().T),
        "fp16": functools.partial(torch.matmul, q.half(), bank.half().T),
        "int8": functools.partial(torch._int_mm, qi, bank_i.T),
    }
    fp32 = ms(products["fp32"], 3)
    for name, fn in products.items():
        t = fp32 if name == "fp32" else ms(fn, 1)
        print(f"  {name}: {t:.0f} ms, {fp32 / t:.2f}x fp32")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    optimizer_options(args.rounds)
    view_paths(args.rounds)
    precisions()


if __name__ == "__main__":
    main()
