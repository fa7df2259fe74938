"""Sweep files: a base config, a grid, named arms and seeds, expanded into one run each.

A sweep file is YAML with these keys::

    base:    {train: {epochs: 10}}         # config sections shared by every run
    grid:    {train.batch_size: [64, 256]} # dotted key -> values: the cartesian product
    arms:    {no_blur: {aug.blur: false}}  # named overrides, each crossed with the grid
    seeds:   [0, 1, 2]
    report:  batch_size                    # optional: the report section it feeds
    nproc:   2                             # optional: each run on 2 processes (torchrun)

``method`` (the method's name) may sit in ``base``, the grid or an arm. Every run gets a
folder named from its arm, its grid values and its seed. ``plan`` resolves each run's
full config up front, so an unknown key or value fails before anything trains.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssl_bench.config import Config
from ssl_bench.errors import UserError, unknown
from ssl_bench.layering import load_yaml, resolve
from ssl_bench.report import kinds

SWEEP_KEYS = ("base", "grid", "arms", "seeds", "report", "nproc")


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its folder name, method and the config layers it adds."""

    name: str
    method: str
    seed: int
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted key -> value
    config: Config | None = field(default=None, compare=False, repr=False)
    # What a torchrun launch of the run needs: its config-file layer and --set items.
    values: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    set_items: tuple[str, ...] = field(default=(), compare=False, repr=False)
    nproc: int = 1  # processes per run (torchrun) when > 1


def _nest(dotted: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"optim.lr": 0.1}`` -> ``{"optim": {"lr": 0.1}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in dotted.items():
        section, dot, name = key.partition(".")
        if not dot or not name:
            raise UserError(f"sweep override keys are section.key, got '{key}'")
        out.setdefault(section, {})[name] = value
    return out


def _merge(base: dict[str, Any], extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for section, values in extra.items():
        out.setdefault(section, {}).update(values)
    return out


def _label(value: Any) -> str:
    text = str(value).replace(" ", "")
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in text)


def load_sweep(path: str | Path) -> dict[str, Any]:
    """Read and check the shape of a sweep file (not yet its config values)."""
    data = load_yaml(path)
    for key in data:
        if key not in SWEEP_KEYS:
            raise unknown(f"key in sweep file {path}", key, SWEEP_KEYS)
    grid = data.get("grid") or {}
    if not isinstance(grid, dict) or any(not isinstance(v, list) or not v for v in grid.values()):
        raise UserError(f"{path}: grid must map each key to a non-empty list of values")
    arms = data.get("arms") or {}
    if not isinstance(arms, dict):
        raise UserError(f"{path}: arms must map arm names to overrides")
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise UserError(f"{path}: seeds must be a non-empty list of integers")
    if not grid and not arms:
        raise UserError(f"{path}: the sweep is empty: give a grid, arms, or both")
    nproc = data.get("nproc", 1)
    if not isinstance(nproc, int) or isinstance(nproc, bool) or nproc < 1:
        raise UserError(f"{path}: nproc must be an integer >= 1 (processes per run), got {nproc}")
    # The report's kind and the roles of the arms it reads, checked now, not at report time.
    report = kinds.parse(data.get("report"), [str(a) for a in arms], f"sweep file {path}")
    return {
        "base": data.get("base") or {},
        "grid": grid,
        "arms": arms,
        "seeds": seeds,
        "report": report,
        "nproc": nproc,
    }


def plan(path: str | Path, set_items: list[str] | None = None) -> list[RunSpec]:
    """Every run of a sweep file, its config resolved and validated. ``set_items``
    (``section.key=value``) apply to every run, last: how a file is scaled up."""
    sweep = load_sweep(path)
    base = dict(sweep["base"])
    base_method = base.pop("method", None)
    grid_keys = list(sweep["grid"])
    arms = sweep["arms"] or {"": {}}
    runs: list[RunSpec] = []
    for arm, arm_values in arms.items():
        for combo in itertools.product(*(sweep["grid"][k] for k in grid_keys)):
            overrides = {**(arm_values or {}), **dict(zip(grid_keys, combo))}
            method = overrides.pop("method", base_method)
            if method is None:
                raise UserError(f"{path}: no method for arm '{arm}': set `method` in base/arm")
            parts = [arm] if arm else []
            parts += [f"{k.split('.')[-1]}={_label(v)}" for k, v in zip(grid_keys, combo)]
            for seed in sweep["seeds"]:
                name = "-".join([*parts, f"seed{seed}"])
                values = _merge(base, _nest({**overrides, "train.seed": seed}))
                try:
                    cfg = resolve(str(method), file_values=values, set_items=set_items)
                except UserError as err:
                    raise UserError(f"{path}, run {name}: {err}") from None
                runs.append(
                    RunSpec(
                        name,
                        str(method),
                        seed,
                        overrides,
                        cfg,
                        values,
                        tuple(set_items or ()),
                        sweep["nproc"],
                    )
                )
    return runs


# ---------------------------------------------------------------- running a sweep
@dataclass
class Outcome:
    name: str
    status: str  # done | skipped (finished before) | resumed | reused | failed
    seconds: float = 0.0
    error: str = ""
    source: str = ""  # the run a reused one was copied from


def _state(folder: Path) -> str:
    """``finished``, ``interrupted`` (a checkpoint, no summary) or ``new``."""
    if (folder / "summary.json").is_file():
        return "finished"
    if (folder / "checkpoints" / "last.pt").is_file():
        return "interrupted"
    return "new"


def _run_one(spec: RunSpec, folder: Path, threads: int) -> Outcome:
    """Run (or resume) one run; a failure is returned, never raised, so the sweep goes on."""
    import time

    import torch

    from ssl_bench.runner import run

    resume = _state(folder) == "interrupted"
    if spec.nproc > 1:
        return _launch(spec, folder, resume)
    cfg = spec.config
    assert cfg is not None
    _swept(cfg, threads)
    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        run(cfg, folder, resume=resume)
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001  (recorded in sweep.jsonl; the sweep goes on)
        return _failed(spec.name, start, err)
    return Outcome(spec.name, "resumed" if resume else "done", time.perf_counter() - start)


# ---------------------------------------------------------------- reusing a twin run
def finished_elsewhere(out: Path) -> list[tuple[Path, dict[str, Any], dict[str, Any]]]:
    """Finished runs that still hold their weights in the other sweep folders beside
    ``out`` (``RUNS/<sweep>/<run>``, the layout `ssl-bench study` writes): folder, config
    and summary of each. Only folders with a sweep.yaml count, so ``--out /tmp/x`` does not
    search the whole of /tmp; an unreadable record is passed over, not an error."""
    import json

    import yaml

    found = []
    for sweep in sorted(out.parent.glob("*/sweep.yaml")):
        if sweep.parent.resolve() == out.resolve():
            continue
        for summary in sorted(sweep.parent.glob("*/summary.json")):
            folder = summary.parent
            if not (folder / "checkpoints" / "last.pt").is_file():
                continue
            try:
                config = yaml.safe_load((folder / "config.yaml").read_text())
                record = json.loads(summary.read_text())
            except (OSError, ValueError, yaml.YAMLError):
                continue
            if isinstance(config, dict) and isinstance(record, dict):
                found.append((folder, config, record))
    return found


def find_twin(
    spec: RunSpec, runs: list[tuple[Path, dict[str, Any], dict[str, Any]]]
) -> Path | None:
    """A run that trained exactly what ``spec`` trains: the same config except for keys
    that change only its evaluation and reporting, on the same kind of device and number
    of processes, in the same precision. On one machine the CPU path repeats a run to the
    digit, so training it again would be waste. (Thread count and device stay compared:
    they can change the order of float reductions, and so the numbers.)"""
    from ssl_bench.layering import diff
    from ssl_bench.runner import RESUME_IGNORED
    from ssl_bench.runtime import precision_name, select_device

    assert spec.config is not None
    ignored = tuple(k for k in RESUME_IGNORED if k not in ("train.device", "train.threads"))
    mine = spec.config.to_dict()
    device = select_device(spec.config.train.device)
    # precision "auto" means bf16 on one CPU and fp32 on another: compare what it ran in.
    precision = precision_name(device, spec.config.train.precision)
    for folder, saved, summary in runs:
        same_place = str(summary.get("device", "")).split(" ")[0] == device.type
        same_place &= summary.get("precision", "fp32") == precision
        if same_place and summary.get("world_size", 1) == spec.nproc:
            if not [k for k in diff(saved, mine) if not k.startswith(ignored)]:
                return folder
    return None


def _failed(name: str, start: float, err: Exception) -> Outcome:
    import time

    first = str(err).splitlines()[0] if str(err) else ""
    return Outcome(name, "failed", time.perf_counter() - start, f"{type(err).__name__}: {first}")


def _reuse(spec: RunSpec, source: Path, folder: Path) -> Outcome:
    """Copy ``source`` (weights, logs, cached features) to ``folder`` and evaluate it with
    the spec's evaluators. The copy is made and evaluated beside the folder and moved into
    place only when complete, so an interrupted one leaves nothing the next sweep could
    trip on: that sweep finds the run "new" and reuses it again."""
    import json
    import shutil
    import time

    from ssl_bench.runner import evaluate_twin

    assert spec.config is not None
    start = time.perf_counter()
    # Beside the sweep folder, not in it: a leftover must not look like one of its runs.
    partial = folder.parent.with_name(f".{folder.parent.name}.{folder.name}.partial")
    try:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(source, partial, ignore=shutil.ignore_patterns("summary.json"))
        summary = json.loads((source / "summary.json").read_text())
        evaluate_twin(partial, spec.config, summary, source, run_dir=folder)
        if folder.exists():  # a "new" folder: a failed attempt's leftovers, no weights
            shutil.rmtree(folder)
        partial.rename(folder)
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001  (recorded in sweep.jsonl; the sweep goes on)
        return _failed(spec.name, start, err)
    return Outcome(spec.name, "reused", time.perf_counter() - start, source=str(source))


def _swept(cfg: Config, threads: int) -> None:
    """What a sweep changes in every run's config: its share of the CPU threads, no bar."""
    if threads:
        cfg.train.threads = threads
    cfg.train.progress = False  # one line per run instead of interleaved bars


def _launch(spec: RunSpec, folder: Path, resume: bool) -> Outcome:
    """One run on ``spec.nproc`` processes: ``torchrun --standalone`` of ``ssl-bench run``
    with the run's layers (a config file beside the run folder, its --set items). What the
    processes print is kept beside it too (``.NAME.log``): a failed rank's story."""
    import subprocess
    import sys
    import time

    import yaml

    folder.parent.mkdir(parents=True, exist_ok=True)
    layer = folder.parent / f".{spec.name}.yaml"
    layer.write_text(yaml.safe_dump(spec.values, sort_keys=False))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += [f"--nproc_per_node={spec.nproc}", "-m", "ssl_bench", "run", spec.method]
    cmd += ["--config", str(layer), "--out", str(folder), "--no-progress"]
    cmd += [arg for item in spec.set_items for arg in ("--set", item)]
    cmd += ["--resume"] if resume else []
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = folder.parent / f".{spec.name}.log"
    log.write_text(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}")
    if done.returncode:
        errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
        last = (errors or done.stderr.splitlines() or ["no output"])[-1]
        message = f"torchrun exit {done.returncode}: {last} (log: {log})"
        return Outcome(spec.name, "failed", seconds, message)
    return Outcome(spec.name, "resumed" if resume else "done", seconds)


def record_sweep(path: str | Path, out: Path, set_items: list[str] | None) -> None:
    import yaml

    data = load_yaml(path)
    command = " ".join(["ssl-bench sweep", str(path), "--out", str(out)])
    command += "".join(f" --set {item}" for item in set_items or [])
    data["command"] = command
    (out / "sweep.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run_sweep(
    path: str | Path,
    out: str | Path,
    jobs: int = 1,
    set_items: list[str] | None = None,
    echo: Any = print,
    reuse: bool = True,
) -> list[Outcome]:
    """Run every run of a sweep under ``out/<run name>``; skip finished runs, resume
    interrupted ones, record failures in ``out/sweep.jsonl`` and carry on. With ``reuse``,
    a new run that another sweep beside ``out`` already trained (same config but for its
    evaluation) is copied from there and only evaluated."""
    import json
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    runs = plan(path, set_items)
    if jobs > 1 and any(r.nproc > 1 for r in runs):
        raise UserError(
            f"{path} asks for nproc > 1 (each run on several processes); run it with "
            f"--jobs 1, or drop nproc to run several one-process runs at once"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # The sweep file travels with its results: `ssl-bench report` reads its kind and
    # the command that made them.
    record_sweep(path, out, set_items)
    todo = [r for r in runs if _state(out / r.name) != "finished"]
    outcomes = [Outcome(r.name, "skipped") for r in runs if r not in todo]
    echo(f"sweep {path}: {len(runs)} runs, {len(outcomes)} already finished, {len(todo)} to run")
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else 0

    def record(o: Outcome) -> None:
        outcomes.append(o)
        with (out / "sweep.jsonl").open("a") as f:
            f.write(json.dumps(o.__dict__) + "\n")
        detail = f" ({o.error})" if o.error else f" (from {o.source})" if o.source else ""
        echo(f"[{len(outcomes)}/{len(runs)}] {o.name}: {o.status} in {o.seconds:.0f} s{detail}")

    if reuse:  # before any training, one at a time: a copy and an evaluation each
        others = finished_elsewhere(out)
        for r in list(todo):
            if r.config is None or _state(out / r.name) != "new":
                continue
            _swept(r.config, threads)
            if twin := find_twin(r, others):
                record(_reuse(r, twin, out / r.name))
                todo.remove(r)
    gpus = _gpu_count()
    if jobs > 1 and gpus:  # one run per GPU: spread the runs over the devices
        for i, r in enumerate(todo):
            if r.config is not None and r.config.train.device == "auto":
                r.config.train.device = f"cuda:{i % gpus}"

    if jobs <= 1:
        for r in todo:
            record(_run_one(r, out / r.name, threads))
    else:
        # spawn: a fresh interpreter per worker, so no torch thread pool is forked.
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_run_one, r, out / r.name, threads) for r in todo]
            for fut in as_completed(futures):
                record(fut.result())
    return outcomes


# ---------------------------------------------------------------- --dry-run
def time_step(cfg: Config, repeats: int = 2) -> float:
    """Seconds per optimiser step of ``cfg``'s method, timed on random images the way the
    trainer runs it: ``train.accum_steps`` micro-batches per step, their views made
    ``VIEWS_PER_CALL`` images at a time, because a small micro-batch costs more per image
    than the full batch (fixed per-call overhead; on 2 CPU cores SimCLR's steps of 8
    micro-batches of 8 took ~2x those of one batch of 64, experiments/batch_size.yaml)."""
    import time

    import torch

    from ssl_bench.data.views import ViewGenerator, training_views
    from ssl_bench.method import DataInfo, build_method
    from ssl_bench.runtime import autocast, select_device
    from ssl_bench.trainer import VIEWS_PER_CALL

    device = select_device(cfg.train.device)
    size, batch, accum = cfg.data.image_size, cfg.train.batch_size, cfg.train.accum_steps
    info = DataInfo(10, size, [str(i) for i in range(10)], max(cfg.data.train_size, batch))
    method = build_method(cfg, info).to(device)
    if not method.trainable:
        return 0.0
    specs = training_views(method.views(), cfg.aug, size)
    views = ViewGenerator([0.5] * 3, [0.25] * 3)
    gen = torch.Generator(device=device).manual_seed(0)
    micro = batch // accum
    per_call = min(accum, max(1, VIEWS_PER_CALL // micro))  # micro-batches per view call
    shape = (micro * per_call, 3, size, size)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, device=device)
    labels = method.training_targets(torch.zeros(micro, dtype=torch.long)).to(device)
    params = [p for g in method.param_groups() for p in g["params"]]
    opt = torch.optim.SGD(params, lr=0.0)
    times = []
    for _ in range(repeats + 1):  # the first step warms up and is not counted
        start = time.perf_counter()
        for k in range(accum):
            if k % per_call == 0:
                group = views(images, specs, gen)  # in fp32, as the trainer makes them
            part = slice(k % per_call * micro, (k % per_call + 1) * micro)
            made = [v[part] for v in group]
            with autocast(device, cfg.train.precision):  # bf16 where the trainer uses it
                loss = method.training_step(made, labels, 0, 1)["loss"]
            (loss / accum).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return sum(times[1:]) / repeats


def dry_run(
    path: str | Path,
    out: str | Path,
    set_items: list[str] | None = None,
    echo: Any = print,
    reuse: bool = True,
) -> float:
    """Print the plan and an estimated training time (one short timing per distinct
    method setting); return the estimate in seconds. Nothing is written."""
    runs = plan(path, set_items)
    out = Path(out)
    others = finished_elsewhere(out) if reuse else []
    cache: dict[str, float] = {}
    total = 0.0
    reused = 0
    for r in runs:
        cfg = r.config
        assert cfg is not None
        _swept(cfg, 0)
        twin = find_twin(r, others) if _state(out / r.name) == "new" else None
        if twin is not None:
            echo(f"  {r.name:<40} {r.method:<8} reused from {twin} (evaluation only)")
            reused += 1
            continue
        t = cfg.train
        key = repr(
            (r.method, cfg.method, cfg.model, cfg.data.image_size, t.batch_size, t.accum_steps)
        )
        if key not in cache:
            cache[key] = time_step(cfg)
        n = cfg.data.train_size  # 0 = a whole real dataset: size unknown until loaded
        steps = cfg.train.epochs * (n // cfg.train.batch_size) if n else 0
        seconds = steps * cache[key]
        total += seconds
        state = _state(out / r.name)
        cost = f"~{seconds / 60:.1f} min" if n else "size of the full dataset unknown"
        per_epoch = steps // max(cfg.train.epochs, 1)
        echo(
            f"  {r.name:<40} {r.method:<8} {cfg.train.epochs:>3} x {per_epoch:>4} steps"
            f"  {cost} {state}"
        )
    shown = f"{len(runs)} runs" + (f" ({reused} reused, evaluation only)" if reused else "")
    echo(
        f"{shown}; estimated training time ~{total / 60:.0f} min on this machine "
        f"(from timed steps per setting; evaluation not included)"
    )
    return total
