"""Scratch variants for recipe screens (SCREEN_PRELOAD=benchmarks/screen_variants.py).

Registers the `shapes` style variants v_dark (constant dark background) and v_dark_clean
(also no pattern, no noise) and v_centred (shapes_easy's centred large objects on
shapes' backgrounds); SCREEN_D4=1 adds vertical flips and transposes to every view
(unseeded: screening only), SCREEN_VFLIP=1 vertical flips only, SCREEN_ISO=1 an 8-hue
palette of equal HSV saturation and value; and a `small_resnet` backbone (one BasicBlock
per stage). None of it is part of the suite: it is what the rows of
benchmarks/results/recipes.md marked [preload] ran with.
"""

# ruff: noqa
from dataclasses import replace

from ssl_bench.data import shapes


def reg(name, style):
    shapes._register(name, name, style)


# Every variant below was screened as `shapes` with some nuisances changed, when `shapes`
# was what is now `shapes_hard`: H(...) is that style with the changes.
def H(**changes):
    return replace(shapes.HARD, **changes)


reg("v_dark", H(background=40.0))
reg("v_dark_clean", H(background=40.0, pattern_amplitude=0.0, noise_max=0.0))
# shapes' backgrounds, pattern and noise, with shapes_easy's centred large objects
reg("v_centred", H(centre=shapes.EASY.centre, radius=shapes.EASY.radius))

import os, torch
from ssl_bench.data import ops

if os.environ.get("SCREEN_D4"):
    _hflip = ops.hflip

    def d4(x, mask):
        x = _hflip(x, mask)
        n = x.shape[0]
        v = torch.rand(n, device=x.device) < 0.5
        x = torch.where(v[:, None, None, None], x.flip(-2), x)
        t = torch.rand(n, device=x.device) < 0.5
        return torch.where(t[:, None, None, None], x.transpose(-1, -2), x)

    ops.hflip = d4
if os.environ.get("SCREEN_VFLIP"):
    _hflip2 = ops.hflip

    def hv(x, mask):
        x = _hflip2(x, mask)
        v = torch.rand(x.shape[0], device=x.device) < 0.5
        return torch.where(v[:, None, None, None], x.flip(-2), x)

    ops.hflip = hv

import colorsys

if os.environ.get("SCREEN_ISO"):
    # 8 hues, equal HSV saturation and value: a hue turn removes colour entirely.
    names = list(shapes.COLOURS)
    hues = [0, 30, 55, 120, 180, 225, 275, 320]
    shapes.COLOURS = {
        n: tuple(round(255 * c) for c in colorsys.hsv_to_rgb(h / 360, 0.8, 0.85))
        for n, h in zip(names, hues)
    }
    print(shapes.COLOURS)

from torch import nn
from torchvision.models.resnet import BasicBlock
from ssl_bench.backbones import _ChannelsLast
from ssl_bench.registry import BACKBONES


class SmallResNet(_ChannelsLast):
    """3x3 stem at width w, then one BasicBlock per stage (w, 2w, 4w, 8w; stride 2 from
    stage 2): a ResNet-10 without max-pool."""

    def __init__(self, width=32):
        super().__init__()
        layers = [
            nn.Conv2d(3, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        c = width
        for stage in range(4):
            out = width * 2**stage
            stride = 1 if stage == 0 else 2
            down = (
                None
                if stride == 1 and c == out
                else nn.Sequential(nn.Conv2d(c, out, 1, stride, bias=False), nn.BatchNorm2d(out))
            )
            layers.append(BasicBlock(c, out, stride, down))
            c = out
        self.features = nn.Sequential(*layers)
        self.dim = c
        self._prepare()

    def forward_spatial(self, x):
        return self.features(self._in(x))


BACKBONES.register("small_resnet", "scratch")(lambda cfg, size: SmallResNet(cfg.width))

# SCREEN_INVERT=1: each view's pixels inverted (x -> 1 - x) with p = 0.5, so a view's
# background level (dark or light) no longer tells which image it came from.
if os.environ.get("SCREEN_INVERT"):
    _hflip3 = ops.hflip

    def hinv(x, mask):
        x = _hflip3(x, mask)
        v = torch.rand(x.shape[0], device=x.device) < 0.5
        return torch.where(v[:, None, None, None], 1 - x, x)

    ops.hflip = hinv

# between shapes and shapes_easy: constant dark background, no pattern or noise,
# moderately wide position and scale
reg(
    "v_mid",
    H(
        background=40.0,
        pattern_amplitude=0.0,
        noise_max=0.0,
        centre=(0.35, 0.65),
        radius=(0.25, 0.4),
    ),
)

# SCREEN_GMP=1: every backbone pools its last feature map by global max instead of mean,
# so a small object's strongest responses are not averaged away by the background.
if os.environ.get("SCREEN_GMP"):
    from ssl_bench import backbones as _bb

    _bb.Backbone.forward = lambda self, x: self.forward_spatial(x).amax(dim=(2, 3))

    def _ff(self, x):
        s = self.forward_spatial(x)
        return s.amax(dim=(2, 3)), s

    _bb.Backbone.forward_features = _ff

# v_mid with shapes' wide positions but large objects
reg(
    "v_wide_big",
    H(
        background=40.0,
        pattern_amplitude=0.0,
        noise_max=0.0,
        centre=(0.25, 0.75),
        radius=(0.28, 0.4),
    ),
)
# v_mid with shapes' two background levels (dark or light per image)
reg(
    "v_mid_levels",
    H(pattern_amplitude=0.0, noise_max=0.0, centre=(0.35, 0.65), radius=(0.25, 0.4)),
)

# v_mid with strong fixed-sd pixel noise (the same for every image, so not a factor):
# does noise alone bring raw-pixel kNN under 30% while features still learn?
for sd in (20, 35, 50, 65, 80):
    reg(
        f"v_mid_noise{sd}",
        H(
            background=40.0,
            pattern_amplitude=0.0,
            noise_min=float(sd),
            noise_max=float(sd),
            centre=(0.35, 0.65),
            radius=(0.25, 0.4),
        ),
    )


# v_mid with shapes' faint background pattern and noise, on one constant dark background
reg(
    "v_mid_pattern",
    H(background=40.0, centre=(0.35, 0.65), radius=(0.25, 0.4)),
)

# 2026-12-06: today's `shapes` (plain dark background, wide centres) with a fixed pixel
# noise of sd S grey levels in every image: at the current BYOL recipe (1,248 steps, 24 px
# views) does noise bring raw-pixel kNN to <= 30% while the methods still learn?
for sd in (30, 40, 50, 60):
    reg(f"s_noise{sd}", replace(shapes.Style(), noise_min=float(sd), noise_max=float(sd)))
