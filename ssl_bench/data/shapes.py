"""`shapes`: the embedded datasets, generated in code, offline and deterministic by seed.

Each image shows one object (the class is its *shape*) with a random colour, position,
scale and rotation on one plain dark grey background. It comes with a per-pixel mask, a
caption naming shape, colour and background, and the generator's per-image factors
(colour, position, ...) for diagnostics. Other styles draw the same objects:
`shapes_noisy` (``NOISY``, the default dataset) adds the same strong pixel noise to every
image, `shapes_hard` (``HARD``) dark-or-light backgrounds with faint patterns and pixel
noise, and `shapes_easy` (``EASY``) centres the objects.

Why `shapes` is plain: on `shapes_hard` the background's dark-or-light polarity (which
no colour jitter changes, so two views of an image always share it) is an easier thing
to match than the shape, and BYOL and DINO learn nothing else within a CPU budget
(benchmarks/results/recipes.md). On the plain style every method learns.

Colour is a deliberate shortcut, as on natural images: with probability
``COLOUR_BIAS`` the object takes its class's usual colour, so colour alone predicts the
class above chance but far from perfectly, and each image's colour is an easy
signature for matching two crops of it. A method that does not randomise colour
during pre-training can match two crops by colour and stop there; the augmentation
ablation measures exactly that.

Everything is batched tensor code (no per-image Python loop): the default splits
(5000 / 1000 / 1000 images at 32 px) take about 0.5 s on 2 CPU cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ssl_bench.config import DataConfig
from ssl_bench.data import ops
from ssl_bench.data.splits import DatasetSplits, Split
from ssl_bench.errors import UserError
from ssl_bench.registry import DATASETS

SHAPES = [
    "circle",
    "triangle",
    "square",
    "star",
    "cross",
    "ring",
    "crescent",
    "semicircle",
    "bar",
    "ell",
]
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "orange": (240, 140, 25),
    "yellow": (230, 215, 45),
    "green": (45, 175, 65),
    "cyan": (40, 200, 210),
    "blue": (45, 85, 220),
    "purple": (140, 60, 200),
    "pink": (240, 115, 185),
}
PATTERNS = ["plain", "striped", "checkered", "gradient", "speckled"]
# P(object has its class's usual colour), else a uniformly random colour: colour alone
# predicts the class above chance, far from perfectly.
COLOUR_BIAS = 0.15
# `shapes_hard`'s backgrounds are grey (dark or light, always contrasting with the
# object's luminance, so the object survives grayscale) with a faint pattern of
# +-PATTERN_AMPLITUDE levels.
# Calibration runs showed why: strongly coloured or high-contrast patterned backgrounds
# are a per-image signature that survives crops and colour jitter, and SimCLR/BYOL then
# learn the background instead of the shape (kNN on shape fell below the random
# backbone's). Faint patterns still vary per image, as the task asks.
PATTERN_AMPLITUDE = 18.0
CENTRE = (0.25, 0.75)  # object centre, fraction of the side; wide, so pixels don't align
NOISE_MAX = 6.0  # `shapes_hard`'s per-image pixel noise sd ~ U(0, NOISE_MAX) grey levels
CHUNK = 500  # images per generator chunk; chunk seeds make every split prefix-stable
SUPERSAMPLE = 2  # render at 2x and average down, so edges are anti-aliased


@dataclass(frozen=True)
class Style:
    """The nuisance ranges of one generated dataset (the defaults are `shapes`)."""

    pattern_amplitude: float = 0.0  # +- grey levels of the background pattern; 0: plain
    noise_max: float = 0.0
    noise_min: float = 0.0  # per-image noise sd ~ U(noise_min, noise_max)
    centre: tuple[float, float] = CENTRE
    radius: tuple[float, float] = (0.28, 0.4)  # object radius, fraction of the side
    background: float | None = 40.0  # None: dark or light grey per image; else this grey


# `shapes_hard`, the default until the recipes screen: smaller objects on dark-or-light
# patterned backgrounds with pixel noise. Raw pixels score 26% kNN here (50% on `shapes`),
# but BYOL and DINO match the background's polarity and end below the untrained backbone.
HARD = Style(
    pattern_amplitude=PATTERN_AMPLITUDE, noise_max=NOISE_MAX, radius=(0.2, 0.37), background=None
)

# `shapes_easy`: `shapes` with the objects centred, so pixels align and shape is what two
# views share most plainly. A testbed: a method that learns from views shows it in a minute.
EASY = Style(centre=(0.45, 0.55), radius=(0.3, 0.42))

# `shapes_noisy`, the default since 2026-12-06: `shapes` with the same amount of pixel
# noise (sd NOISY_SD grey levels) in every image. Raw pixels fall from 50% to 29% kNN, so
# pixel matching no longer solves the task; the untrained small_cnn falls from 41 to 28.
# Every method still learns at its default epochs, BYOL with fresh noise in its views
# (NOISY_RECIPE) and DINO at lr 6e-4 with the paper's EMA 0.996 (recipes.md, 12-06).
NOISY_SD = 60.0
NOISY = Style(noise_min=NOISY_SD, noise_max=NOISY_SD)


def _polygon_radius(phi: Tensor, a: tuple[float, float], b: tuple[float, float], n: int) -> Tensor:
    """Distance from the origin to a star/polygon boundary along angle ``phi``.

    The boundary repeats ``n`` times around the circle; within one sector of half-angle
    pi/n it is the segment from vertex ``a`` (on the x axis) to vertex ``b``.
    """
    sector = 2 * math.pi / n
    psi = torch.remainder(phi, sector)
    psi = torch.minimum(psi, sector - psi)  # fold: the boundary is mirror-symmetric
    dx, dy = b[0] - a[0], b[1] - a[1]
    cross_ab = a[0] * b[1] - a[1] * b[0]
    return cross_ab / (torch.cos(psi) * dy - torch.sin(psi) * dx)


def _regular(n: int, radius: float) -> tuple[tuple[float, float], tuple[float, float]]:
    return (radius, 0.0), (radius * math.cos(2 * math.pi / n), radius * math.sin(2 * math.pi / n))


def _inside(shape: int, u: Tensor, v: Tensor) -> Tensor:
    """Boolean mask of the shape in object coordinates (u, v); the object fits the unit disc."""
    rho = torch.sqrt(u * u + v * v)
    phi = torch.atan2(v, u)
    name = SHAPES[shape]
    if name == "circle":
        return rho <= 0.8
    if name == "triangle":
        return rho <= _polygon_radius(phi, *_regular(3, 1.05), 3)
    if name == "square":
        return (u.abs() <= 0.68) & (v.abs() <= 0.68)
    if name == "star":
        inner = 0.45
        b = (inner * math.cos(math.pi / 5), inner * math.sin(math.pi / 5))
        return rho <= _polygon_radius(phi, (1.05, 0.0), b, 5)
    if name == "cross":
        return ((u.abs() <= 0.28) & (v.abs() <= 0.95)) | ((v.abs() <= 0.28) & (u.abs() <= 0.95))
    if name == "ring":
        return (rho <= 0.92) & (rho >= 0.52)
    if name == "crescent":
        return (rho <= 0.9) & (torch.sqrt((u - 0.45) ** 2 + v * v) >= 0.72)
    if name == "semicircle":
        return (rho <= 0.98) & (v >= -0.05)
    if name == "bar":
        return (u.abs() <= 0.98) & (v.abs() <= 0.3)
    if name == "ell":
        return ((u >= -0.75) & (u <= 0.75) & (v >= -0.75) & (v <= -0.25)) | (
            (u >= -0.75) & (u <= -0.25) & (v >= -0.75) & (v <= 0.75)
        )
    raise AssertionError(name)


def _background(
    pattern: Tensor, col_a: Tensor, col_b: Tensor, size: int, g: torch.Generator
) -> Tensor:
    """Patterned backgrounds (n, 3, S, S) float in [0, 255]; one pattern id per image."""
    n = pattern.shape[0]
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    angle = torch.rand(n, 1, 1, generator=g) * math.pi
    period = 3.0 + torch.rand(n, 1, 1, generator=g) * 5.0  # in pixels
    along = (xs * torch.cos(angle) + ys * torch.sin(angle)) / period  # (n, S, S)
    across = (-xs * torch.sin(angle) + ys * torch.cos(angle)) / period
    blobs = F.interpolate(torch.rand(n, 1, 5, 5, generator=g), size=(size, size), mode="bicubic")
    lo, hi = along.amin((1, 2), keepdim=True), along.amax((1, 2), keepdim=True)
    weight = torch.zeros(n, size, size)  # 0 -> colour a, 1 -> colour b; "plain" stays 0
    for p, name in enumerate(PATTERNS):
        i = (pattern == p).nonzero()[:, 0]
        if name == "striped":
            weight[i] = (torch.sin(2 * math.pi * along[i]) > 0).float()
        elif name == "checkered":
            weight[i] = ((torch.floor(along[i]) + torch.floor(across[i])) % 2).float()
        elif name == "gradient":
            weight[i] = (along[i] - lo[i]) / (hi[i] - lo[i] + 1e-6)
        elif name == "speckled":
            weight[i] = (blobs[i, 0] > 0.5).float()
    w = weight[:, None]
    return col_a[:, :, None, None] * (1 - w) + col_b[:, :, None, None] * w


def _grey_background(
    luminance: Tensor, g: torch.Generator, constant: float | None = None
) -> tuple[Tensor, Tensor]:
    """Grey levels (n,) darker or lighter than the object, and the dark/light flag; or
    ``constant`` grey (dark) for every image, drawing the same random numbers."""
    n = luminance.shape[0]
    dark = torch.rand(n, generator=g) < 0.5
    k = torch.rand(n, generator=g)
    if constant is not None:
        return torch.full((n,), constant), torch.ones(n, dtype=torch.bool)
    darker = luminance * (0.15 + 0.35 * k)
    lighter = luminance + (255 - luminance) * (0.5 + 0.35 * k)
    return torch.where(dark, darker, lighter), dark


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _chunk(n: int, size: int, seed: int, style: Style) -> Split:
    g = torch.Generator().manual_seed(seed)
    palette = torch.tensor(list(COLOURS.values()), dtype=torch.float32)  # (8, 3)
    names = list(COLOURS)
    k = len(names)

    labels = torch.randint(0, len(SHAPES), (n,), generator=g)
    usual = labels % k
    random_colour = torch.randint(0, k, (n,), generator=g)
    fg_idx = torch.where(torch.rand(n, generator=g) < COLOUR_BIAS, usual, random_colour)
    pattern = torch.randint(0, len(PATTERNS), (n,), generator=g)

    fg = palette[fg_idx] * (0.8 + 0.35 * torch.rand(n, 1, generator=g))
    fg = (fg + 12 * torch.randn(n, 3, generator=g)).clamp(0, 255)  # (n, 3)
    luminance = fg @ torch.tensor(ops.GRAY_WEIGHTS)
    level, dark = _grey_background(luminance, g, style.background)
    # The pattern's second level moves towards mid-grey, so it never clips.
    amp = style.pattern_amplitude
    level_b = level + torch.where(level < 128, amp, -amp)
    bg_a, bg_b = level[:, None].expand(-1, 3), level_b[:, None].expand(-1, 3)

    # Object pose: centre, radius (fraction of the image side), rotation.
    (c0, c1), (r0, r1) = style.centre, style.radius
    cx = c0 + (c1 - c0) * torch.rand(n, 1, 1, generator=g)
    cy = c0 + (c1 - c0) * torch.rand(n, 1, 1, generator=g)
    radius = r0 + (r1 - r0) * torch.rand(n, 1, 1, generator=g)
    theta = 2 * math.pi * torch.rand(n, 1, 1, generator=g)

    hi = size * SUPERSAMPLE
    coords = (torch.arange(hi, dtype=torch.float32) + 0.5) / hi  # pixel centres in [0, 1]
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    dx, dy = xs[None] - cx, ys[None] - cy  # (n, hi, hi)
    u = (dx * torch.cos(theta) + dy * torch.sin(theta)) / radius
    v = (-dx * torch.sin(theta) + dy * torch.cos(theta)) / radius
    inside = torch.zeros(n, hi, hi, dtype=torch.bool)
    for c in range(len(SHAPES)):  # one batched evaluation per class, not per image
        idx = (labels == c).nonzero()[:, 0]
        if len(idx):
            inside[idx] = _inside(c, u[idx], v[idx])

    # Blend by the object's sub-pixel coverage: anti-aliased edges at the output size.
    coverage = F.avg_pool2d(inside[:, None].float(), SUPERSAMPLE)  # (n, 1, S, S)
    background = _background(pattern, bg_a, bg_b, size, g)
    image = background * (1 - coverage) + fg[:, :, None, None] * coverage
    coverage = coverage[:, 0]
    lo_sd, hi_sd = style.noise_min, style.noise_max
    noise_sd = lo_sd + (hi_sd - lo_sd) * torch.rand(n, 1, 1, 1, generator=g)
    image = (image + noise_sd * torch.randn(image.shape, generator=g)).clamp(0, 255)

    masks = torch.where(coverage >= 0.5, labels[:, None, None] + 1, 0).to(torch.uint8)
    if amp == 0:  # no pattern drawn: the background is plain whatever id was drawn
        pattern = torch.full_like(pattern, PATTERNS.index("plain"))
    captions = [
        f"{_article(names[f])} {names[f]} {SHAPES[c]} on a {'dark' if d else 'light'} gray "
        f"{PATTERNS[p]} background"
        for f, c, d, p in zip(fg_idx.tolist(), labels.tolist(), dark.tolist(), pattern.tolist())
    ]
    # The nuisance variables the generator drew, for diagnostics of what features encode.
    factors = {
        "colour": fg_idx,
        "pattern": pattern,
        "dark_background": dark.long(),
        "background_level": level,
        "object_luminance": luminance,
        "centre_x": cx.flatten(),
        "centre_y": cy.flatten(),
        "radius": radius.flatten(),
        "rotation": theta.flatten(),
        "noise": noise_sd.flatten(),
    }
    return Split(image.round().to(torch.uint8), labels.long(), masks, captions, factors)


def generate(n: int, size: int = 32, seed: int = 0, style: Style = Style()) -> Split:
    """``n`` images of side ``size``; the first ``m`` images are the same for any n >= m."""
    if n <= 0:
        return Split(
            torch.zeros(0, 3, size, size, dtype=torch.uint8),
            torch.zeros(0).long(),
            torch.zeros(0, size, size, dtype=torch.uint8),
            [],
            {},
        )
    # Always render whole chunks (random draws depend on the chunk length), then trim.
    chunks = [
        _chunk(CHUNK, size, seed * 1_000_003 + start // CHUNK, style)
        for start in range(0, n, CHUNK)
    ]
    if n % CHUNK:
        chunks[-1] = chunks[-1].subset(slice(0, n % CHUNK))
    return Split(
        torch.cat([c.images for c in chunks]),
        torch.cat([c.labels for c in chunks]),
        torch.cat([c.masks for c in chunks]),  # type: ignore[misc]
        [cap for c in chunks for cap in c.captions],  # type: ignore[union-attr]
        {k: torch.cat([c.factors[k] for c in chunks]) for k in chunks[0].factors},  # type: ignore[index,union-attr]
    )


def _load(cfg: DataConfig, name: str, style: Style) -> DatasetSplits:
    size, s = cfg.image_size, cfg.split_seed
    # Disjoint generator streams per split: seed 3s, 3s + 1, 3s + 2.
    train = generate(cfg.train_size, size, 3 * s, style)
    val = generate(cfg.val_size, size, 3 * s + 1, style)
    test = generate(cfg.test_size, size, 3 * s + 2, style)
    for split_name, split in (("train", train), ("val", val), ("test", test)):
        if len(split) == 0:
            raise UserError(f"{name}: data.{split_name}_size must be > 0")
    return DatasetSplits(name, list(SHAPES), train, val, test)


# Views suited to this dataset (SimCLR's colour strength 1.0 with a full hue turn):
# hue is a nuisance here by construction, and with BYOL's milder (0.4, 0.4, 0.2, 0.1)
# jitter both SimCLR and BYOL kept matching the object's colour instead of its shape.
RECIPE = {
    "aug": {
        "crop_min_scale": 0.3,
        "brightness": 0.8,
        "contrast": 0.8,
        "saturation": 0.8,
        "hue": 0.5,
        # Training views at 24 of 32 px, evaluation on the whole 32 px images: in fp32 on
        # an Ice Lake Xeon BYOL went from 59.5 / 82.1 (kNN / linear, 286 s) to 66.3 / 84.2
        # (3 seeds) in 0.7x the time, SimCLR 97.0 -> 97.8 in 129 s instead of 200; at 20 px
        # BYOL's head fell to 0.39 of 1/sqrt(d) (benchmarks/results/recipes.md, 12-05).
        "view_scale": 0.75,
        # No Gaussian blur: the papers' sigma 0.1-2 px was set for 224 px views; on 24 px
        # views it is ~9x stronger and erases the outline that is the class. Peers turn it
        # off at 32 px (lightly's CIFAR-10 benchmark, solo-learn's asymmetric.yaml). In the
        # augmentation sweep BYOL's kNN rose by 8.3 +- 3.6 points paired over 3 seeds, DINO
        # +5.7 (3 seeds), SimCLR within noise (benchmarks/results/recipes.md, 12-06). The
        # augmentation sweep pins blur back on: its baseline is the papers' full pipeline.
        "blur": False,
    },
}


# `shapes_noisy`'s views add fresh pixel noise of the data's own strength to every view.
# Two crops of one image share its fixed noise where they overlap, so without it BYOL
# could match noise as well as shape; with it, BYOL at its default 16 epochs gained +3.0 ±
# 1.3 kNN points paired over 3 seeds (every seed up), reaching +15.6 ± 2.6 over the
# untrained backbone (fp32, benchmarks/results/recipes.md, 12-06).
NOISY_RECIPE = {"aug": {**RECIPE["aug"], "noise_sd": round(NOISY_SD / 255, 3)}}


def prompts(shape: str) -> list[str]:
    """Zero-shot prompts for a class: every caption the generator can write for it
    (8 colours x 2 shades x 5 patterns), averaged as a CLIP prompt ensemble."""
    return [
        f"{_article(colour)} {colour} {shape} on a {shade} gray {pattern} background"
        for colour in COLOURS
        for shade in ("dark", "light")
        for pattern in PATTERNS
    ]


def _register(name: str, description: str, style: Style, recipe: dict = RECIPE) -> None:
    """One generated dataset: the same classes, masks, captions and prompts, in the
    nuisance ranges of ``style``, with the views of ``recipe``."""
    DATASETS.register(
        name, description, has_masks=True, has_captions=True, prompts=prompts, recipe=recipe
    )(lambda cfg: _load(cfg, name, style))


_register(
    "shapes",
    "embedded generated dataset: 10 shape classes, colour/pose vary on one plain dark "
    "background, masks + captions",
    Style(),
)
_register(
    "shapes_hard",
    "shapes with smaller objects on dark-or-light patterned backgrounds and pixel noise: "
    "raw pixels score 26% kNN, but BYOL and DINO learn nothing within a CPU budget",
    HARD,
)
_register(
    "shapes_easy", "shapes with centred objects: a testbed where shape is what views share", EASY
)
_register(
    "shapes_noisy",
    f"the default: shapes with pixel noise of sd {NOISY_SD:.0f} grey levels in every image "
    "(and in every view), so raw pixels score 29% kNN (50% on shapes)",
    NOISY,
    NOISY_RECIPE,
)
