"""The `ssl-bench` command line.

Bad input ends with one line on stderr that names the problem and the valid choices,
and a non-zero exit; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ssl_bench.errors import UserError
from ssl_bench.report.kinds import kind_names
from ssl_bench.study import STUDY

EXIT_USER, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_BUG = 2, 3, 130, 1

# Flag -> (section, key). Flags default to None so they never override a config file.
FLAGS = {
    "dataset": ("data", "name"),
    "data_dir": ("data", "data_dir"),
    "backbone": ("model", "backbone"),
    "batch_size": ("train", "batch_size"),
    "epochs": ("train", "epochs"),
    "lr": ("optim", "lr"),
    "seed": ("train", "seed"),
    "device": ("train", "device"),
}


def _parser() -> argparse.ArgumentParser:
    from ssl_bench.registry import EVALUATORS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    p = argparse.ArgumentParser(
        prog="ssl-bench",
        description="Train, evaluate and compare self-supervised learning methods. "
        "Runs offline on an embedded dataset by default.",
        parents=[common],
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser(
        "run",
        parents=[common],
        help="train one method and evaluate it",
        description="Train METHOD, evaluate its frozen features and write a run "
        "folder (config.yaml, metrics.jsonl, checkpoints/last.pt, summary.json). "
        "Settings are layered: defaults < the dataset's recipe < the method's recipe < "
        "--config FILE < flags < --set. Views: the method declares each view's transforms "
        "and their probabilities (multi-crop methods also each crop's scale: "
        "method.global_scale/local_scale for dino and logo, method.crop_scale for clip); "
        "aug.* sets the strengths and switches a transform off in every view. An aug.* key "
        "that a method's own setting replaces is an error.",
        epilog="Several processes (one GPU each, or CPU processes with gloo): "
        "torchrun --standalone --nproc_per_node=N -m ssl_bench run METHOD ... "
        "(several nodes: --nnodes=K --rdzv-backend=c10d --rdzv-endpoint=HOST:PORT). "
        "--batch-size is the global batch, split evenly over the processes; only rank 0 "
        "writes the run folder and evaluates.",
    )
    r.add_argument("method", help="method or baseline name (see `ssl-bench list`)")
    r.add_argument("--config", metavar="FILE", help="YAML file with config sections")
    r.add_argument("--dataset", help="dataset name (default: shapes_noisy, generated offline)")
    r.add_argument("--data-dir", help="folder holding a real dataset")
    r.add_argument(
        "--download",
        action="store_true",
        help="allow downloading a real dataset into --data-dir (off by default)",
    )
    r.add_argument("--backbone", help="backbone name (default: small_cnn)")
    r.add_argument("--batch-size", type=int, help="images per optimiser step")
    r.add_argument("--epochs", type=int, help="training epochs")
    r.add_argument("--lr", type=float, help="base learning rate at batch size 256")
    r.add_argument("--seed", type=int, help="training seed (splits stay fixed)")
    r.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    r.add_argument("--out", type=Path, help="run folder (default: runs/METHOD-TIMESTAMP)")
    r.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=V",
        help="override any config key, e.g. --set data.train_size=2000 (repeatable)",
    )
    r.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    r.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--print-config", action="store_true", help="print the resolved config and exit")

    ev = sub.add_parser(
        "eval",
        parents=[common],
        help="re-evaluate a finished run or a checkpoint",
        description="Evaluate the frozen features of a run folder's last checkpoint (or a "
        "checkpoint file) and update its summary.json. Features are extracted once and cached "
        "in RUN/features/.",
    )
    ev.add_argument(
        "target", type=Path, nargs="?", help="run folder or checkpoint file (not with --weights)"
    )
    ev.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="evaluate a backbone from a weights file instead: one written by `ssl-bench "
        "export`, or a state dict in our or torchvision's layout (then say --backbone). "
        "Writes a run folder of its own (--out) that `results` and `report` list",
    )
    ev.add_argument("--backbone", help="with --weights: the file's backbone (see `ssl-bench list`)")
    ev.add_argument(
        "--dataset",
        help="with --weights: dataset to evaluate on (default: shapes_noisy, or the exported "
        "run's)",
    )
    ev.add_argument("--data-dir", help="with --weights: folder holding a real dataset")
    ev.add_argument(
        "--out",
        type=Path,
        help="with --weights: run folder to write (default: runs/weights-FILE-TIMESTAMP)",
    )
    ev.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=V",
        help="with --weights: config override, repeatable",
    )
    ev.add_argument(
        "--only",
        metavar="NAMES",
        help="comma-separated subset of the evaluators: "
        + "; ".join(f"{e.name}: {e.description}" for e in EVALUATORS.entries()).replace("%", "%%"),
    )
    ev.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")

    ex = sub.add_parser(
        "export",
        parents=[common],
        help="write a run's backbone weights alone, for use elsewhere",
        description="Write the backbone of a run folder's last checkpoint (or of a checkpoint "
        "file) without heads, teacher or optimiser, with its metadata (backbone, image size, "
        "normalisation mean/std, method, git sha). --format torchvision writes torchvision's "
        "key layout for resnet18/resnet50, loadable by torchvision.models.resnet18 (see the "
        "README), with the metadata in FILE.json.",
    )
    ex.add_argument("target", type=Path, help="run folder or checkpoint file")
    ex.add_argument("-o", "--output", type=Path, required=True, help="weights file to write")
    ex.add_argument("--format", default="ssl-bench", help="ssl-bench (default) | torchvision")
    ex.add_argument(
        "--teacher",
        action="store_true",
        help="export the EMA teacher (byol, dino, logo, detailclip) instead of the online backbone",
    )

    sw = sub.add_parser(
        "sweep",
        parents=[common],
        help="run a grid of configs x seeds (resumable)",
        description="Run every arm x grid point x seed of a sweep file, each in its own folder "
        "under --out. Finished runs are skipped and interrupted ones resumed, so rerunning the "
        "command continues a sweep; a failed run is recorded in OUT/sweep.jsonl and the sweep "
        "goes on. Every run's config is validated before anything trains.",
    )
    sw.add_argument("file", type=Path, help="sweep file (see experiments/collapse.yaml)")
    sw.add_argument("--out", type=Path, help="sweep folder (default: runs/FILE_STEM)")
    sw.add_argument(
        "--dry-run", action="store_true", help="print the plan and an estimated cost, run nothing"
    )
    sw.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=V",
        help="override a config key in every run, e.g. --set model.backbone=resnet18",
    )
    sw.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs at a time; CPU threads are split between them (default 1)",
    )
    sw.add_argument(
        "--no-reuse",
        dest="reuse",
        action="store_false",
        help="train every run, even one that a sweep beside OUT already trained with the "
        "same config (by default that run is copied and only evaluated)",
    )

    rs = sub.add_parser(
        "results",
        parents=[common],
        help="gather the runs under a folder into one table",
        description="Collect every summary.json under DIR into DIR/results.csv (all columns) "
        "and DIR/results.md (headline metrics; runs that differ only in their seed are one "
        "row, mean ± std), and print the markdown table.",
    )
    rs.add_argument("dir", type=Path, help="folder holding run folders")

    rp = sub.add_parser(
        "report",
        parents=[common],
        help="write a markdown report with plots from a sweep's runs",
        description="Turn the runs under DIR into markdown (mean ± std over seeds, the "
        "papers' numbers beside ours, a reading computed from the numbers) with PNG plots "
        "beside it. The section follows the sweep's kind (its `report:` key, copied into "
        "DIR/sweep.yaml by `ssl-bench sweep`), or --kind.",
    )
    rp.add_argument(
        "dir",
        type=Path,
        help="sweep folder (e.g. runs/batch_size), or one run folder: its summary table, "
        "loss/lr and monitor curves and a PCA of its test features",
    )
    rp.add_argument("-o", "--output", type=Path, required=True, help="markdown file to write")
    rp.add_argument("--kind", help="section kind: " + ", ".join(kind_names()))

    st = sub.add_parser(
        "study",
        parents=[common],
        help="run every question's sweep and write one combined report",
        description="Run the sweeps of experiments/{"
        + ",".join(STUDY)
        + "}.yaml into RUNS/<name> (resumable; finished runs are skipped) and write one "
        "report answering the course questions. 10-130 minutes per sweep on 2 CPU cores, "
        "2.5-5 h in all (docs/studies.md lists each sweep's measured time). A run that an "
        "earlier sweep already trained with the same config is copied from there and only "
        "evaluated (--no-reuse to train it again).",
    )
    st.add_argument("--experiments", type=Path, default=Path("experiments"))
    st.add_argument("--runs", type=Path, default=Path("runs"), help="default: runs")
    st.add_argument("-o", "--output", type=Path, default=Path("reports/study.md"))
    st.add_argument("--only", help="comma-separated subset of: " + ", ".join(STUDY))
    st.add_argument("--jobs", type=int, default=1, help="runs at a time within a sweep")
    st.add_argument(
        "--no-reuse",
        dest="reuse",
        action="store_false",
        help="train every run, even one another sweep of the study already trained "
        "(by default it is copied and only evaluated)",
    )
    st.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=V")
    st.add_argument(
        "--report-only", action="store_true", help="write the report from existing runs only"
    )

    ls = sub.add_parser("list", parents=[common], help="list methods, backbones and datasets")
    ls.add_argument("kind", nargs="?", choices=["methods", "backbones", "datasets"])
    return p


def resolve_config(args: argparse.Namespace):  # noqa: ANN201
    from ssl_bench.layering import load_yaml, resolve

    flags: dict[str, dict[str, Any]] = {}
    for flag, (section, key) in FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            flags.setdefault(section, {})[key] = value
    if args.download:
        flags.setdefault("data", {})["download"] = True
    if args.no_eval:
        flags.setdefault("eval", {})["enabled"] = False
    if args.no_progress:
        flags.setdefault("train", {})["progress"] = False
    file_values = load_yaml(args.config) if args.config else None
    return resolve(args.method, file_values, flags, args.overrides)


def cmd_run(args: argparse.Namespace) -> int:
    import yaml

    from ssl_bench.distributed import process_group
    from ssl_bench.runner import format_summary, run

    cfg = resolve_config(args)
    if args.print_config:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    with process_group(cfg.train.device):  # a no-op unless launched by torchrun
        summary = run(cfg, args.out, resume=args.resume)
    if summary:  # under torchrun only rank 0 has one
        print(format_summary(summary))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ssl_bench.runner import evaluate_existing, format_summary

    extra = ("backbone", "dataset", "data_dir", "out", "overrides")
    if args.weights is not None:
        from ssl_bench.weights import evaluate_weights

        if args.target is not None:
            raise UserError("give either a run folder or --weights FILE, not both")
        flags: dict[str, dict[str, Any]] = {}
        for flag in ("dataset", "data_dir", "device"):
            if getattr(args, flag) is not None:
                section, key = FLAGS[flag]
                flags.setdefault(section, {})[key] = getattr(args, flag)
        summary = evaluate_weights(
            args.weights, args.backbone, flags, args.overrides, args.only, args.out
        )
        print(format_summary(summary))
        return 0
    if args.target is None:
        raise UserError("ssl-bench eval needs a run folder, a checkpoint or --weights FILE")
    used = [f"--{f.replace('_', '-')}" for f in extra if getattr(args, f) not in (None, [])]
    if used:
        raise UserError(f"{', '.join(used)} only apply with --weights (a run keeps its config)")
    summary = evaluate_existing(args.target, args.only, args.device)
    print(format_summary(summary))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ssl_bench.weights import export

    meta = export(args.target, args.output, args.format, args.teacher)
    which = "EMA teacher" if args.teacher else "backbone"
    print(
        f"wrote the {which} of {meta['method']} ({meta['backbone']}, step {meta['step']}) "
        f"to {args.output} [{args.format}]"
    )
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from ssl_bench.sweep import dry_run, run_sweep

    if args.jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {args.jobs}")
    out = args.out or Path("runs") / args.file.stem
    if args.dry_run:
        dry_run(args.file, out, args.overrides, reuse=args.reuse)
        return 0
    outcomes = run_sweep(args.file, out, jobs=args.jobs, set_items=args.overrides, reuse=args.reuse)
    failed = [o for o in outcomes if o.status == "failed"]
    print(
        f"sweep finished: {len(outcomes) - len(failed)} runs ok, {len(failed)} failed; "
        f"`ssl-bench results {out}` tabulates them"
    )
    return 1 if failed else 0


def cmd_results(args: argparse.Namespace) -> int:
    from ssl_bench.report.table import collect, to_markdown

    df = collect(args.dir)
    df.to_csv(args.dir / "results.csv", index=False)
    text = to_markdown(df)
    (args.dir / "results.md").write_text(text)
    print(text, end="")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ssl_bench.report.build import write_report

    path = write_report(args.dir, args.output, args.kind)
    print(f"report written to {path}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from ssl_bench.study import check_files, parse_names, run_study, write_study

    names = parse_names(args.only)
    failed: list[str] = []
    if not args.report_only:
        if args.jobs < 1:
            raise UserError(f"--jobs must be >= 1, got {args.jobs}")
        check_files(args.experiments, names)
        failed = run_study(
            args.experiments, args.runs, names, args.jobs, args.overrides, reuse=args.reuse
        )
    command = "ssl-bench study" + (f" --only {args.only}" if args.only else "")
    command += f" --runs {args.runs}" if args.runs != Path("runs") else ""
    command += f" -o {args.output}" if args.output != Path("reports/study.md") else ""
    command += " --report-only" if args.report_only else ""
    command += " --no-reuse" if not args.reuse and not args.report_only else ""
    command += "".join(f" --set {o}" for o in args.overrides)
    path = write_study(args.runs, names, args.output, command, args.experiments)
    print(f"study report written to {path}")
    if failed:
        print(f"sweeps with failed runs: {', '.join(failed)} (see RUNS/<name>/sweep.jsonl)")
    return 1 if failed else 0


def cmd_list(args: argparse.Namespace) -> int:
    from ssl_bench.registry import BACKBONES, DATASETS, METHODS

    for kind, reg in (("methods", METHODS), ("backbones", BACKBONES), ("datasets", DATASETS)):
        if args.kind in (None, kind):
            print(f"{kind}:")
            entries = reg.entries()
            width = max(len(e.name) for e in entries)
            for e in entries:
                print(f"  {e.name.ljust(width)}  {e.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return EXIT_USER
    handler = {
        "run": cmd_run,
        "eval": cmd_eval,
        "export": cmd_export,
        "sweep": cmd_sweep,
        "results": cmd_results,
        "report": cmd_report,
        "study": cmd_study,
        "list": cmd_list,
    }[args.command]
    try:
        return handler(args)
    except UserError as err:
        if args.debug:
            raise
        print(f"ssl-bench: error: {err}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print(
            "ssl-bench: interrupted; the last epoch's checkpoint is kept, continue with --resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception as err:  # a bug, or a failure we did not anticipate
        from ssl_bench.trainer import Diverged

        if isinstance(err, Diverged) and not args.debug:
            print(f"ssl-bench: error: {err}", file=sys.stderr)
            return EXIT_DIVERGED
        if args.debug:
            raise
        first = str(err).splitlines()[0] if str(err) else ""
        print(
            f"ssl-bench: internal error: {type(err).__name__}: {first} "
            f"(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_BUG


if __name__ == "__main__":
    raise SystemExit(main())
