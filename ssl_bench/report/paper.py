"""The papers' numbers our reports print beside ours (copied from ../shared/FACTS.md,
where each is quoted with its source and scale). They are anchors, not targets: the
papers trained for hundreds of epochs on ImageNet-scale data."""

# BYOL Fig. 3a: ImageNet linear top-1 (%) after 300 epochs, by batch size: (BYOL, SimCLR).
BYOL_FIG3A = {
    4096: (72.5, 67.9),
    2048: (72.4, 67.8),
    1024: (72.2, 67.4),
    512: (72.2, 66.5),
    256: (71.8, 64.3),
    128: (69.6, 63.6),
    64: (59.7, 59.2),
}
# BYOL Fig. 3b: ImageNet linear top-1 (%) with augmentations removed: (BYOL, SimCLR).
BYOL_FIG3B = {
    "baseline": (72.5, 67.9),
    "no_grayscale": (70.3, 61.9),
    "no_color": (63.4, 45.7),
    "crop_blur_only": (61.1, 41.7),
    "crop_only": (59.4, 40.3),
    "no_flip": (71.9, 67.3),
    "no_blur": (71.2, 65.2),
}
# Collapse variants, ImageNet linear top-1 (%): BYOL Table 5a/5b, SimCLR re-implementation.
COLLAPSE = {
    "simclr": 67.9,
    "byol": 72.5,
    "byol_tau1": 18.8,
    "byol_tau0": 0.3,
    "byol_no_predictor": 0.2,
}
# DetailCLIP (ViT-B/16, 25 epochs on YFCC-15M): ADE20K linear mIoU and ImageNet zero-shot.
DETAILCLIP = {"clip": (34.2, 37.6), "detailclip": (37.3, 43.9)}
# A-CLIP: zero-shot with the 50% most-attended patches kept vs a random 50%.
ACLIP_KEEP = {"attention": 41.3, "random": 38.0}
# CIFAR-10, ResNet-18, lightly's benchmark, kNN (k=200, T=0.1) after 200 epochs.
CIFAR10_KNN = {"byol": 86.8, "simclr": 84.8, "dino": 81.3}
