import pytest
import torch

from ssl_bench.backbones import build_backbone
from ssl_bench.config import ModelConfig
from ssl_bench.registry import BACKBONES


@pytest.mark.parametrize("name", BACKBONES.names())
def test_every_backbone_gives_pooled_and_spatial_features(name):
    net = build_backbone(ModelConfig(backbone=name, width=8, depth=2), 32)
    x = torch.randn(2, 3, 32, 32)
    net.eval()
    pooled, spatial = net(x), net.forward_spatial(x)
    assert pooled.shape == (2, net.dim)
    assert spatial.shape[:2] == (2, net.dim) and spatial.ndim == 4 and spatial.shape[-1] >= 4
    both = net.forward_features(x)  # one pass gives the same two
    assert torch.allclose(both[0], pooled, atol=1e-5) and torch.allclose(
        both[1], spatial, atol=1e-5
    )


def test_vit_conv_stem_gives_the_same_token_grid():
    from ssl_bench.errors import UserError

    patchify = build_backbone(ModelConfig(backbone="vit_tiny", depth=1, patch_size=8), 32)
    conv = build_backbone(
        ModelConfig(backbone="vit_tiny", depth=1, patch_size=8, vit_stem="conv"), 32
    )
    x = torch.randn(2, 3, 32, 32)
    assert conv.forward_spatial(x).shape == patchify.forward_spatial(x).shape == (2, 192, 4, 4)
    strides = [m.stride[0] for m in conv.patch_embed if isinstance(m, torch.nn.Conv2d)]
    assert strides == [2, 2, 2, 1]  # three halvings to the 8 px grid, then 1x1 to 192
    with pytest.raises(UserError, match="vit_stem"):
        ModelConfig(vit_stem="hybrid").validate()
    with pytest.raises(UserError, match="power-of-two patch size, got 12"):
        build_backbone(
            ModelConfig(backbone="vit_tiny", depth=1, patch_size=12, vit_stem="conv"), 96
        )


def test_vit_patch_size_follows_image_size_and_interpolates_positions():
    vit = build_backbone(ModelConfig(backbone="vit_tiny", depth=1), 32)
    assert vit.patch_size == 4 and vit.grid == 8
    assert build_backbone(ModelConfig(backbone="vit_tiny", depth=1), 224).patch_size == 16
    small = torch.randn(2, 3, 16, 16)  # a DINO local crop
    assert vit(small).shape == (2, 192)
    assert vit.forward_spatial(small).shape == (2, 192, 4, 4)


def test_vit_token_subset_and_attention():
    vit = build_backbone(ModelConfig(backbone="vit_tiny", depth=2), 32)
    keep = torch.tensor([[0, 5, 9], [1, 2, 3]])
    tokens, attn = vit.tokens(torch.randn(2, 3, 32, 32), keep=keep, return_attention=True)
    assert tokens.shape == (2, 4, 192)
    assert len(attn) == 2 and attn[0].shape == (2, 3, 4, 4)
    torch.testing.assert_close(attn[0].sum(-1), torch.ones(2, 3, 4))


def test_resnet_cifar_stem_keeps_resolution():
    net = build_backbone(ModelConfig(backbone="resnet18"), 32)
    assert net.forward_spatial(torch.randn(1, 3, 32, 32)).shape == (1, 512, 4, 4)
