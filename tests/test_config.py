import dataclasses
import subprocess
import sys

import pytest

from ssl_bench.config import MethodConfig
from ssl_bench.errors import UserError
from ssl_bench.layering import diff, load_yaml, resolve


def build(method: str = "simclr", **kw):
    return resolve(method, **kw)


def test_layers_apply_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 0.5\ntrain:\n  epochs: 3\n")
    cfg = build(
        file_values=load_yaml(path),
        flag_values={"train": {"epochs": 4}},
        set_items=["train.epochs=5", "data.train_size=100"],
    )
    assert cfg.optim.lr == 0.5  # file beats recipe
    assert cfg.train.epochs == 5  # --set beats flag beats file
    assert cfg.data.train_size == 100
    assert cfg.optim.name == "adamw"  # from the recipe


def test_method_section_is_typed_per_method():
    cfg = build("byol", set_items=["method.momentum_base=0.9", "method.predictor=false"])
    assert cfg.method.momentum_base == 0.9 and cfg.method.predictor is False
    with pytest.raises(UserError, match="unknown key 'method.temperature'"):
        build("byol", set_items=["method.temperature=0.1"])


def test_unknown_key_suggests_closest():
    with pytest.raises(
        UserError, match=r"unknown key 'data.trian_size' \(did you mean 'train_size'\?\)"
    ):
        build(set_items=["data.trian_size=10"])
    with pytest.raises(UserError, match="unknown config section 'dta'.*did you mean 'data'"):
        build(set_items=["dta.train_size=10"])


@pytest.mark.parametrize(
    "item, message",
    [
        ("train.epochs=abc", "train.epochs expects int"),
        ("train.epochs=1.5", "train.epochs expects int"),
        ("aug.flip=3", "aug.flip expects bool"),
        ("optim.betas=[0.9]", "optim.betas expects a list of 2 values"),
        ("train.epochs=0", "train.epochs must be > 0"),
        ("train.batch_size=1", "train.batch_size must be >= 2"),
        ("optim.name=adam", "unknown optimizer 'adam'.*valid choices: adamw, lars, sgd"),
        ("method.temperature=0", "method.temperature must be > 0"),
        ("aug.crop_min_scale=1.5", "crop_min_scale"),
        ("noequals", "--set expects section.key=value"),
        ("eval.evaluators=knn,nope", "unknown evaluator 'nope'; valid choices: collapse, f"),
        ("train.monitor_every=-1", "train.monitor_every must be >= 0"),
    ],
)
def test_bad_values_are_rejected(item, message):
    with pytest.raises(UserError, match=message):
        build(set_items=[item])


def test_a_monitor_schedule_without_the_monitor_is_refused():
    with pytest.raises(UserError, match="train.monitor_every needs train.knn_monitor=true"):
        build(set_items=["train.knn_monitor=false", "train.monitor_every=5"])


def test_resolving_a_config_loads_no_evaluator_or_heavy_library():
    """Config sits below the evaluators (issue 17): resolving one, as --print-config does,
    must not import faiss, scikit-learn or the evaluator; nor the CLI's parser the report
    modules' matplotlib and pandas (2 s of every start on a slow CPU)."""
    heavy = ("faiss", "sklearn", "ssl_bench.eval.evaluator", "matplotlib", "pandas")
    code = (
        "import sys; from ssl_bench.layering import resolve; resolve('byol'); resolve('dino', "
        "set_items=['data.name=digits']); from ssl_bench.cli import _parser; _parser(); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_int_accepted_for_float_and_null_for_optional():
    cfg = build(set_items=["optim.lr=1", "data.data_dir=null", "optim.weight_decay_end=0.4"])
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.data.data_dir is None and cfg.optim.weight_decay_end == 0.4


def test_method_name_in_file_must_match(tmp_path):
    with pytest.raises(UserError, match="method.name is 'byol'"):
        build("simclr", file_values={"method": {"name": "byol"}})


def test_round_trip_and_diff():
    a = build().to_dict()
    b = build(set_items=["optim.lr=0.7"]).to_dict()
    assert diff(a, a) == [] and diff(a, b) == ["optim.lr"]
    assert a["method"]["name"] == "simclr" and isinstance(a["optim"]["betas"], list)


def test_bad_yaml_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_yaml(bad)
    with pytest.raises(UserError, match="config file not found"):
        load_yaml(tmp_path / "missing.yaml")


def test_base_method_config_has_only_name():
    assert [f.name for f in dataclasses.fields(MethodConfig)] == ["name"]


def test_exponent_notation_without_dot(tmp_path):
    # PyYAML reads 1e-4 as a string; it is still a float setting.
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  weight_decay: 1e-4\n")
    cfg = build(file_values=load_yaml(path), set_items=["optim.lr=2e-3"])
    assert cfg.optim.weight_decay == 1e-4 and cfg.optim.lr == 2e-3


@pytest.mark.parametrize(
    "method, owner",
    [
        ("dino", "method.global_scale"),
        ("logo", "method.local_scale"),
        ("clip", "method.crop_scale"),
    ],
)
def test_an_aug_key_a_method_replaces_is_an_error(run_cli, method, owner):
    code, _, err = run_cli("run", method, "--set", "aug.crop_min_scale=0.2", "--print-config")
    assert code == 2 and "aug.crop_min_scale has no effect" in err and owner in err
    # Its own key works, and a single-crop method takes aug.crop_min_scale.
    assert run_cli("run", "simclr", "--set", "aug.crop_min_scale=0.2", "--print-config")[0] == 0
