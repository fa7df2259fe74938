"""faiss, imported so that its bundled OpenBLAS uses this CPU's vector units.

The faiss-cpu wheels (1.15.1) bundle OpenBLAS 0.3.15, whose run-time CPU detection
predates some current CPUs: on an Intel Xeon with AVX-512 (Ice Lake, cpuid model 106) it
falls back to its SSE3 "Prescott" kernels, and the exact kNN search (one large sgemm) ran
at 32 GFLOP/s against torch's 240 on the same cores, 6.7x slower than with the AVX-512
kernels (benchmarks/results/profile.md, 2026-12-05). OpenBLAS reads the kernel family
from ``OPENBLAS_CORETYPE`` once, when the library loads, so it is set before faiss is
first imported: from the instruction set torch found on this CPU, and only when the user
has not chosen one.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

import torch

# torch's CPU capability -> the OpenBLAS kernel family built for that instruction set.
OPENBLAS_CORES = {"AVX512": "SkylakeX", "AVX2": "Haswell"}


def openblas_core() -> str | None:
    """The OpenBLAS core type for this CPU, or None where OpenBLAS should decide."""
    return OPENBLAS_CORES.get(torch.backends.cpu.get_cpu_capability())


def import_faiss() -> ModuleType:
    """``import faiss`` with its OpenBLAS kernels pinned to this CPU's instruction set.

    A no-op for the kernels once faiss is loaded (a user's own import came first) or when
    ``OPENBLAS_CORETYPE`` is already set.
    """
    if "faiss" not in sys.modules and (core := openblas_core()):
        os.environ.setdefault("OPENBLAS_CORETYPE", core)
    import faiss

    return faiss
