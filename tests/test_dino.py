"""DINO: loss against a slow reference, teacher inputs, centring, crop sizes, freezing."""

import math

import torch
import torch.nn.functional as F
from helpers import views_for

from ssl_bench.layering import resolve
from ssl_bench.method import DataInfo, build_method
from ssl_bench.optim import apply_schedule, build_optimizer

INFO = DataInfo(num_classes=4, image_size=16, classes=list("abcd"), num_train=64)


def make(*sets):
    cfg = resolve(
        "dino",
        set_items=[
            "model.width=4",
            "data.image_size=16",
            "train.batch_size=16",
            "method.out_dim=64",
            "method.n_local=3",
            *sets,
        ],
    )
    torch.manual_seed(0)
    return build_method(cfg, INFO), cfg


def dino_reference(teacher, student, center, t_temp, s_temp):
    """Written out from the paper: average over pairs (teacher global i, student view j != i)
    of the cross-entropy between the centred, sharpened teacher and the student."""
    total, terms = 0.0, 0
    for i, t in enumerate(teacher):
        p_t = F.softmax((t - center) / t_temp, dim=-1)
        for j, s in enumerate(student):
            if i == j:
                continue
            total += -(p_t * F.log_softmax(s / s_temp, dim=-1)).sum(-1).mean().item()
            terms += 1
    return total / terms


def test_dino_loss_against_reference_and_centre_update():
    method, cfg = make()
    g = torch.Generator().manual_seed(0)
    teacher = [torch.randn(5, 64, generator=g) for _ in range(2)]
    student = [torch.randn(5, 64, generator=g) for _ in range(5)]
    method.criterion.center.fill_(0.3)
    expected = dino_reference(teacher, student, 0.3, 0.05, cfg.method.student_temp)
    loss = method.criterion(teacher, student, teacher_temp=0.05).item()
    assert math.isclose(loss, expected, rel_tol=1e-5)
    batch_mean = torch.stack(teacher).mean(dim=(0, 1))
    torch.testing.assert_close(method.criterion.center[0, 0], 0.9 * 0.3 + 0.1 * batch_mean)


def test_teacher_sees_only_globals_and_locals_have_their_size():
    method, cfg = make("method.local_size=8")
    views = views_for(method, cfg)
    assert [v.shape[-1] for v in views] == [16, 16, 8, 8, 8]
    seen = []
    handle = method.teacher_backbone.register_forward_pre_hook(
        lambda mod, args: seen.append(tuple(args[0].shape[-2:]))
    )
    method.training_step(views, torch.zeros(8).long(), 0, 10)
    handle.remove()
    assert seen == [(16, 16), (16, 16)]


def test_teacher_temperature_and_last_layer_freeze_are_step_schedules():
    method, cfg = make()
    assert method.steps_per_epoch == 4  # 64 images / batch 16
    assert method.teacher_temp(0) == cfg.method.warmup_teacher_temp
    assert method.teacher_temp(4 * cfg.method.warmup_teacher_temp_epochs) == cfg.method.teacher_temp
    opt = build_optimizer(method, cfg.optim, 1e-3)
    frozen = [g for g in opt.param_groups if g.get("freeze_until_step")]
    assert len(frozen) == 1 and frozen[0]["freeze_until_step"] == 4
    last = {id(p) for p in method.head.last_layer.parameters() if p.requires_grad}
    assert {id(p) for p in frozen[0]["params"]} == last
    apply_schedule(opt, cfg.optim, 3, 40, 4, 1e-3)
    assert frozen[0]["lr"] == 0.0
    apply_schedule(opt, cfg.optim, 4, 40, 4, 1e-3)
    assert frozen[0]["lr"] > 0.0


def test_dino_with_a_vit_runs_local_crops_through_interpolated_positions():
    method, cfg = make("model.backbone=vit_tiny", "model.depth=1", "method.local_size=8")
    views = views_for(method, cfg)
    out = method.training_step(views, torch.zeros(8).long(), 0, 10)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert method.backbone.pos_embed.grad is not None
