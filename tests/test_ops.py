"""Each batched op against torchvision's per-image transform under the same parameters."""

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from ssl_bench.data import ops


def boxes_of(n, height, width, scale, ratio, g):
    u = torch.rand(n, 2, 10, generator=g), torch.rand(n, 2, generator=g)
    return ops.sample_crop_boxes(n, height, width, scale, ratio, *u)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (6, 3, 20, 24), generator=g, dtype=torch.uint8)


def test_resized_crop_matches_torchvision(batch):
    g = torch.Generator().manual_seed(1)
    boxes = boxes_of(6, 20, 24, (0.08, 1.0), (3 / 4, 4 / 3), g)
    boxes[0] = torch.tensor([0, 0, 20, 24])  # whole image
    boxes[1] = torch.tensor([3, 5, 4, 3])  # tiny crop: strong upsampling
    for size in (16, 32):
        out = ops.resized_crop(batch, boxes, size)
        for i in range(6):
            top, left, h, w = boxes[i].tolist()
            ref = TF.resized_crop(
                batch[i].float() / 255, top, left, h, w, [size, size], antialias=False
            )
            torch.testing.assert_close(out[i], ref, atol=1e-4, rtol=0)


def test_crop_boxes_follow_the_scale_and_ratio_ranges():
    g = torch.Generator().manual_seed(2)
    boxes = boxes_of(2000, 32, 32, (0.2, 0.6), (3 / 4, 4 / 3), g)
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= 32).all() and (left + w <= 32).all()
    area = (h * w).float() / 1024
    assert area.min() > 0.15 and area.max() < 0.7  # rounding widens the range slightly
    assert 0.3 < area.mean() < 0.5


def test_crop_fallback_is_central():
    g = torch.Generator().manual_seed(0)
    # No draw can fit an area 4x the image: every sample falls back to the centre crop.
    boxes = boxes_of(4, 10, 20, (4.0, 5.0), (1.0, 1.0), g)
    assert boxes.tolist() == [[0, 5, 10, 10]] * 4


@pytest.mark.parametrize(
    "op, ref, values",
    [
        (ops.adjust_brightness, TF.adjust_brightness, [0.6, 1.0, 1.4]),
        (ops.adjust_contrast, TF.adjust_contrast, [0.6, 1.0, 1.4]),
        (ops.adjust_saturation, TF.adjust_saturation, [0.0, 0.8, 1.2]),
        (ops.adjust_hue, TF.adjust_hue, [-0.1, 0.0, 0.35]),
    ],
)
def test_colour_ops_match_torchvision(batch, op, ref, values):
    x = batch[:3].float() / 255
    out = op(x, torch.tensor(values))
    for i, v in enumerate(values):
        torch.testing.assert_close(out[i], ref(x[i], v), atol=1e-5, rtol=0)


def test_color_jitter_applies_ops_in_each_samples_order(batch):
    x = batch[:2].float() / 255
    factors = torch.tensor([[1.3, 0.7, 1.2, 0.05], [0.8, 1.4, 0.5, -0.08]])
    order = torch.tensor([[3, 1, 0, 2], [0, 2, 1, 3]])
    out = ops.color_jitter(x, factors, order, torch.tensor([True, True]))
    refs = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    for i in range(2):
        y = x[i]
        for op_id in order[i].tolist():
            y = refs[op_id](y, factors[i, op_id].item())
        torch.testing.assert_close(out[i], y, atol=1e-5, rtol=0)
    skipped = ops.color_jitter(x, factors, order, torch.tensor([False, False]))
    assert torch.equal(skipped, x)


def test_grayscale_flip_solarize(batch):
    x = batch[:2].float() / 255
    mask = torch.tensor([True, False])
    g = ops.grayscale(x, mask)
    torch.testing.assert_close(g[0], TF.rgb_to_grayscale(x[0], num_output_channels=3))
    assert torch.equal(g[1], x[1])
    f = ops.hflip(x, mask)
    assert torch.equal(f[0], TF.horizontal_flip(x[0])) and torch.equal(f[1], x[1])
    s = ops.solarize(x, mask, 0.5)
    torch.testing.assert_close(s[0], TF.solarize(x[0], 0.5))
    assert torch.equal(s[1], x[1])


@pytest.mark.parametrize("kernel", [3, 5, 9])
def test_gaussian_blur_matches_torchvision(batch, kernel):
    x = batch[:3].float() / 255
    sigma = torch.tensor([0.3, 1.0, 2.0])
    out = ops.gaussian_blur(x, sigma, kernel, torch.tensor([True, True, False]))
    for i in range(2):
        ref = TF.gaussian_blur(x[i], [kernel, kernel], [sigma[i].item()] * 2)
        torch.testing.assert_close(out[i], ref, atol=1e-5, rtol=0)
    assert torch.equal(out[2], x[2])


def test_normalize_matches_torchvision(batch):
    x = batch[:2].float() / 255
    mean, std = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.25, 0.3])
    out = ops.normalize(x, mean, std)
    torch.testing.assert_close(out[0], TF.normalize(x[0], mean.tolist(), std.tolist()))


def test_whole_batch_subset_ops_give_the_subset_paths_numbers_bit_for_bit(monkeypatch):
    """On accelerators colour jitter and blur compute on the whole batch (no host sync);
    the numbers must be those of the CPU's subset path, so a run does not depend on it."""
    g = torch.Generator().manual_seed(1)
    n = 48
    x = torch.rand(n, 3, 16, 16, generator=g)
    factors = torch.stack(
        [0.6 + 0.8 * torch.rand(n, generator=g) for _ in range(3)]
        + [0.2 * torch.rand(n, generator=g) - 0.1],
        dim=1,
    )
    order = torch.rand(n, 4, generator=g).argsort(dim=1)
    apply = torch.rand(n, generator=g) < 0.8
    sigma = 0.1 + 1.9 * torch.rand(n, generator=g)
    blur = torch.rand(n, generator=g) < 0.5

    def both():
        return ops.color_jitter(x, factors, order, apply), ops.gaussian_blur(x, sigma, 5, blur)

    subset = both()
    monkeypatch.setattr(ops, "on_subsets", lambda device: False)
    whole = both()
    for a, b in zip(subset, whole):
        assert torch.equal(a, b)
    assert not torch.equal(subset[0], x) and not torch.equal(subset[1], x)
