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
