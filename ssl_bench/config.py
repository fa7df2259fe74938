"""Typed configuration: the sections of a run as dataclasses with defaults and checks.

A config has the sections ``data``, ``aug``, ``model``, ``method``, ``optim``, ``train``
and ``eval``. The ``method`` section's schema belongs to the method: each method
registers a subclass of :class:`MethodConfig` with its own hyperparameters. How a config
is built from its layers (recipes, YAML files, flags, ``--set``) is
:mod:`ssl_bench.layering`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from ssl_bench.errors import UserError, unknown
from ssl_bench.eval.names import parse_only


@dataclass
class DataConfig:
    # `shapes_noisy` since 2026-12-06: on `shapes` raw pixels reach 50% kNN, so a method
    # could match pixels and look like it learned (ssl_bench/data/shapes.py).
    name: str = "shapes_noisy"
    data_dir: str | None = None  # where real datasets live; never downloaded unless `download`
    download: bool = False  # explicit opt-in to fetch a real dataset into data_dir
    image_size: int = 32
    train_size: int = 5000  # 0 = every available image (real datasets)
    val_size: int = 1000
    test_size: int = 1000  # 0 = the whole official test split (real datasets)
    split_seed: int = 0  # fixes the splits, independently of the training seed
    use_unlabeled: bool = False  # stl10: pre-train on train + unlabeled

    def validate(self) -> None:
        from ssl_bench.registry import DATASETS

        DATASETS.get(self.name)  # fails with the valid choices
        _check(self.image_size >= 8, f"data.image_size must be >= 8, got {self.image_size}")
        for key in ("train_size", "val_size", "test_size"):
            value = getattr(self, key)
            _check(value >= 0, f"data.{key} must be >= 0, got {value}")


@dataclass
class AugConfig:
    """Switches and strengths of the view transforms, shared by every view of a method.

    Each switch turns one transform off in every view, which is what the
    augmentation-removal ablation (BYOL Fig. 3b) needs. Per-view probabilities (BYOL's
    asymmetric blur/solarise) are declared by the method.
    """

    crop: bool = True
    crop_min_scale: float = 0.08  # FACTS: crop scale (0.08, 1); datasets may override
    # (the `shapes` recipe uses 0.3: an 8% crop of a 32 px image often misses the object)
    crop_max_scale: float = 1.0
    # Side of every training view (global and local crops) as a fraction of its declared
    # side: 0.75 trains on 24 px views of 32 px images. Fewer pixels per step, and a
    # random-resized crop shown smaller matches the object sizes of the whole test image
    # (FixRes, Touvron et al. 2019). Evaluation always reads whole images at full size.
    view_scale: float = 1.0
    flip: bool = True  # horizontal, at each method's own probability (0.5)
    # Geometric transforms the papers' views do not use, for data without an up or a
    # diagonal (``shapes``): the probability of an upside-down flip and of a transpose.
    vflip_p: float = 0.0
    transpose_p: float = 0.0
    color_jitter: bool = True
    brightness: float = 0.4  # FACTS (BYOL/SimCLR): (0.4, 0.4, 0.2, 0.1), p = 0.8
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    grayscale: bool = True
    blur: bool = True
    blur_sigma_min: float = 0.1
    blur_sigma_max: float = 2.0
    blur_kernel: int = 0  # 0 = about 10% of the view size, odd (BYOL: 23 px at 224 px)
    solarize: bool = True
    # Std of Gaussian pixel noise added to every view on its own draw, in [0, 1] units of
    # the pixel range (0: off, as in the papers). For data whose images carry fixed pixel
    # noise (`shapes_noisy`): two crops of one image share that noise where they overlap,
    # so matching it is a shortcut; fresh noise per view makes noise something to ignore.
    noise_sd: float = 0.0

    def validate(self) -> None:
        lo, hi = self.crop_min_scale, self.crop_max_scale
        _check(
            0 < lo <= hi <= 1,
            f"aug.crop_min_scale/crop_max_scale need 0 < min <= max <= 1, got {lo}, {hi}",
        )
        _check(
            0 < self.view_scale <= 1,
            f"aug.view_scale is a fraction of the view side in (0, 1], got {self.view_scale}",
        )
        _check(
            0 <= self.noise_sd <= 1,
            f"aug.noise_sd is a std in [0, 1] pixel units, got {self.noise_sd}",
        )
        for key in ("brightness", "contrast", "saturation"):
            _check(getattr(self, key) >= 0, f"aug.{key} must be >= 0")
        for key in ("vflip_p", "transpose_p"):
            value = getattr(self, key)
            _check(0 <= value <= 1, f"aug.{key} is a probability in [0, 1], got {value}")
        _check(0 <= self.hue <= 0.5, f"aug.hue must be in [0, 0.5], got {self.hue}")
        _check(
            0 < self.blur_sigma_min <= self.blur_sigma_max,
            "aug.blur_sigma_min/max need 0 < min <= max",
        )
        _check(
            self.blur_kernel == 0 or (self.blur_kernel % 2 == 1 and self.blur_kernel > 0),
            f"aug.blur_kernel must be 0 (auto) or a positive odd number, got {self.blur_kernel}",
        )


@dataclass
class ModelConfig:
    backbone: str = "small_cnn"
    width: int = 32  # small_cnn: channels of the first stage (doubled per stage)
    patch_size: int = 0  # ViTs: 0 = image_size // 8 (4 px at 32 px), at most 16 px
    depth: int = 0  # ViTs: number of blocks; 0 = the architecture's standard depth (12)
    vit_stem: str = "patch"  # ViTs: patch (one strided conv) | conv (early convolutions)

    def validate(self) -> None:
        from ssl_bench.registry import BACKBONES

        BACKBONES.get(self.backbone)  # fails with the valid choices
        _check(self.width >= 1, f"model.width must be >= 1, got {self.width}")
        _check(self.patch_size >= 0, f"model.patch_size must be >= 0, got {self.patch_size}")
        _check(self.depth >= 0, f"model.depth must be >= 0, got {self.depth}")
        if self.vit_stem not in ("patch", "conv"):
            raise unknown("model.vit_stem", self.vit_stem, ("patch", "conv"))


@dataclass
class MethodConfig:
    """Base of every method's hyperparameters; ``name`` selects the method.

    ``VIEW_KEYS_OWNED`` maps ``aug.*`` keys the method's own settings replace to those
    settings (multi-crop methods set each crop's scale themselves): giving such a key
    explicitly is an error, since it could not take effect.
    """

    VIEW_KEYS_OWNED: ClassVar[dict[str, str]] = {}

    name: str = ""

    def validate(self) -> None:
        pass


OPTIMIZERS = ("sgd", "adamw", "lars")
LR_SCALING = ("linear", "sqrt", "none")


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd | adamw | lars (lightly's LARS)
    lr: float = 0.06  # base learning rate at batch size 256, see lr_scaling
    lr_scaling: str = "linear"  # effective lr = lr * (batch/256) [linear] or sqrt(batch/256)
    momentum: float = 0.9  # sgd, lars
    betas: tuple[float, float] = (0.9, 0.999)  # adamw
    weight_decay: float = 5e-4  # never applied to norm layers and biases
    weight_decay_end: float | None = None  # cosine schedule to this value (DINO); None = constant
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.0  # final lr as a fraction of the peak lr

    def validate(self) -> None:
        if self.name not in OPTIMIZERS:
            raise unknown("optimizer", self.name, OPTIMIZERS)
        if self.lr_scaling not in LR_SCALING:
            raise unknown("optim.lr_scaling", self.lr_scaling, LR_SCALING)
        _check(self.lr > 0, f"optim.lr must be > 0, got {self.lr}")
        _check(self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        _check(
            self.warmup_epochs >= 0, f"optim.warmup_epochs must be >= 0, got {self.warmup_epochs}"
        )
        _check(0 <= self.min_lr_ratio <= 1, "optim.min_lr_ratio must be in [0, 1]")
        _check(0 <= self.momentum < 1, f"optim.momentum must be in [0, 1), got {self.momentum}")


PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class TrainConfig:
    epochs: int = 20
    # Images per optimiser step, summed over ranks and accumulation steps. 128 at CPU
    # scale: twice the optimiser steps of 256 in the same minutes (BYOL paper: 4096).
    batch_size: int = 128
    accum_steps: int = 1  # gradient accumulation; EMA updates once per real optimiser step
    seed: int = 0
    device: str = "auto"  # auto = cuda if available, else cpu
    precision: str = "auto"  # auto = bf16 autocast on CUDA and bf16-capable CPUs, else fp32
    log_every: int = 10  # optimiser steps between metrics.jsonl lines
    knn_monitor: bool = True  # cheap kNN on the val split after each epoch
    knn_monitor_size: int = 1000  # monitor's memory bank (train); half as many val queries
    # Optimiser steps between extra monitor records inside an epoch (0 = epoch ends only).
    # With the monitor on, a fresh run also records it once before the first step, so a
    # method that ends below its own initialisation shows it.
    monitor_every: int = 0
    progress: bool = True  # tqdm progress bar
    tensorboard: bool = False  # mirror metrics.jsonl to RUN/tensorboard/ (extra [tb])
    threads: int = 0  # CPU threads for torch; 0 = torch's default
    # Under torchrun on CUDA: BatchNorm statistics over the global batch (SyncBatchNorm).
    # On CPU (gloo) BatchNorm stays per rank, each normalising its B / world_size share.
    sync_bn: bool = True

    def validate(self) -> None:
        _check(self.epochs > 0, f"train.epochs must be > 0, got {self.epochs}")
        _check(self.batch_size >= 2, f"train.batch_size must be >= 2, got {self.batch_size}")
        _check(self.accum_steps >= 1, f"train.accum_steps must be >= 1, got {self.accum_steps}")
        _check(
            self.batch_size % self.accum_steps == 0,
            f"train.batch_size ({self.batch_size}) must be divisible by train.accum_steps "
            f"({self.accum_steps})",
        )
        _check(self.log_every >= 1, f"train.log_every must be >= 1, got {self.log_every}")
        _check(self.threads >= 0, f"train.threads must be >= 0, got {self.threads}")
        _check(
            self.monitor_every >= 0, f"train.monitor_every must be >= 0, got {self.monitor_every}"
        )
        _check(
            self.knn_monitor or not self.monitor_every,
            "train.monitor_every needs train.knn_monitor=true (the monitor it schedules is off)",
        )
        if self.tensorboard and importlib.util.find_spec("tensorboard") is None:
            raise UserError(
                "train.tensorboard=true needs the tensorboard package: "
                "pip install -e '.[tb]' (or pip install tensorboard)"
            )
        if self.precision not in PRECISIONS:
            raise unknown("train.precision", self.precision, PRECISIONS)
        base = self.device.split(":")[0]
        if base not in ("auto", "cpu", "cuda", "mps"):
            raise unknown("device", self.device, ("auto", "cpu", "cuda", "cuda:N", "mps"))


@dataclass
class EvalConfig:
    enabled: bool = True  # evaluate at the end of `run`
    knn_k: int = 20  # DINO protocol: k = 20, T = 0.07 on l2-normalised features
    knn_t: float = 0.07
    batch_size: int = 512  # feature extraction batch
    evaluators: str = "knn,linear,lowshot,seg,collapse"  # what `run` evaluates at the end
    seg_epochs: int = 10  # segmentation probe (AdamW, cosine)
    seg_lr: float = 1e-2
    linear_augmented: bool = False  # also the augmented-view linear probe (large-scale protocol)
    augmented_epochs: int = 10
    # Fine-tuning probe (eval/finetune.py): off by default (it trains), or `--only finetune`.
    finetune: bool = False
    finetune_epochs: int = 5
    finetune_lrs: tuple[float, ...] = (3e-4, 1e-3)  # one model each, chosen on val

    def validate(self) -> None:
        parse_only(self.evaluators, "")
        _check(self.seg_epochs >= 1, f"eval.seg_epochs must be >= 1, got {self.seg_epochs}")
        _check(self.knn_k >= 1, f"eval.knn_k must be >= 1, got {self.knn_k}")
        _check(self.knn_t > 0, f"eval.knn_t must be > 0, got {self.knn_t}")
        _check(self.batch_size >= 1, f"eval.batch_size must be >= 1, got {self.batch_size}")
        _check(self.finetune_epochs >= 1, "eval.finetune_epochs must be >= 1")
        _check(
            len(self.finetune_lrs) > 0 and all(lr > 0 for lr in self.finetune_lrs),
            f"eval.finetune_lrs must be one or more learning rates > 0, got {self.finetune_lrs}",
        )


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> None:
        for f in fields(self):
            getattr(self, f.name).validate()

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


SECTIONS = tuple(f.name for f in fields(Config))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def check_crop_scale(key: str, scale: tuple[float, float]) -> None:
    """A (min, max) crop area fraction, as methods with several crop sizes declare."""
    lo, hi = scale
    _check(0 < lo <= hi <= 1, f"{key} needs 0 < min <= max <= 1, got {lo}, {hi}")


def check_momentum(key: str, value: float) -> None:
    """An EMA rate: 0 = the target is the online network, 1 = frozen."""
    _check(0 <= value <= 1, f"{key} must be in [0, 1], got {value}")


def _plain(value: Any) -> Any:
    """Tuples -> lists so that the YAML dump stays plain."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
