"""Batched image operations with per-sample parameters, on any device.

Each function takes a float batch ``(B, 3, H, W)`` in [0, 1] (or uint8 for the crop)
and explicit per-sample parameters, so that it can be compared one image at a time with
torchvision's functional transform under the same parameters (see tests/test_ops.py).
Randomness lives in :mod:`ssl_bench.data.views`, not here.

Two ops apply to a random subset of the batch (colour jitter's per-sample op order, blur).
On the CPU they compute on that subset only; on an accelerator, picking a subset
(``nonzero``) makes the host wait for the device, once per op, so there they compute on
the whole batch and keep each sample's result with ``torch.where``: more arithmetic, no
host-device sync, and the same numbers bit for bit (tests/test_ops.py).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

# torchvision's own batched RGB->HSV conversion; adjust_hue only takes one scalar factor
# per call, so we reuse its colour-space code and apply a per-sample shift ourselves.
from torchvision.transforms.v2.functional._color import _rgb_to_hsv

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale (ITU-R 601-2)


def sample_crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    tries_u: Tensor,
    pos_u: Tensor,
) -> Tensor:
    """torchvision's RandomResizedCrop box sampling, for ``n`` samples at once, from
    uniform numbers drawn by the caller: ``tries_u`` (n, 2, tries), ``pos_u`` (n, 2).

    Returns ``(n, 4)`` int64 boxes ``(top, left, h, w)``. Like torchvision, each sample
    draws up to ``tries`` (area, log-aspect) pairs and keeps the first that fits; a sample
    with no fitting draw falls back to the central crop clipped to ``ratio``.
    """
    area = height * width
    u = tries_u.transpose(0, 1)  # (2, n, tries)
    target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[1]
    aspect = torch.exp(log_r)
    w = torch.round(torch.sqrt(target * aspect))  # (n, tries)
    h = torch.round(torch.sqrt(target / aspect))
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.argmax(ok.int(), dim=1)  # index of the first fitting draw
    found = ok.any(dim=1)
    w = w.gather(1, first[:, None])[:, 0]
    h = h.gather(1, first[:, None])[:, 0]

    # Central fallback, as in torchvision.
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fw, fh = int(round(height * max(ratio))), height
    else:
        fw, fh = width, height
    w = torch.where(found, w, torch.full_like(w, fw)).long()
    h = torch.where(found, h, torch.full_like(h, fh)).long()
    pos = pos_u.T  # (2, n)
    top = torch.floor(pos[0] * (height - h + 1)).long().clamp(max=height - h)
    left = torch.floor(pos[1] * (width - w + 1)).long().clamp(max=width - w)
    top = torch.where(found, top, (height - h) // 2)
    left = torch.where(found, left, (width - w) // 2)
    return torch.stack([top, left, h, w], dim=1)


def _source_coords(start: Tensor, length: Tensor, out: int, full: int) -> Tensor:
    """Bilinear source coordinates of ``F.interpolate(align_corners=False)`` for a crop
    ``[start, start + length)``, mapped into the normalised grid of the full image.
    (B,) -> (B, out)."""
    j = torch.arange(out, device=start.device, dtype=torch.float32)
    scale = length.float()[:, None] / out
    src = ((j[None] + 0.5) * scale - 0.5).clamp(min=0)
    src = torch.minimum(src, (length - 1).float()[:, None])  # stay inside the crop
    return (start.float()[:, None] + src) / max(full - 1, 1) * 2 - 1


def resized_crop(images: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Crop each image to its box and resize to ``size`` x ``size`` (bilinear).

    ``images`` (B, 3, H, W) uint8 or float, ``boxes`` (B, 4) as from
    :func:`sample_crop_boxes`. Returns float (B, 3, size, size) in [0, 1]. Matches
    ``torchvision...resized_crop(..., antialias=False)`` per image; one ``grid_sample``
    does the whole batch.
    """
    if images.dtype == torch.uint8:
        images = images.float().div_(255)
    _, _, height, width = images.shape
    top, left, h, w = boxes.unbind(1)
    ys = _source_coords(top, h, size, height)  # (B, size)
    xs = _source_coords(left, w, size, width)
    grid = torch.stack(
        [xs[:, None, :].expand(-1, size, -1), ys[:, :, None].expand(-1, -1, size)], dim=-1
    )  # (B, size, size, 2) as (x, y)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)


def hflip(x: Tensor, mask: Tensor) -> Tensor:
    """Flip the samples where ``mask`` (B,) is true."""
    return torch.where(mask[:, None, None, None], x.flip(-1), x)


def vflip(x: Tensor, mask: Tensor) -> Tensor:
    """Flip upside down the samples where ``mask`` (B,) is true."""
    return torch.where(mask[:, None, None, None], x.flip(-2), x)


def transpose(x: Tensor, mask: Tensor) -> Tensor:
    """Swap rows and columns of the (square) samples where ``mask`` (B,) is true. With
    both flips at p = 0.5 this draws uniformly from the 8 rotations and reflections."""
    return torch.where(mask[:, None, None, None], x.transpose(-1, -2), x)


def gray(x: Tensor) -> Tensor:
    """Luminance (B, 1, H, W) with torchvision's weights."""
    r, g, b = x.unbind(1)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b)[:, None]


def _blend(a: Tensor, b: Tensor, ratio: Tensor) -> Tensor:
    r = ratio[:, None, None, None]
    return (a * r + b * (1 - r)).clamp_(0, 1)


def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    return _blend(x, torch.zeros_like(x), factor)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    return _blend(x, gray(x).mean(dim=(1, 2, 3), keepdim=True), factor)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    return _blend(x, gray(x), factor)


# Which of (v, p, q, t) each of r, g, b takes in each of the six hue sectors.
_SECTORS = ((0, 2, 1, 1, 3, 0), (3, 0, 0, 2, 1, 1), (1, 1, 3, 0, 0, 2))


@functools.cache
def _sector_table(device: torch.device) -> Tensor:
    return torch.tensor(_SECTORS, dtype=torch.long).to(device)  # (3, 6), once per device


def _hsv_to_rgb(img: Tensor) -> Tensor:
    """torchvision's ``_hsv_to_rgb``, op for op (same numbers), with its sector table made
    once per device: torchvision copies it to the device on every call, which makes the
    host wait for the device. (B, 3, H, W) -> (B, 3, H, W)."""
    h, s, v = img.unbind(dim=-3)
    h6 = h.mul(6)
    i = torch.floor(h6)
    f = h6.sub_(i)
    i = i.to(dtype=torch.int32)
    sxf = s * f
    one_minus_s = 1.0 - s
    q = (1.0 - sxf).mul_(v).clamp_(0.0, 1.0)
    t = sxf.add_(one_minus_s).mul_(v).clamp_(0.0, 1.0)
    p = one_minus_s.mul_(v).clamp_(0.0, 1.0)
    i.remainder_(6)
    vpqt = torch.stack((v, p, q, t), dim=-3)
    select = _sector_table(img.device)[:, i].moveaxis(0, -3)  # (B, 3, H, W)
    return vpqt.gather(-3, select)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate hue by ``shift`` (B,) in [-0.5, 0.5] turns."""
    h, s, v = _rgb_to_hsv(x).unbind(1)
    h = (h + shift[:, None, None]).remainder(1.0)
    return _hsv_to_rgb(torch.stack([h, s, v], dim=1))


JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def on_subsets(device: torch.device) -> bool:
    """Whether subset ops index their subset (the CPU: less arithmetic) or compute on the
    whole batch and select (accelerators: no host-device sync)."""
    return device.type == "cpu"


def color_jitter(x: Tensor, factors: Tensor, order: Tensor, apply: Tensor) -> Tensor:
    """torchvision's ColorJitter with a random op order *per sample*.

    ``factors`` (B, 4): brightness, contrast, saturation, hue; ``order`` (B, 4): a
    permutation of 0..3 per sample; ``apply`` (B,) bool. Each op runs once per sample,
    on the subset of samples that has it at the current position in their order (on an
    accelerator: on the whole batch, each sample keeping its own op's result).
    """
    if not on_subsets(x.device):
        for position in range(4):
            op_here = torch.where(apply, order[:, position], -1)  # (B,) op id, -1 = none
            out = x
            for op_id, op in enumerate(JITTER_OPS):
                chosen = (op_here == op_id)[:, None, None, None]
                out = torch.where(chosen, op(x, factors[:, op_id]), out)
            x = out
        return x
    x = x.clone()
    for position in range(4):
        for op_id, op in enumerate(JITTER_OPS):
            idx = ((order[:, position] == op_id) & apply).nonzero()[:, 0]
            if idx.numel():
                x[idx] = op(x[idx], factors[idx, op_id])
    return x


def grayscale(x: Tensor, mask: Tensor) -> Tensor:
    """Replace the samples where ``mask`` is true by their 3-channel luminance."""
    return torch.where(mask[:, None, None, None], gray(x).expand_as(x), x)


def gaussian_kernels(sigma: Tensor, kernel_size: int) -> Tensor:
    """One normalised 1-D Gaussian per sample: (B,) -> (B, kernel_size); torchvision's grid."""
    half = (kernel_size - 1) / 2
    pos = torch.linspace(-half, half, kernel_size, device=sigma.device)
    return torch.softmax(-0.5 * (pos[None] / sigma[:, None]) ** 2, dim=1)


def gaussian_blur(x: Tensor, sigma: Tensor, kernel_size: int, mask: Tensor) -> Tensor:
    """Separable Gaussian blur with a per-sample ``sigma``, reflect padding, on ``mask``."""
    if not on_subsets(x.device):
        return torch.where(mask[:, None, None, None], _blur(x, sigma, kernel_size), x)
    idx = mask.nonzero()[:, 0]
    if idx.numel() == 0:
        return x
    out = x.clone()
    out[idx] = _blur(x[idx], sigma[idx], kernel_size)
    return out


def _blur(x: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Every sample of ``x`` (n, c, h, w) blurred with its own ``sigma`` (n,)."""
    n, c, h, w = x.shape
    k = gaussian_kernels(sigma, kernel_size).repeat_interleave(c, dim=0)  # (n*c, k)
    pad = kernel_size // 2
    y = F.pad(x.reshape(1, n * c, h, w), (pad, pad, pad, pad), mode="reflect")
    y = F.conv2d(y, k[:, None, :, None], groups=n * c)  # vertical pass
    y = F.conv2d(y, k[:, None, None, :], groups=n * c)  # horizontal pass
    return y.reshape(n, c, h, w)


def solarize(x: Tensor, mask: Tensor, threshold: float = 0.5) -> Tensor:
    """Invert pixels >= ``threshold`` in the samples where ``mask`` is true."""
    return torch.where(mask[:, None, None, None] & (x >= threshold), 1 - x, x)


def add_noise(x: Tensor, sd: float, u: Tensor) -> Tensor:
    """Gaussian pixel noise of std ``sd`` (in [0, 1] units), clipped to [0, 1]; ``u`` (B, 3,
    s, s) uniform draws, turned normal by the inverse CDF so that the views' one stream of
    uniform numbers (:class:`~ssl_bench.data.views.Draws`) serves every transform."""
    z = torch.special.ndtri(u.clamp(1e-6, 1 - 1e-6))  # (B, 3, s, s) standard normal
    return (x + sd * z).clamp(0, 1)


def normalize(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Per-channel standardisation; ``mean``/``std`` (3,)."""
    return (x - mean[None, :, None, None]) / std[None, :, None, None]
