import torch
import torch.nn.functional as F

from ssl_bench.eval.knn import knn_eval, knn_scores


def brute_force(train, train_labels, query, num_classes, k, T):
    """The obviously-correct reference: full similarity matrix, sort, vote."""
    sims = F.normalize(query, dim=1) @ F.normalize(train, dim=1).T
    top, idx = sims.sort(dim=1, descending=True)
    scores = torch.zeros(len(query), num_classes)
    for q in range(len(query)):
        for j in range(k):
            scores[q, train_labels[idx[q, j]]] += torch.exp(top[q, j] / T)
    return scores


def test_faiss_knn_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(5, 16, generator=g) * 2
    labels = torch.randint(0, 5, (300,), generator=g)
    train = centers[labels] + torch.randn(300, 16, generator=g)
    q_labels = torch.randint(0, 5, (50,), generator=g)
    query = centers[q_labels] + torch.randn(50, 16, generator=g)
    for k, T in [(1, 0.07), (20, 0.07), (200, 0.1)]:
        ours = knn_scores(train, labels, query, 5, k, T)
        ref = brute_force(train, labels, query, 5, k, T)
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-3)
        assert torch.equal(ours.argmax(1), ref.argmax(1))
    result = knn_eval(train, labels, query, q_labels, 5)
    assert result["k"] == 20 and result["T"] == 0.07 and result["top1"] > 0.8
    assert result["top5"] == 1.0


def test_faiss_loads_its_openblas_with_the_kernels_for_this_cpu(monkeypatch):
    import os
    import sys

    from ssl_bench import blas

    for capability, core in [("AVX512", "SkylakeX"), ("AVX2", "Haswell"), ("DEFAULT", None)]:
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        assert blas.openblas_core() == core
    monkeypatch.undo()

    # A first import sets the core type from this CPU (where OpenBLAS should not decide)...
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.delitem(sys.modules, "faiss", raising=False)
    assert hasattr(blas.import_faiss(), "knn")
    assert os.environ.get("OPENBLAS_CORETYPE") == blas.openblas_core()
    # ... and never overrides a user's choice.
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Zen")
    monkeypatch.delitem(sys.modules, "faiss", raising=False)
    blas.import_faiss()
    assert os.environ["OPENBLAS_CORETYPE"] == "Zen"
