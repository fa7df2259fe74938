"""Every registered method gets a one-step smoke test for free; losses vs references."""

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import views_for

from ssl_bench.errors import UserError
from ssl_bench.layering import resolve
from ssl_bench.method import DataInfo, build_method
from ssl_bench.registry import METHODS

INFO = DataInfo(num_classes=4, image_size=16, classes=["a", "b", "c", "d"])


def make(name, *sets):
    cfg = resolve(
        name,
        # small CNNs, and ViTs (clip, detailclip) with one block on a 4x4 token grid
        set_items=[
            "model.width=4",
            "data.image_size=16",
            "model.patch_size=4",
            "model.depth=1",
            *sets,
        ],
    )
    torch.manual_seed(0)
    return build_method(cfg, INFO), cfg


VARIANTS = [(name, ()) for name in METHODS.names()] + [
    ("simclr", ("method.negatives=false",)),
    ("byol", ("method.predictor=false",)),
    ("byol", ("method.momentum_base=0", "method.momentum_schedule=constant")),
    ("byol", ("method.momentum_base=1",)),
    ("byol", ("method.joint_views=true",)),
    ("logo", ("method.local_repulsion=false",)),
    ("logo", ("method.momentum_base=0.99",)),
    ("detailclip", ("method.removal=random",)),
    ("detailclip", ("method.removal=none",)),
    ("detailclip", ("method.cls_weight=0", "method.patch_weight=0")),
]


@pytest.mark.parametrize("name, sets", VARIANTS, ids=[f"{n}{''.join(s)}" for n, s in VARIANTS])
def test_one_training_step(name, sets):
    method, cfg = make(name, *sets)
    x = views_for(method, cfg)[0]
    assert method.embed(x).ndim == 2 and method.embed_spatial(x).ndim == 4
    method.eval()  # one feature path: what the cache stores is what embed gives
    with torch.no_grad():
        f = method.features(x)
        torch.testing.assert_close(f["pooled"], method.embed(x))
        torch.testing.assert_close(f["spatial"], method.embed_spatial(x))
    method.train()
    if not method.trainable:
        return
    labels = method.training_targets(
        torch.tensor([0, 1, 2, 3, 0, 1, -1, -1])
    )  # captions' ids for CLIP
    opt = torch.optim.SGD([p for g in method.param_groups() for p in g["params"]], lr=0.01)
    out = method.training_step(views_for(method, cfg), labels, step=0, total_steps=10)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    grads = [p.grad for g in method.param_groups() for p in g["params"]]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    opt.step()
    method.after_optimizer_step(1, 10)


def nt_xent_reference(z0, z1, t):
    """SimCLR's loss written out: for each of the 2N embeddings, softmax over the 2N - 1
    others with its positive as the target."""
    z = F.normalize(torch.cat([z0, z1]), dim=1)
    n = len(z0)
    total = 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        logits = [float(z[i] @ z[j]) / t for j in range(2 * n) if j != i]
        target = float(z[i] @ z[pos]) / t
        total += -target + math.log(sum(math.exp(v) for v in logits))
    return total / (2 * n)


def test_simclr_loss_against_reference():
    method, cfg = make("simclr", "method.temperature=0.3")
    z0, z1 = torch.randn(6, 8), torch.randn(6, 8)
    assert abs(method.criterion(z0, z1).item() - nt_xent_reference(z0, z1, 0.3)) < 1e-4


def test_simclr_positive_only_has_no_negatives():
    method, cfg = make("simclr", "method.negatives=false")
    views = views_for(method, cfg)
    method.eval()
    loss = method.training_step(views, torch.zeros(8).long(), 0, 1)["loss"]
    z0, z1 = (method.embed_head(v) for v in views)
    expected = -F.cosine_similarity(z0, z1).mean() / cfg.method.temperature
    torch.testing.assert_close(loss, expected)


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def test_byol_target_is_ema_and_gets_no_gradients():
    method, cfg = make("byol", "method.momentum_base=0.5", "method.momentum_schedule=constant")
    assert all(not p.requires_grad for p in method.target_backbone.parameters())
    online, target = _params(method.backbone), _params(method.target_backbone)
    for p in method.backbone.parameters():
        p.data.add_(1.0)
    method.after_optimizer_step(1, 10)
    for o, t, new in zip(online, target, method.target_backbone.parameters()):
        torch.testing.assert_close(new, 0.5 * t + 0.5 * (o + 1.0))
    out = method.training_step(views_for(method, cfg), torch.zeros(8).long(), 0, 10)
    out["loss"].backward()
    assert all(p.grad is None for p in method.target_backbone.parameters())


@pytest.mark.parametrize("joint", [False, True])
def test_byol_joint_views_normalise_both_views_in_one_batch(joint):
    method, cfg = make("byol", f"method.joint_views={str(joint).lower()}")
    seen = []
    bn = next(m for m in method.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))
    views = views_for(method, cfg)
    method.training_step(views, torch.zeros(8).long(), 0, 10)
    b = views[0].shape[0]
    assert seen == ([2 * b] if joint else [b, b])


def test_byol_momentum_extremes():
    method, _ = make("byol", "method.momentum_base=0", "method.momentum_schedule=constant")
    for p in method.backbone.parameters():
        p.data.mul_(3.0)
    method.after_optimizer_step(5, 10)  # tau = 0: target = online
    for o, t in zip(method.backbone.parameters(), method.target_backbone.parameters()):
        assert torch.equal(o, t)
    method, _ = make("byol", "method.momentum_base=1")  # tau = 1: target frozen
    before = _params(method.target_backbone)
    for p in method.backbone.parameters():
        p.data.mul_(3.0)
    method.after_optimizer_step(5, 10)
    assert all(torch.equal(a, b) for a, b in zip(before, method.target_backbone.parameters()))
    default, _ = make("byol")  # CPU default: constant 0.99
    assert default.momentum(0, 100) == default.momentum(100, 100) == pytest.approx(0.99)
    paper, _ = make("byol", "method.momentum_schedule=cosine")  # paper: 0.99 -> 1, cosine
    assert paper.momentum(0, 100) == pytest.approx(0.99)
    assert paper.momentum(100, 100) == pytest.approx(1.0)


def test_supervised_ignores_unlabeled_images():
    method, cfg = make("supervised")
    views = views_for(method, cfg)
    all_unknown = method.training_step(views, torch.full((8,), -1), 0, 1)["loss"]
    assert torch.isnan(all_unknown)  # nothing to learn from: the trainer's guard stops it
    some = method.training_step(views, torch.tensor([0, 1, -1, -1, 2, 3, -1, -1]), 0, 1)["loss"]
    assert torch.isfinite(some)


def test_byol_predictor_lr_scale_splits_groups():
    method, _ = make("byol", "method.predictor_lr_scale=10")
    groups = method.param_groups()
    predictor = {id(p) for p in method.prediction_head.parameters()}
    scaled = [p for g in groups if g.get("lr_scale") == 10 for p in g["params"]]
    assert {id(p) for p in scaled} == predictor
    n_all = sum(len(g["params"]) for g in groups)
    assert n_all == sum(1 for p in method.parameters() if p.requires_grad)


def test_simsiam_loss_against_reference_and_stop_gradient():
    """SimSiam's loss written out (Chen & He, Algorithm 1): D(p, z) = -cos(p, sg(z))."""
    method, cfg = make("simsiam")
    views = views_for(method, cfg)
    torch.manual_seed(0)
    out = method.training_step(views, torch.zeros(8), 0, 10)["loss"]
    z0, z1 = (method.embed_head(v) for v in views)
    p0, p1 = method.prediction_head(z0), method.prediction_head(z1)
    ref = -0.5 * (
        F.cosine_similarity(p0, z1.detach()).mean() + F.cosine_similarity(p1, z0.detach()).mean()
    )
    torch.testing.assert_close(out, ref)
    # With stop-gradient the projector gets gradients only through the predicted side.
    z = method.embed_head(views[0])
    loss = -F.cosine_similarity(method.prediction_head(z), z.detach()).mean()
    loss.backward()
    assert all(p.grad is not None for p in method.prediction_head.parameters())


def test_simsiam_without_stop_gradient_lets_both_sides_pull():
    on, cfg = make("simsiam")
    off, _ = make("simsiam", "method.stop_gradient=false")
    views = views_for(on, cfg)
    for method in (on, off):
        method.training_step(views, torch.zeros(8), 0, 10)["loss"].backward()
    g_on = sum(p.grad.abs().sum() for p in on.projection_head.parameters())
    g_off = sum(p.grad.abs().sum() for p in off.projection_head.parameters())
    assert g_off > g_on  # the target side now also carries gradient


def test_byol_ema_scaling_rule_keeps_the_target_moving_as_far_per_epoch():
    # Busbridge et al. 2023: kappa times the batch -> tau ** kappa, so kappa fewer
    # updates decay the target's memory of the online network by the same factor.
    rule = "method.momentum_batch=64"
    same, _ = make("byol", rule)  # batch 64 = momentum_batch: tau as given
    assert same.momentum(0, 100) == 0.99
    big, _ = make("byol", rule, "train.batch_size=256")
    assert big.momentum(0, 100) == pytest.approx(0.99**4)
    off, _ = make("byol", "train.batch_size=256")  # default: no rule
    assert off.momentum(0, 100) == 0.99
    cosine, _ = make("byol", rule, "train.batch_size=256", "method.momentum_schedule=cosine")
    assert cosine.momentum(0, 100) == pytest.approx(0.99**4)
    assert cosine.momentum(100, 100) == pytest.approx(1.0)


def test_byol_rejects_a_negative_momentum_batch():
    with pytest.raises(UserError, match="method.momentum_batch must be >= 0"):
        make("byol", "method.momentum_batch=-1")


def test_byol_recipe_drops_solarisation_and_a_flag_restores_it():
    """BYOL's CPU recipe turns the paper's solarisation of its second view off (it cost
    BYOL kNN points on `shapes_noisy`, recipes.md 2026-12-07); DINO keeps it."""
    from ssl_bench.data.views import training_views

    def solarize_p(name, *sets):
        method, cfg = make(name, *sets)
        return [v.solarize_p for v in training_views(method.views(), cfg.aug, 16)]

    assert solarize_p("byol") == [0, 0]
    assert solarize_p("byol", "aug.solarize=true") == [0, 0.2]
    assert 0.2 in solarize_p("dino")
