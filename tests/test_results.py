import pandas as pd


def test_results_table_from_runs(run_cli, tiny, tmp_path):
    for method, seed in (("random", "0"), ("pixels", "1")):
        code, _, err = run_cli(
            "run",
            method,
            *tiny,
            "--seed",
            seed,
            "--set",
            "eval.evaluators=knn,collapse",
            "--out",
            tmp_path / method,
        )
        assert code == 0, err
    code, out, err = run_cli("results", tmp_path)
    assert code == 0, err
    df = pd.read_csv(tmp_path / "results.csv")
    assert sorted(df["method"]) == ["pixels", "random"]
    assert "config.train.seed" in df.columns  # varies between the runs
    assert "config.train.epochs" not in df.columns  # identical: not a column
    assert "eval.knn.top1" in df.columns and "eval.knn.k" in df.columns
    assert "| method |" in out and "kNN top-1" in out and "random" in out
    assert (tmp_path / "results.md").read_text() == out


def test_results_of_empty_folder(run_cli, tmp_path):
    code, _, err = run_cli("results", tmp_path)
    assert code == 2 and "no runs under" in err


def test_head_std_is_shown_beside_its_reference(tmp_path):
    import json

    from ssl_bench.report.table import collect, to_markdown

    for name, std in (("healthy", 0.086), ("collapsed", 0.014)):
        (tmp_path / name).mkdir()
        summary = {
            "method": "byol",
            "config": {"method": {"predictor": name == "healthy"}},
            "eval": {"collapse_head": {"std": std, "dim": 64, "rankme": 3.0}},
        }
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
    md = to_markdown(collect(tmp_path))
    assert "| head std | 1/sqrt(d) |" in md
    assert "| 0.014 | 0.125 |" in md and "| 0.086 | 0.125 |" in md


def test_seeds_of_one_arm_become_mean_and_std(tmp_path):
    import json

    from ssl_bench.report.table import collect, to_markdown

    for seed, acc in ((0, 0.1), (1, 0.2), (2, 0.3)):
        for arm in (True, False):
            folder = tmp_path / f"{arm}-{seed}"
            folder.mkdir()
            summary = {
                "method": "simclr",
                "config": {"method": {"negatives": arm}, "train": {"seed": seed}},
                "eval": {"knn": {"top1": acc if arm else 0.5}},
            }
            (folder / "summary.json").write_text(json.dumps(summary))
    md = to_markdown(collect(tmp_path))
    assert "| method | config.method.negatives | seeds | kNN top-1 |" in md
    assert "| simclr | False | 3 | 50.0 ± 0.0% |" in md
    assert "| simclr | True | 3 | 20.0 ± 10.0% |" in md
