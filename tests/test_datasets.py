"""Real-dataset loaders on tiny files written in the genuine on-disk formats."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_bench.config import DataConfig
from ssl_bench.data.datasets import load_dataset
from ssl_bench.errors import UserError


def _rng():
    return np.random.default_rng(0)


def write_cifar(root, name="cifar10", n_train=20, n_test=10):
    rng = _rng()
    if name == "cifar10":
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        per = n_train // 5
        for i in range(1, 6):
            batch = {
                b"data": rng.integers(0, 256, (per, 3072), dtype=np.uint8),
                b"labels": rng.integers(0, 10, per).tolist(),
            }
            (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
        test = {
            b"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n_test).tolist(),
        }
        (folder / "test_batch").write_bytes(pickle.dumps(test))
        meta = {b"label_names": [f"class{i}".encode() for i in range(10)]}
        (folder / "batches.meta").write_bytes(pickle.dumps(meta))
        return folder
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        data = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"fine_labels": rng.integers(0, 100, n).tolist(),
            b"coarse_labels": rng.integers(0, 20, n).tolist(),
        }
        (folder / split).write_bytes(pickle.dumps(data))
    meta = {b"fine_label_names": [f"c{i}".encode() for i in range(100)]}
    (folder / "meta").write_bytes(pickle.dumps(meta))
    return folder


@pytest.mark.parametrize("name, classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_pickles(tmp_path, name, classes):
    folder = write_cifar(tmp_path, name)
    d = load_dataset(DataConfig(name=name, data_dir=str(tmp_path), val_size=4, image_size=32))
    assert d.num_classes == classes
    assert (len(d.train), len(d.val), len(d.test)) == (16, 4, 10)
    # Pixel layout: row-major 3x32x32 per image, exactly as in the official files.
    raw = pickle.loads((folder / ("test_batch" if name == "cifar10" else "test")).read_bytes())
    assert torch.equal(d.test.images[0], torch.from_numpy(raw[b"data"][0].reshape(3, 32, 32)))


def test_cifar_missing_and_corrupt(tmp_path):
    with pytest.raises(UserError, match="cifar10 not found.*data.download=true"):
        load_dataset(DataConfig(name="cifar10", data_dir=str(tmp_path)))
    folder = write_cifar(tmp_path)
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="corrupt CIFAR file .*data_batch_3"):
        load_dataset(DataConfig(name="cifar10", data_dir=str(tmp_path)))


def test_missing_data_dir_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="data directory not found"):
        load_dataset(DataConfig(name="cifar10", data_dir=str(tmp_path / "nope")))
    with pytest.raises(UserError, match="pass --data-dir"):
        load_dataset(DataConfig(name="stl10"))


def write_stl10(root, n_train=6, n_test=4, n_unlabeled=5):
    rng = _rng()
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    images = {}
    for split, n in (("train", n_train), ("test", n_test), ("unlabeled", n_unlabeled)):
        hwc = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
        images[split] = hwc
        # Official layout: each image stored as 3 x 96 x 96 in column-major order.
        hwc.transpose(0, 3, 2, 1).tofile(folder / f"{split}_X.bin")
        if split != "unlabeled":
            (rng.integers(1, 11, n).astype(np.uint8)).tofile(folder / f"{split}_y.bin")
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)))
    return images


def test_stl10_binary(tmp_path):
    images = write_stl10(tmp_path)
    cfg = DataConfig(name="stl10", data_dir=str(tmp_path), image_size=96, val_size=1)
    d = load_dataset(cfg)
    assert (len(d.train), len(d.val), len(d.test)) == (5, 1, 4)
    assert torch.equal(d.test.images[1], torch.from_numpy(images["test"][1]).permute(2, 0, 1))
    assert 0 <= int(d.test.labels.min()) and int(d.test.labels.max()) <= 9
    assert d.unlabeled is None
    cfg.use_unlabeled, cfg.image_size = True, 32
    d = load_dataset(cfg)
    assert len(d.pretrain_images(True)) == 5 + 5 and d.train.images.shape[-1] == 32
    assert (d.pretrain_labels(True)[5:] == -1).all()


def test_imagefolder_any_mode_and_size(tmp_path):
    rng = _rng()
    modes = [("RGB", (40, 30)), ("L", (20, 20)), ("RGBA", (50, 64)), ("P", (33, 17))]
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            folder = tmp_path / split / c
            folder.mkdir(parents=True)
            for i, (mode, size) in enumerate(modes):
                arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                img = Image.fromarray(arr).convert(mode)
                img.save(folder / f"{i}.{'png' if mode != 'RGB' else 'jpg'}")
    d = load_dataset(
        DataConfig(name="imagefolder", data_dir=str(tmp_path), image_size=16, val_size=2)
    )
    assert d.classes == ["cat", "dog"]
    assert (len(d.train), len(d.val), len(d.test)) == (7, 1, 8)  # val: at most a fifth of train
    assert d.train.images.shape[1:] == (3, 16, 16) and d.train.images.dtype == torch.uint8


def test_imagefolder_flat_and_corrupt(tmp_path):
    for c in ("a", "b", "c"):
        (tmp_path / c).mkdir()
        for i in range(5):
            Image.new("RGB", (12, 12), (i * 40, 0, 0)).save(tmp_path / c / f"{i}.png")
    d = load_dataset(DataConfig(name="imagefolder", data_dir=str(tmp_path), image_size=8))
    assert len(d.train) + len(d.val) + len(d.test) == 15
    bad = tmp_path / "b" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(UserError, match=f"cannot read image {bad}"):
        load_dataset(DataConfig(name="imagefolder", data_dir=str(tmp_path), image_size=8))


def test_digits_offline():
    d = load_dataset(DataConfig(name="digits", image_size=16, train_size=100))
    assert len(d.train) == 100 and d.num_classes == 10 and d.train.images.shape[1:] == (3, 16, 16)
    assert len(d.test) == 359  # a fifth of 1,797


def write_pets(root, n_per_split=6):
    rng = _rng()
    base = root / "oxford-iiit-pet"
    (base / "images").mkdir(parents=True)
    (base / "annotations" / "trimaps").mkdir(parents=True)
    breeds = [("Abyssinian", 1, 1), ("american_bulldog", 2, 2)]
    for split in ("trainval", "test"):
        lines = []
        for i in range(n_per_split):
            name, label, species = breeds[i % 2]
            image_id = f"{name}_{split}{i}"
            h, w = 30 + i * 7, 40
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                base / "images" / f"{image_id}.jpg"
            )
            trimap = np.full((h, w), 2, dtype=np.uint8)  # background
            trimap[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1  # pet
            trimap[h // 4 : h // 4 + 4, w // 4 : 3 * w // 4] = 3  # border
            Image.fromarray(trimap).save(base / "annotations" / "trimaps" / f"{image_id}.png")
            lines.append(f"{image_id} {label} {species} 1")
        (base / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")


def test_pets_trimaps_become_masks(tmp_path):
    write_pets(tmp_path)
    d = load_dataset(DataConfig(name="pets", data_dir=str(tmp_path), image_size=16, val_size=1))
    assert d.num_classes == 2 and d.has_masks
    assert (len(d.train), len(d.val), len(d.test)) == (5, 1, 6)
    m, y = d.test.masks[0], int(d.test.labels[0])
    assert set(m.unique().tolist()) == {0, y + 1, 255}
    assert m[8, 8] == y + 1 and m[0, 0] == 0
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="pets not found"):
        load_dataset(DataConfig(name="pets", data_dir=str(tmp_path / "empty")))
