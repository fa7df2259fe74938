import pytest
import torch

from ssl_bench.config import DataConfig
from ssl_bench.data.datasets import load_dataset
from ssl_bench.data.shapes import COLOURS, PATTERNS, SHAPES, generate


def test_deterministic_and_prefix_stable():
    a = generate(700, 32, seed=5)
    b = generate(700, 32, seed=5)
    c = generate(1200, 32, seed=5)
    assert torch.equal(a.images, b.images) and a.captions == b.captions
    assert torch.equal(a.images, c.images[:700]) and torch.equal(a.labels, c.labels[:700])
    assert not torch.equal(generate(50, 32, seed=6).images, a.images[:50])


def test_sample_contents_are_consistent():
    s = generate(600, 32, seed=1)
    assert s.images.dtype == torch.uint8 and s.images.shape == (600, 3, 32, 32)
    assert len(SHAPES) >= 10 and set(s.labels.tolist()) == set(range(len(SHAPES)))
    for i in range(0, 600, 37):
        present = set(s.masks[i].unique().tolist())
        assert present <= {0, int(s.labels[i]) + 1}  # background + the object's class
        assert int(s.labels[i]) + 1 in present  # the object is visible
        words = s.captions[i].split()
        assert SHAPES[s.labels[i]] in words
        assert words[1] in COLOURS  # the object's colour
        assert ("dark gray" in s.captions[i]) or ("light gray" in s.captions[i])
        assert any(p in words for p in PATTERNS)


def test_object_colour_matches_caption():
    s = generate(200, 32, seed=2)
    palette = torch.tensor(list(COLOURS.values()), dtype=torch.float32)
    hits = 0
    for i in range(200):
        inside = s.masks[i] > 0
        mean = s.images[i][:, inside].float().mean(1)
        nearest = list(COLOURS)[int(((palette - mean) ** 2).sum(1).argmin())]
        hits += nearest == s.captions[i].split()[1]
    assert hits / 200 > 0.8  # brightness jitter moves a few across palette boundaries


def test_splits_sizes_and_other_resolution():
    d = load_dataset(DataConfig(image_size=64, train_size=100, val_size=20, test_size=30))
    assert (len(d.train), len(d.val), len(d.test)) == (100, 20, 30)
    assert d.train.images.shape[1:] == (3, 64, 64) and d.train.masks.shape[1:] == (64, 64)
    assert d.num_classes == len(SHAPES) and d.has_masks
    # Splits come from different generator streams.
    assert not torch.equal(d.train.images[:20], d.val.images)


def test_generator_factors_match_captions_and_masks():
    s = generate(600, 32, seed=3)
    f = s.factors
    assert set(f) >= {"colour", "pattern", "dark_background", "centre_x", "centre_y", "radius"}
    names = list(COLOURS)
    for i in range(0, 600, 41):
        words = s.captions[i].split()
        assert words[1] == names[int(f["colour"][i])]
        assert PATTERNS[int(f["pattern"][i])] in words
        assert ("dark" in words) == bool(f["dark_background"][i])
        # The mask's centre of mass lies near the drawn centre (shapes are roughly centred).
        ys, xs = (s.masks[i] > 0).nonzero(as_tuple=True)
        assert abs((xs.float().mean() + 0.5) / 32 - f["centre_x"][i]) < 0.15
        assert abs((ys.float().mean() + 0.5) / 32 - f["centre_y"][i]) < 0.15
    # Prefix-stable like the images, and kept by subset().
    assert torch.equal(generate(700, 32, seed=3).factors["radius"][:600], f["radius"])
    part = s.subset(torch.tensor([5, 2]))
    assert torch.equal(part.factors["colour"], f["colour"][[5, 2]])


def test_shapes_is_plain_and_hard_keeps_the_nuisances():
    """`shapes` is one plain dark background without noise (the notebook's `v_wide_big`);
    `shapes_hard` draws the same classes on varying patterned backgrounds with noise."""
    from ssl_bench.data.shapes import HARD

    plain, hard = generate(500, 32, seed=0), generate(500, 32, seed=0, style=HARD)
    assert torch.equal(plain.labels, hard.labels)  # same random stream, same classes
    background = plain.images.permute(1, 0, 2, 3)[:, plain.masks == 0]  # (3, pixels)
    # one plain dark background, no noise (anti-aliased edges aside)
    assert (background == 40).float().mean() > 0.9 and background.float().median() == 40
    assert all("dark gray plain background" in c for c in plain.captions)
    assert plain.factors["radius"].min() >= 0.28 and plain.factors["centre_x"].min() < 0.3
    assert hard.images[:, :, 0, 0].float().std() > 20  # hard's backgrounds vary
    assert len(set(hard.factors["pattern"].tolist())) == len(PATTERNS)
    assert hard.factors["dark_background"].float().mean().item() < 0.7
    data = load_dataset(DataConfig(name="shapes_hard", train_size=40, val_size=20, test_size=20))
    assert data.name == "shapes_hard" and data.has_masks and data.num_classes == len(SHAPES)


def test_shapes_easy_centres_the_objects():
    from ssl_bench.data.shapes import EASY

    easy, default = generate(500, 32, seed=0, style=EASY), generate(500, 32, seed=0)
    assert torch.equal(easy.labels, default.labels)
    assert torch.all(easy.images[:, :, [0, 0, -1, -1], [0, -1, 0, -1]].float() == 40)
    assert easy.factors["centre_x"].min() >= 0.45 and easy.factors["centre_x"].max() <= 0.55
    assert default.factors["centre_x"].max() > 0.6
    data = load_dataset(DataConfig(name="shapes_easy", train_size=40, val_size=20, test_size=20))
    assert data.name == "shapes_easy" and data.has_masks and data.num_classes == len(SHAPES)


def test_shapes_noisy_is_shapes_with_the_same_noise_in_every_image():
    from ssl_bench.data.shapes import NOISY, NOISY_SD

    noisy, plain = generate(200, 32, seed=0, style=NOISY), generate(200, 32, seed=0)
    assert torch.equal(noisy.labels, plain.labels) and torch.equal(noisy.masks, plain.masks)
    assert torch.all(noisy.factors["noise"] == NOISY_SD)  # one level: not a per-image factor
    # On the plain background (grey 40) the noise is N(0, sd^2), clamped at 0 and rounded.
    background = ((plain.masks == 0)[:, None] & (plain.images == 40)).expand_as(plain.images)
    seen = noisy.images[background].float()
    z = torch.randn(1_000_000, generator=torch.Generator().manual_seed(1))
    expected = (40 + NOISY_SD * z).clamp(0, 255).round()
    assert abs(seen.mean() - expected.mean()) < 1.0 and abs(seen.std() - expected.std()) < 1.0
    data = load_dataset(DataConfig(name="shapes_noisy", train_size=40, val_size=20, test_size=20))
    assert data.name == "shapes_noisy" and data.has_masks and data.num_classes == len(SHAPES)


def test_the_default_dataset_is_shapes_noisy_with_fresh_noise_in_its_views():
    """Its images' noise is fixed, so two crops share it; its recipe adds noise of the same
    strength to every view (aug.noise_sd, in [0, 1] units), `shapes`' recipe adds none."""
    from ssl_bench.data.shapes import NOISY_SD
    from ssl_bench.layering import resolve

    cfg = resolve("byol")
    assert cfg.data.name == "shapes_noisy" and cfg.aug.noise_sd == pytest.approx(
        NOISY_SD / 255, abs=1e-3
    )
    assert cfg.aug.hue == 0.5 and cfg.aug.view_scale == 0.75 and not cfg.aug.blur  # shapes' views
    assert resolve("byol", set_items=["data.name=shapes"]).aug.noise_sd == 0
