"""Views on the training device: what a method asks for, and the engine that makes them.

A method declares its views as :class:`ViewSpec` objects (probabilities per transform,
output size, crop scale). :func:`resolve_views` applies the run's ``aug`` switches, so
that turning a transform off in the config turns it off in every view of every method.
:class:`ViewGenerator` turns a uint8 batch into float views: all views that share a spec
(two SimCLR views, six DINO local crops) are made in one batched pass, with every random
parameter drawn per sample from the trainer's generator, and no per-sample Python loop.

A sample's random numbers depend on its position in the global batch, not on which
process or accumulation micro-step makes it (:class:`Draws`): the trainer seeds the
generator from (seed, step), and each call draws for the whole global batch and keeps its
own rows, so two ranks with half a batch each make the views one process makes for the
whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ssl_bench.config import AugConfig
from ssl_bench.data import ops


@dataclass(frozen=True)
class ViewSpec:
    """One kind of view. ``size`` None = the dataset's image size; ``crop_scale`` None =
    the run's ``aug.crop_min_scale..crop_max_scale``."""

    size: int | None = None
    crop_scale: tuple[float, float] | None = None
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    vflip_p: float = 0.0  # from aug.vflip_p (off in the papers' views)
    transpose_p: float = 0.0  # from aug.transpose_p
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    gray_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel: int = 0  # 0 = odd size of about 10% of the view side
    solarize_p: float = 0.0
    noise_sd: float = 0.0  # from aug.noise_sd


# The view a probe or a kNN sees: the whole image, no randomness.
EVAL_VIEW = ViewSpec(
    crop_scale=(1.0, 1.0),
    crop_ratio=(1.0, 1.0),
    flip_p=0.0,
    jitter_p=0.0,
    gray_p=0.0,
    blur_p=0.0,
    solarize_p=0.0,
)


def training_views(specs: Sequence[ViewSpec], aug: AugConfig, image_size: int) -> list[ViewSpec]:
    """A method's training views: :func:`resolve_views`, each side times ``aug.view_scale``."""
    scaled = [replace(s, size=view_side(aug.view_scale, s.size or image_size)) for s in specs]
    return resolve_views(scaled, aug, image_size)


def view_side(scale: float, side: int) -> int:
    """The side of a view declared ``side`` px at ``aug.view_scale``, at least 4 px."""
    return max(4, round(scale * side))


def resolve_views(specs: Sequence[ViewSpec], aug: AugConfig, image_size: int) -> list[ViewSpec]:
    """Fill defaults from the run's config and apply its on/off switches."""
    out = []
    for s in specs:
        size = s.size or image_size
        kernel = s.blur_kernel or aug.blur_kernel or max(3, int(0.1 * size) // 2 * 2 + 1)
        s = replace(
            s,
            size=size,
            crop_scale=s.crop_scale or (aug.crop_min_scale, aug.crop_max_scale),
            brightness=aug.brightness,
            contrast=aug.contrast,
            saturation=aug.saturation,
            hue=aug.hue,
            blur_sigma=(aug.blur_sigma_min, aug.blur_sigma_max),
            blur_kernel=kernel,
            vflip_p=aug.vflip_p,
            transpose_p=aug.transpose_p,
            noise_sd=aug.noise_sd,
        )
        if not aug.crop:  # the whole image, resized to the view size
            s = replace(s, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0))
        if not aug.flip:
            s = replace(s, flip_p=0.0)
        if not aug.color_jitter:
            s = replace(s, jitter_p=0.0)
        if not aug.grayscale:
            s = replace(s, gray_p=0.0)
        if not aug.blur:
            s = replace(s, blur_p=0.0)
        if not aug.solarize:
            s = replace(s, solarize_p=0.0)
        out.append(s)
    return out


class Draws:
    """Uniform random numbers for a batch that is ``rows`` of a global batch of ``total``
    samples: every call draws (total, ...) and keeps ``rows``, so what a sample gets is a
    function of the generator's state and its position only. ``rows`` None: the batch is
    the whole batch (numbers drawn for it alone)."""

    def __init__(
        self, generator: torch.Generator, rows: Tensor | None = None, total: int = 0
    ) -> None:
        self.generator, self.rows, self.total = generator, rows, total

    def rand(self, n: int, *shape: int, device: torch.device) -> Tensor:  # (n, *shape)
        if self.rows is None:
            return torch.rand(n, *shape, generator=self.generator, device=device)
        assert len(self.rows) == n, "one row position per sample"
        drawn = torch.rand(self.total, *shape, generator=self.generator, device=device)
        return drawn[self.rows.to(device)]

    def copies(self, k: int) -> Draws:
        """The draws of ``k`` stacked copies of this batch, as when the views that share
        a spec are made in one pass."""
        if self.rows is None:
            return self
        rows = torch.cat([c * self.total + self.rows for c in range(k)])
        return Draws(self.generator, rows, k * self.total)


class ViewGenerator:
    """Makes normalised float views from uint8 batches, on the batch's device."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self._constants: dict[tuple, Tensor] = {}

    def _constant(self, values: Sequence[float], device: torch.device) -> Tensor:
        """``values`` as a float32 tensor on ``device``, copied there once: a fresh
        host-to-device copy each step would make the host wait for the device."""
        key = (tuple(values), device)
        if key not in self._constants:
            self._constants[key] = torch.tensor(key[0], dtype=torch.float32).to(device)
        return self._constants[key]

    def __call__(
        self,
        images: Tensor,
        specs: Sequence[ViewSpec],
        generator: torch.Generator | Draws,
    ) -> list[Tensor]:
        """``images`` (B, 3, H, W) uint8 -> one (B, 3, s, s) float view per spec, in order.
        ``generator``: a plain generator (numbers drawn for this batch) or the
        :class:`Draws` of this batch's rows in a global batch."""
        draws = generator if isinstance(generator, Draws) else Draws(generator)
        views: list[Tensor | None] = [None] * len(specs)
        for spec in dict.fromkeys(specs):  # unique specs, first-seen order
            slots = [i for i, s in enumerate(specs) if s == spec]
            batch = images.repeat(len(slots), 1, 1, 1)  # one pass for every copy of this spec
            made = self.make(batch, spec, draws.copies(len(slots)))
            for slot, view in zip(slots, made.chunk(len(slots))):
                views[slot] = view
        return views  # type: ignore[return-value]

    def make(self, images: Tensor, spec: ViewSpec, draws: Draws) -> Tensor:
        """One view per image of ``images`` under ``spec`` (already resolved)."""
        n, _, height, width = images.shape
        dev = images.device
        assert spec.size is not None and spec.crop_scale is not None, "resolve_views first"

        def rand(*shape: int) -> Tensor:  # (n, *shape)
            return draws.rand(n, *shape, device=dev)

        def coin(p: float) -> Tensor:
            return rand() < p

        boxes = ops.sample_crop_boxes(
            n, height, width, spec.crop_scale, spec.crop_ratio, rand(2, 10), rand(2)
        )
        x = ops.resized_crop(images, boxes, spec.size)  # (n, 3, s, s) float in [0, 1]
        if spec.flip_p > 0:
            x = ops.hflip(x, coin(spec.flip_p))
        if spec.vflip_p > 0:
            x = ops.vflip(x, coin(spec.vflip_p))
        if spec.transpose_p > 0:
            x = ops.transpose(x, coin(spec.transpose_p))
        if spec.jitter_p > 0:
            u = rand(4)
            lo = self._constant(
                [
                    max(0.0, 1 - spec.brightness),
                    max(0.0, 1 - spec.contrast),
                    max(0.0, 1 - spec.saturation),
                    -spec.hue,
                ],
                dev,
            )
            hi = self._constant(
                [1 + spec.brightness, 1 + spec.contrast, 1 + spec.saturation, spec.hue], dev
            )
            factors = lo + (hi - lo) * u
            order = rand(4).argsort(dim=1)
            x = ops.color_jitter(x, factors, order, coin(spec.jitter_p))
        if spec.gray_p > 0:
            x = ops.grayscale(x, coin(spec.gray_p))
        if spec.blur_p > 0:
            lo_s, hi_s = spec.blur_sigma
            sigma = lo_s + (hi_s - lo_s) * rand()
            x = ops.gaussian_blur(x, sigma, spec.blur_kernel, coin(spec.blur_p))
        if spec.noise_sd > 0:
            x = ops.add_noise(x, spec.noise_sd, rand(3, spec.size, spec.size))
        if spec.solarize_p > 0:
            x = ops.solarize(x, coin(spec.solarize_p))
        return ops.normalize(x, self._constant(self.mean, dev), self._constant(self.std, dev))

    def plain(self, images: Tensor, size: int | None = None) -> Tensor:
        """The evaluation view: the whole image (resized if ``size``), normalised."""
        x = images.float().div(255) if images.dtype == torch.uint8 else images
        if size is not None and size != x.shape[-1]:
            x = torch.nn.functional.interpolate(
                x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )
        dev = x.device
        return ops.normalize(x, self._constant(self.mean, dev), self._constant(self.std, dev))
