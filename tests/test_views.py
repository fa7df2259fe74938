import pytest
import torch
from helpers import HostSyncs

from ssl_bench.config import AugConfig
from ssl_bench.data import ops
from ssl_bench.data.views import (
    EVAL_VIEW,
    Draws,
    ViewGenerator,
    ViewSpec,
    resolve_views,
    training_views,
)
from ssl_bench.errors import UserError


def _images(n: int = 8, size: int = 16) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )


def test_switches_turn_transforms_off_in_every_view():
    aug = AugConfig(
        crop=False, flip=False, color_jitter=False, grayscale=False, blur=False, solarize=False
    )
    specs = resolve_views([ViewSpec(blur_p=1.0, solarize_p=0.2), ViewSpec(size=8)], aug, 16)
    for s in specs:
        assert s.crop_scale == (1.0, 1.0) and s.crop_ratio == (1.0, 1.0)
        assert s.flip_p == s.jitter_p == s.gray_p == s.blur_p == s.solarize_p == 0
    assert [s.size for s in specs] == [16, 8]


def test_all_off_is_identity_up_to_normalisation():
    gen = ViewGenerator([0.0] * 3, [1.0] * 3)
    aug = AugConfig(
        crop=False, flip=False, color_jitter=False, grayscale=False, blur=False, solarize=False
    )
    x = _images()
    (view,) = gen(x, resolve_views([ViewSpec()], aug, 16), torch.Generator().manual_seed(0))
    torch.testing.assert_close(view, x.float() / 255, atol=1e-5, rtol=0)


def test_views_of_several_sizes_in_one_call_and_reproducible():
    gen = ViewGenerator([0.5] * 3, [0.25] * 3)
    specs = resolve_views(
        [ViewSpec(), ViewSpec(), ViewSpec(size=8, crop_scale=(0.05, 0.4))] * 1, AugConfig(), 16
    )
    a = gen(_images(), specs, torch.Generator().manual_seed(3))
    b = gen(_images(), specs, torch.Generator().manual_seed(3))
    assert [v.shape for v in a] == [(8, 3, 16, 16), (8, 3, 16, 16), (8, 3, 8, 8)]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], a[1])  # two draws of the same spec differ


def test_probabilities_are_per_sample():
    gen = ViewGenerator([0.0] * 3, [1.0] * 3)
    aug = AugConfig(crop=False)
    spec = resolve_views([ViewSpec(flip_p=0.0, jitter_p=0.0, gray_p=0.5, blur_p=0.0)], aug, 16)
    x = _images(400)
    (view,) = gen(x, spec, torch.Generator().manual_seed(0))
    is_gray = (view[:, 0] == view[:, 1]).flatten(1).all(1) & (view[:, 1] == view[:, 2]).flatten(
        1
    ).all(1)
    assert 0.4 < is_gray.float().mean() < 0.6


def test_eval_view_is_deterministic():
    gen = ViewGenerator([0.5] * 3, [0.5] * 3)
    (view,) = gen(
        _images(), resolve_views([EVAL_VIEW], AugConfig(), 16), torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(view, gen.plain(_images()), atol=1e-5, rtol=0)


def test_each_crop_group_is_one_batched_operation(monkeypatch):
    """DINO-style 2 globals + 4 identical locals: one pass per distinct spec, not per view."""
    gen = ViewGenerator([0.5] * 3, [0.25] * 3)
    calls = []
    make = ViewGenerator.make

    def counting(self, images, spec, generator):
        calls.append((len(images), spec.size))
        return make(self, images, spec, generator)

    monkeypatch.setattr(ViewGenerator, "make", counting)
    local = ViewSpec(size=8, crop_scale=(0.05, 0.4))
    specs = resolve_views(
        [ViewSpec(blur_p=1.0), ViewSpec(solarize_p=0.2)] + [local] * 4, AugConfig(), 16
    )
    views = gen(_images(), specs, torch.Generator().manual_seed(0))
    assert calls == [(8, 16), (8, 16), (32, 8)]
    assert [v.shape[-1] for v in views] == [16, 16, 8, 8, 8, 8]
    assert len({v.sum().item() for v in views[2:]}) == 4  # the four locals are distinct draws


def test_vertical_flips_and_transposes_come_from_the_run_config():
    gen = ViewGenerator([0.0] * 3, [1.0] * 3)
    plain = {"crop": False, "flip": False, "color_jitter": False, "grayscale": False}
    plain |= {"blur": False, "solarize": False}
    x = _images()
    (flipped,) = gen(
        x,
        resolve_views([ViewSpec()], AugConfig(**plain, vflip_p=1.0), 16),
        torch.Generator().manual_seed(0),
    )
    torch.testing.assert_close(flipped, x.float().flip(-2) / 255, atol=1e-5, rtol=0)
    aug = AugConfig(**plain, transpose_p=1.0)
    (swapped,) = gen(x, resolve_views([ViewSpec()], aug, 16), torch.Generator().manual_seed(0))
    torch.testing.assert_close(swapped, x.float().transpose(-1, -2) / 255, atol=1e-5, rtol=0)
    # Off (the default) draws no numbers for them: the papers' views are unchanged.
    default = resolve_views([ViewSpec()], AugConfig(), 16)
    assert default[0].vflip_p == default[0].transpose_p == 0


def test_vertical_flip_probability_is_validated():
    with pytest.raises(UserError, match=r"aug.vflip_p is a probability in \[0, 1\], got 1.5"):
        AugConfig(vflip_p=1.5).validate()


def test_view_scale_shrinks_every_training_view():
    specs = [ViewSpec(), ViewSpec(blur_p=0.1), ViewSpec(size=8)]  # two globals, one local
    assert [s.size for s in training_views(specs, AugConfig(), 16)] == [16, 16, 8]
    assert [s.size for s in training_views(specs, AugConfig(view_scale=0.75), 16)] == [12, 12, 6]
    gen = ViewGenerator([0.5] * 3, [0.25] * 3)
    made = gen(_images(), training_views(specs, AugConfig(view_scale=0.75), 16), torch.Generator())
    assert [tuple(v.shape) for v in made] == [(8, 3, 12, 12)] * 2 + [(8, 3, 6, 6)]


def test_view_scale_is_validated():
    for bad in (0.0, 1.5):
        with pytest.raises(UserError, match=r"aug.view_scale is a fraction .* in \(0, 1\]"):
            AugConfig(view_scale=bad).validate()


def test_pixel_noise_is_fresh_in_every_view_and_validated():
    gen = ViewGenerator([0.0] * 3, [1.0] * 3)
    plain = {"crop": False, "flip": False, "color_jitter": False, "grayscale": False}
    plain |= {"blur": False, "solarize": False}
    x = torch.full((64, 3, 16, 16), 128, dtype=torch.uint8)  # mid-grey: no clipping
    specs = resolve_views([ViewSpec(), ViewSpec()], AugConfig(**plain, noise_sd=0.1), 16)
    a, b = gen(x, specs, torch.Generator().manual_seed(0))
    for view in (a, b):  # unbiased, with the asked std
        assert abs(view.mean().item() - 128 / 255) < 0.002
        assert abs(view.std().item() - 0.1) < 0.002
    assert abs(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()) < 0.02
    (clean,) = gen(x, resolve_views([ViewSpec()], AugConfig(**plain), 16), torch.Generator())
    assert torch.equal(clean, x.float() / 255)  # off by default
    with pytest.raises(UserError, match=r"aug.noise_sd is a std in \[0, 1\] pixel units"):
        AugConfig(noise_sd=-0.1).validate()


def test_views_on_an_accelerator_need_no_host_device_sync(monkeypatch):
    """Data-dependent ops and tensors made from host data make the host wait for the
    device. The accelerator path of the views must have none: checked on the CPU by
    forcing that path and watching every aten op the views run."""
    monkeypatch.setattr(ops, "on_subsets", lambda device: False)
    specs = resolve_views(
        [ViewSpec(blur_p=1.0), ViewSpec(blur_p=0.1, solarize_p=0.2), ViewSpec(size=8)],
        AugConfig(vflip_p=0.5, transpose_p=0.5),
        16,
    )
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    gen = ViewGenerator([0.5] * 3, [0.25] * 3)
    draws = Draws(torch.Generator().manual_seed(0), torch.arange(8), 16)  # half a batch
    gen(images, specs, draws)  # constants made and cached on the first call
    with HostSyncs() as watch:
        views = gen(images, specs, draws)
    assert "grid_sampler_2d" in watch.seen  # the watch sees the views' ops
    assert not watch.syncs, watch.syncs
    assert "lift_fresh" not in watch.seen  # a tensor from host data: a host-device copy
    assert [v.shape[-1] for v in views] == [16, 16, 8]
