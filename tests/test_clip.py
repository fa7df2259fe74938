"""CLIP and DetailCLIP: tokenizer, token removal, loss terms, teacher, evaluators."""

import pytest
import torch
from helpers import views_for
from ssl_bench.methods.detailclip import patchify, reconstruction_loss

from ssl_bench.eval.zeroshot import encode_texts, retrieval, zero_shot
from ssl_bench.layering import resolve
from ssl_bench.method import DataInfo, build_method
from ssl_bench.text import Tokenizer
from ssl_bench.token_removal import (
    block_scores,
    blocks_to_patches,
    cls_attention,
    removed_mask,
    select_patches,
)

CAPTIONS = [
    "a red circle on a dark gray plain background",
    "a blue star on a light gray striped background",
    "an orange ring on a dark gray checkered background",
    "a green bar on a light gray plain background",
] * 2
INFO = DataInfo(4, 16, ["circle", "star", "ring", "bar"], num_train=8, captions=CAPTIONS)


def make(name, *sets, info=INFO):
    sets = ["data.image_size=16", "model.depth=1", "model.patch_size=2", *sets]  # 8x8 tokens
    cfg = resolve(name, set_items=sets)
    torch.manual_seed(0)
    return build_method(cfg, info), cfg


# ---------------------------------------------------------------- tokenizer


def test_tokenizer_round_trips_and_marks_unknown_words():
    tok = Tokenizer.fit(CAPTIONS)
    ids = tok.encode(CAPTIONS)
    assert ids.shape == (8, tok.length) and tok.length == 11  # 9 words + <sos> + <eos>
    assert [tok.decode(row) for row in ids] == CAPTIONS
    assert tok.decode(tok.encode(["A RED zebra"])[0]) == "a red <unk>"


def test_tokenizer_is_saved_with_the_checkpoint():
    method, _ = make("clip")
    state = method.state_dict()
    other_info = DataInfo(4, 16, INFO.classes, captions=["something else entirely"] * 8)
    other, _ = make("clip", info=other_info)
    assert other.tokenizer.vocab != method.tokenizer.vocab
    with pytest.raises(RuntimeError):  # a different vocabulary has another embedding size
        other.load_state_dict(state)
    same, _ = make("clip")
    same.tokenizer = Tokenizer(["<pad>"], 3)  # a wrong tokenizer is replaced on load
    same.load_state_dict(state)
    assert same.tokenizer.vocab == method.tokenizer.vocab


def test_captions_are_templated_for_class_labelled_data():
    info = DataInfo(4, 16, ["cat", "dog", "ship", "car"], num_train=4)
    method, _ = make("clip", info=info)
    ids = method.training_targets(torch.tensor([0, 3, -1, 1]))
    texts = [method.tokenizer.decode(r) for r in ids]
    assert texts == ["a photo of a cat", "a photo of a car", "a photo", "a photo of a dog"]


# ---------------------------------------------------------------- token removal


def test_attention_removal_keeps_exactly_the_most_attended_blocks():
    grid = 4  # 16 patches, 4 blocks of 2x2
    scores = torch.zeros(2, 16)
    # image 0: block 3 (patches 10, 11, 14, 15) and block 0 (0, 1, 4, 5) attended most
    scores[0, [10, 11, 14, 15]] = 1.0
    scores[0, [0, 1, 4, 5]] = 0.5
    scores[0, 2] = 0.9  # one hot patch does not outweigh a whole block
    # image 1: block 1 (2, 3, 6, 7) and block 2 (8, 9, 12, 13)
    scores[1, [2, 3, 6, 7]] = 0.7
    scores[1, [8, 9, 12, 13]] = 0.6
    keep = select_patches(scores, grid, 0.5, "attention")
    assert keep.tolist() == [[0, 1, 4, 5, 10, 11, 14, 15], [2, 3, 6, 7, 8, 9, 12, 13]]
    assert torch.equal(block_scores(scores, grid)[1], torch.tensor([0.0, 0.7, 0.6, 0.0]))


def test_random_removal_keeps_the_same_count_of_whole_blocks():
    scores = torch.rand(64, 64)  # 8x8 grid -> 16 blocks
    att = select_patches(scores, 8, 0.5, "attention")
    rnd = select_patches(scores, 8, 0.5, "random", torch.Generator().manual_seed(0))
    assert att.shape == rnd.shape == (64, 32)
    assert not torch.equal(att, rnd)
    blocks = (rnd // 8 // 2) * 4 + (rnd % 8) // 2  # block of each kept patch
    assert all(len(set(b)) == 8 and all(b.count(x) == 4 for x in set(b)) for b in blocks.tolist())
    assert select_patches(scores, 8, 0.5, "none").shape == (64, 64)
    assert removed_mask(att, 64).sum(1).eq(32).all()


def test_blocks_map_to_their_patches():
    assert blocks_to_patches(torch.tensor([[0, 3]]), 4).tolist() == [[0, 1, 4, 5, 10, 11, 14, 15]]


def test_cls_attention_averages_layers_and_heads():
    a = torch.softmax(torch.randn(3, 2, 4, 5, 5), -1)  # layers, B, heads, 1+N, 1+N
    expected = a[:, :, :, 0, 1:].mean(dim=(0, 2))
    assert torch.allclose(cls_attention(list(a)), expected)


# ---------------------------------------------------------------- loss terms


def test_reconstruction_loss_reads_removed_patches_only():
    g = torch.Generator().manual_seed(0)
    pred, pixels = torch.randn(2, 16, 12, generator=g), torch.randn(2, 16, 12, generator=g)
    removed = torch.rand(2, 16, generator=g) < 0.5
    base = reconstruction_loss(pred, pixels, removed)
    changed = pixels.clone()
    changed[~removed] += 5.0  # kept patches' targets
    assert torch.equal(reconstruction_loss(pred, changed, removed), base)
    changed[removed] += torch.randn(int(removed.sum()), 12, generator=g)
    assert not torch.allclose(reconstruction_loss(pred, changed, removed), base)


def test_patch_loss_reads_removed_patches_only():
    method, _ = make("detailclip", "method.center_momentum=1.0")  # centring frozen
    g = torch.Generator().manual_seed(0)
    decoded, teacher = torch.randn(2, 64, 192, generator=g), torch.randn(2, 64, 192, generator=g)
    keep = select_patches(torch.rand(2, 64, generator=g), 8, 0.5, "attention")
    removed = removed_mask(keep, 64)

    def term(d, t):
        return method.patch_term(d, t, removed)

    base = term(decoded, teacher)
    for tensor in (decoded, teacher):
        changed = tensor.clone()
        changed[~removed] += 3.0
        args = (changed, teacher) if tensor is decoded else (decoded, changed)
        assert torch.allclose(term(*args), base)
    changed = teacher.clone()
    changed[removed] += 3.0
    assert not torch.allclose(term(decoded, changed), base)


def test_zero_weight_terms_are_not_computed():
    method, cfg = make("detailclip", "method.patch_weight=0", "method.rec_weight=0")
    assert method.decoder is None and method.pixel_head is None
    labels = method.training_targets(torch.arange(8) % 4)
    out = method.training_step(views_for(method, cfg), labels, 0, 10)
    assert set(out) == {"loss", "loss_clip", "loss_cls"}

    method, cfg = make("detailclip", "method.cls_weight=0", "method.patch_weight=0")
    calls = []
    method.decoder.register_forward_hook(lambda *a: calls.append("decoder"))
    method.text.register_forward_hook(lambda *a: calls.append("text"))
    out = method.training_step(views_for(method, cfg), labels, 0, 10)
    assert set(out) == {"loss", "loss_clip", "loss_rec"} and method.head is None
    assert calls == ["text", "decoder", "decoder"]  # one decoder pass per view

    method, cfg = make("detailclip", "method.clip_weight=0")
    calls.clear()
    method.text.register_forward_hook(lambda *a: calls.append("text"))
    out = method.training_step(views_for(method, cfg), labels, 0, 10)
    assert "loss_clip" not in out and calls == []


@pytest.mark.parametrize("term", ["clip", "cls", "patch", "rec"])
def test_one_step_lowers_each_term(term):
    others = [f"method.{t}_weight=0" for t in ("clip", "cls", "patch", "rec") if t != term]
    # centre momentum 1 freezes the centring, so only the step changes the loss
    method, cfg = make("detailclip", *others, "method.center_momentum=1.0")
    views = views_for(method, cfg)
    labels = method.training_targets(torch.arange(8) % 4)
    params = [p for g in method.param_groups() for p in g["params"]]
    opt = torch.optim.SGD(params, lr=1e-3)
    before = method.training_step(views, labels, 0, 10)[f"loss_{term}"]
    method.training_step(views, labels, 0, 10)["loss"].backward()
    opt.step()
    after = method.training_step(views, labels, 0, 10)[f"loss_{term}"]
    assert after < before


def test_clip_step_lowers_its_loss():
    method, cfg = make("clip")
    views = views_for(method, cfg)
    labels = method.training_targets(torch.arange(8) % 4)
    opt = torch.optim.SGD([p for g in method.param_groups() for p in g["params"]], lr=0.01)
    before = method.training_step(views, labels, 0, 10)["loss"]
    before.backward()
    opt.step()
    assert method.training_step(views, labels, 0, 10)["loss"] < before


def test_ema_teacher_holds_no_gradients_and_follows_the_student():
    method, cfg = make("detailclip")
    labels = method.training_targets(torch.arange(8) % 4)
    method.training_step(views_for(method, cfg), labels, 0, 10)["loss"].backward()
    teacher = [*method.teacher.parameters(), *method.teacher_head.parameters()]
    assert all(p.grad is None and not p.requires_grad for p in teacher)
    grouped = {id(p) for g in method.param_groups() for p in g["params"]}
    assert not grouped & {id(p) for p in teacher}
    with torch.no_grad():
        for p in method.backbone.parameters():
            p.add_(1.0)
    before = next(method.teacher.parameters()).clone()
    method.after_optimizer_step(0, 10)  # tau = 0.996 at step 0
    student = next(method.backbone.parameters())
    expected = 0.996 * before + 0.004 * student
    assert torch.allclose(next(method.teacher.parameters()), expected, atol=1e-6)


def test_detailclip_needs_a_vit_with_an_even_grid():
    from ssl_bench.errors import UserError

    with pytest.raises(UserError, match="needs a ViT"):
        make("detailclip", "model.backbone=small_cnn")
    with pytest.raises(UserError, match="must be even"):
        make("detailclip", "model.patch_size=16")  # 16 px image -> 1x1 grid
    with pytest.raises(UserError, match="attention, none, random"):
        make("detailclip", "method.removal=top")


def test_patchify_is_row_major():
    x = torch.arange(2 * 3 * 4 * 4.0).reshape(2, 3, 4, 4)
    p = patchify(x, 2)  # (2, 4, 12)
    assert p.shape == (2, 4, 12)
    assert torch.equal(p[0, 1].reshape(2, 2, 3)[..., 0], x[0, 0, :2, 2:])


# ---------------------------------------------------------------- evaluators


def test_zero_shot_and_retrieval_find_matching_texts():
    method, _ = make("clip")
    classes = INFO.classes

    def prompts(c):
        return [cap for cap in CAPTIONS if c in cap]

    # images embedded exactly as their class prompts / captions: every answer is right
    weights = torch.nn.functional.normalize(
        torch.stack([encode_texts(method, prompts(c), "cpu").mean(0) for c in classes]), dim=1
    )
    labels = torch.tensor([2, 0, 1, 3, 3])
    z = zero_shot(method, weights[labels], labels, classes, prompts, torch.device("cpu"))
    assert z["top1"] == 1.0 and z["chance"] == 0.25 and z["prompts_per_class"] == 2
    images = encode_texts(method, CAPTIONS, "cpu")
    r = retrieval(method, images, CAPTIONS, torch.device("cpu"))
    assert r["image_to_text_r1"] == r["text_to_image_r1"] == 1.0 and r["distinct_captions"] == 4
    r = retrieval(method, images.roll(1, 0), CAPTIONS, torch.device("cpu"))  # mismatched
    assert r["image_to_text_r1"] < 0.5


# ---------------------------------------------------------------- end to end


@pytest.mark.e2e
def test_detailclip_run_fills_the_image_text_entries(run_cli, tmp_path):
    import json

    out = tmp_path / "dc"
    sizes = ["data.train_size=32", "data.val_size=16", "data.test_size=16", "model.depth=1"]
    args = ["run", "detailclip", "--epochs", "1", "--batch-size", "16", "--no-progress"]
    code, stdout, err = run_cli(*args, *[x for s in sizes for x in ("--set", s)], "--out", out)
    assert code == 0, err
    ev = json.loads((out / "summary.json").read_text())["eval"]
    assert ev["zeroshot"]["captions"] == "dataset" and ev["zeroshot"]["prompts_per_class"] == 80
    assert 0 <= ev["retrieval"]["image_to_text_r1"] <= 1
    assert set(ev["removal"]) >= {"attention", "random", "all_patches", "keep_ratio"}
    assert all((out / f).stat().st_size > 1000 for f in ev["removal"]["figures"])
    assert "zero-shot top-1" in stdout and "kept patches on the object" in stdout


def test_image_text_evaluators_need_a_text_method(run_cli, tiny, tmp_path):
    out = tmp_path / "run"
    assert run_cli("run", "random", *tiny, "--out", out, "--no-eval")[0] == 0
    for name, needle in (("zeroshot", "clip, detailclip"), ("removal", "detailclip")):
        code, _, err = run_cli("eval", out, "--only", name)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_logit_scale_is_initialised_clamped_and_not_decayed():
    import math

    method, _ = make("clip")
    assert method.scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    groups = {g["name"]: g for g in method.param_groups()}
    assert groups["logit_scale"]["params"] == [method.logit_scale]
    assert groups["logit_scale"]["weight_decay"] == 0.0
    assert all(method.logit_scale is not p for p in groups["decay"]["params"])
    with torch.no_grad():
        method.logit_scale.fill_(math.log(1000))
    assert method.scale().item() == pytest.approx(100.0)


def test_detailclip_step_under_bf16_autocast_and_one_patch_loss_call():
    method, cfg = make("detailclip")
    calls = []
    method.patch_loss.register_forward_hook(lambda *a: calls.append(1))  # centre moves once
    labels = method.training_targets(torch.arange(8) % 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what CUDA runs by default
        out = method.training_step(views_for(method, cfg), labels, 0, 10)
    out["loss"].float().backward()
    assert torch.isfinite(out["loss"].float()) and len(calls) == 1


def test_detailclip_rejects_settings_that_train_nothing():
    from ssl_bench.errors import UserError

    with pytest.raises(UserError, match="no loss term left"):
        make("detailclip", "method.removal=none", "method.clip_weight=0", "method.cls_weight=0")


def test_retrieval_with_fewer_than_five_pairs():
    method, _ = make("clip")
    images = encode_texts(method, CAPTIONS[:3], "cpu")
    r = retrieval(method, images, CAPTIONS[:3], torch.device("cpu"))
    assert r["image_to_text_r1"] == 1.0 and r["image_to_text_r5"] == 1.0
