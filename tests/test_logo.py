"""LoGo: the affinity network and the encoder never update each other; crops and targets."""

import torch
from helpers import views_for
from ssl_bench.methods.logo import info_nce

from ssl_bench.layering import resolve
from ssl_bench.method import DataInfo, build_method
from ssl_bench.optim import build_optimizer

INFO = DataInfo(num_classes=4, image_size=16, classes=list("abcd"), num_train=64)


def make(*sets):
    cfg = resolve("logo", set_items=["model.width=4", "data.image_size=16", *sets])
    torch.manual_seed(0)
    return build_method(cfg, INFO), cfg


def encoder_params(method):
    return [p for n, p in method.named_parameters() if not n.startswith("affinity.")]


def test_affinity_optimiser_never_updates_the_encoder():
    method, cfg = make()
    opt = build_optimizer(method, cfg.optim, 1e-2)
    l0, l1 = (method.embed_head(v) for v in views_for(method, cfg)[2:4])
    net_loss, _ = method.affinity_terms(l0, l1)
    before = [p.detach().clone() for p in encoder_params(method)]
    opt.zero_grad(set_to_none=True)
    net_loss.backward()
    assert all(p.grad is None for p in encoder_params(method) if p.requires_grad)
    assert any(p.grad.abs().sum() > 0 for p in method.affinity.parameters())
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, encoder_params(method)))
    # ...and the encoder's repulsion term moves the embeddings, never the affinity network.
    opt.zero_grad(set_to_none=True)
    l0, l1 = (method.embed_head(v) for v in views_for(method, cfg)[2:4])
    method.affinity_terms(l0, l1)[1].backward()
    assert all(p.grad is None for p in method.affinity.parameters())
    assert next(method.backbone.parameters()).grad.abs().sum() > 0


def test_affinity_group_has_its_own_lr_and_no_weight_decay():
    method, cfg = make("method.affinity_lr_scale=5")
    groups = [g for g in method.param_groups() if g["name"].endswith("_affinity")]
    assert all(g["lr_scale"] == 5 and g["weight_decay"] == 0.0 for g in groups)
    assert {id(p) for g in groups for p in g["params"]} == {
        id(p) for p in method.affinity.parameters()
    }


def test_targets_see_only_globals_and_locals_have_their_size():
    method, cfg = make("method.local_size=8", "method.n_local=3", "method.momentum_base=0.99")
    views = views_for(method, cfg)
    assert [v.shape[-1] for v in views] == [16, 16, 8, 8, 8]
    seen = []
    handle = method.target_backbone.register_forward_pre_hook(
        lambda mod, args: seen.append(tuple(args[0].shape[-2:]))
    )
    out = method.training_step(views, torch.zeros(8).long(), 0, 10)
    handle.remove()
    assert seen == [(16, 16), (16, 16)]
    assert {"global_global", "local_global", "affinity_loss", "local_affinity"} <= set(out)


def test_plain_multicrop_arm_has_no_affinity_network():
    method, cfg = make("method.local_repulsion=false")
    assert method.affinity is None
    out = method.training_step(views_for(method, cfg), torch.zeros(8).long(), 0, 10)
    expected = out["global_global"] + out["local_global"]
    torch.testing.assert_close(out["loss"].detach(), expected)


def test_info_nce_is_low_for_matching_keys_and_high_for_shuffled():
    q = torch.eye(6) * 5
    assert info_nce(q, q, 0.1).item() < 1e-3
    assert info_nce(q, q.roll(1, dims=0), 0.1).item() > 5


def test_default_targets_are_the_detached_online_globals():
    method, cfg = make()
    assert not hasattr(method, "target_backbone")
    method.eval()  # BatchNorm on running stats: the same input gives the same embedding
    views = views_for(method, cfg)
    out = method.training_step(views, torch.zeros(8).long(), 0, 10)
    g0, g1 = (method.embed_head(v) for v in views[:2])
    t = cfg.method.temperature
    expected = (info_nce(g0, g1, t) + info_nce(g1, g0, t)) / 2
    torch.testing.assert_close(out["global_global"], expected.detach())
