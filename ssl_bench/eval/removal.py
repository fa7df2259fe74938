"""Question 2's diagnostic: which patches does a teacher's attention keep?

For attention-based and random removal at the method's keep ratio, the fraction of kept
patches that touch the object (any mask pixel in the patch), averaged over the test
split, beside the fraction of all patches that touch it (what random removal should
give). PNGs of a few test images show the image, the attention map and the kept patches.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ssl_bench.data.views import ViewGenerator
from ssl_bench.token_removal import TokenRemoval, removed_mask, select_patches


@torch.no_grad()
def removal_overlap(
    method: TokenRemoval,
    images: Tensor,
    masks: Tensor,
    views: ViewGenerator,
    device: torch.device,
    batch_size: int = 256,
    seed: int = 0,
) -> tuple[dict[str, float], Tensor, dict[str, Tensor]]:
    """Kept-on-object fractions; also the attention (N, P) and kept masks per mode."""
    was = method.training
    method.eval()
    grid, ratio = method.grid, method.keep_ratio
    g = torch.Generator(device=device).manual_seed(seed)
    attention, kept = [], {"attention": [], "random": []}
    for i in range(0, len(images), batch_size):
        x = views.plain(images[i : i + batch_size].to(device))
        scores = method.removal_scores(x).float()  # (B, P)
        attention.append(scores.cpu())
        for mode in kept:
            keep = select_patches(scores, grid, ratio, mode, g)
            kept[mode].append(~removed_mask(keep, grid * grid).cpu())
    method.train(was)
    p = images.shape[-1] // grid
    on_object = F.max_pool2d((masks > 0).float()[:, None], p).flatten(1).bool()  # (N, P)
    out = {"keep_ratio": ratio, "all_patches": on_object.float().mean().item()}
    masks_kept = {mode: torch.cat(v) for mode, v in kept.items()}
    for mode, k in masks_kept.items():
        out[mode] = ((k & on_object).sum(1) / k.sum(1)).mean().item()
    return out, torch.cat(attention), masks_kept


def save_figures(
    folder: Path, images: Tensor, attention: Tensor, kept: dict[str, Tensor], n: int = 4
) -> list[str]:
    """One PNG per test image: image | teacher attention | kept (attention) | kept (random)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    grid = int(attention.shape[1] ** 0.5)
    size = images.shape[-1]
    paths = []
    for i in range(min(n, len(images))):
        img = images[i].permute(1, 2, 0).numpy()
        fig, axes = plt.subplots(1, 4, figsize=(8, 2.3))
        axes[0].imshow(img)
        axes[0].set_title("image", fontsize=8)
        axes[1].imshow(attention[i].reshape(grid, grid).numpy(), cmap="inferno")
        axes[1].set_title("teacher CLS attention", fontsize=8)
        for ax, mode in zip(axes[2:], ("attention", "random")):
            keep = kept[mode][i].reshape(1, 1, grid, grid).float()
            shade = F.interpolate(keep, size=(size, size), mode="nearest")[0, 0]
            shown = img * (0.25 + 0.75 * shade.numpy()[..., None])
            ax.imshow(shown.astype("uint8"))
            ax.set_title(f"kept ({mode})", fontsize=8)
        for ax in axes:
            ax.axis("off")
        path = folder / f"test{i}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(str(path))
    return paths
