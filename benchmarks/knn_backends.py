"""Is the kNN search at the machine's limit? faiss's exact inner-product search against a
blocked torch matmul + topk on the same features, beside a 2048² matmul's FLOP/s.

    python benchmarks/knn_backends.py

50,000 x 512 memory bank, 10,000 queries, k = 20 (the issue's kNN benchmark size). The
search is one (10,000 x 512) @ (512 x 50,000) product, 0.51 TFLOP; if faiss's achieved
FLOP/s is at the matmul's, no exact float32 search can be much faster on this machine.
Prints the figures and the fraction of identical neighbour indices.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ssl_bench.blas import import_faiss
from ssl_bench.flops import matmul_flops_per_s

faiss = import_faiss()


def main(n_train: int = 50_000, n_query: int = 10_000, dim: int = 512, k: int = 20) -> None:
    g = torch.Generator().manual_seed(0)
    bank = F.normalize(torch.randn(n_train, dim, generator=g), dim=1)
    query = F.normalize(torch.randn(n_query, dim, generator=g), dim=1)

    def with_faiss() -> torch.Tensor:
        index = faiss.IndexFlatIP(dim)
        index.add(bank.numpy())
        return torch.from_numpy(index.search(query.numpy(), k)[1])

    def with_torch(block: int = 2048) -> torch.Tensor:
        return torch.cat([(b @ bank.T).topk(k, dim=1).indices for b in query.split(block)])

    seconds, found = {}, {}
    for name, search in (("faiss", with_faiss), ("torch", with_torch)) * 2:  # second: warm
        start = time.perf_counter()
        found[name] = search()
        seconds[name] = time.perf_counter() - start
    same = (found["faiss"] == found["torch"]).float().mean().item()
    flops = 2 * n_train * n_query * dim
    peak = matmul_flops_per_s(torch.device("cpu"), "fp32")
    t_faiss, t_torch = seconds["faiss"], seconds["torch"]
    print(f"faiss {t_faiss:.2f} s ({flops / t_faiss / 1e9:.0f} GFLOP/s)")
    print(f"torch matmul + topk {t_torch:.2f} s (faiss {t_torch / t_faiss:.2f}x faster)")
    print(f"2048^2 matmul {peak / 1e9:.0f} GFLOP/s; faiss at {flops / t_faiss / peak:.0%} of it")
    print(f"identical neighbour indices: {same:.4%}")


if __name__ == "__main__":
    main()
