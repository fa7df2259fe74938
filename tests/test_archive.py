"""The sweep records kept in the repository (reports/runs/<sweep>/: sweep files and each
run's config, summary and metrics) still build their reports with today's report code, so
a study can be assembled from sweeps rerun in different sessions on different machines."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssl_bench.report.build import write_report

ARCHIVE = Path(__file__).resolve().parents[1] / "reports" / "runs"
SWEEPS = sorted(p for p in ARCHIVE.glob("*") if (p / "sweep.yaml").is_file())


def test_the_archive_holds_sweeps():
    assert SWEEPS, f"no archived sweep under {ARCHIVE}"


@pytest.mark.parametrize("folder", SWEEPS, ids=[p.name for p in SWEEPS])
def test_an_archived_sweep_reports_every_run_it_records(folder, tmp_path):
    out = write_report(folder, tmp_path / f"{folder.name}.md")
    text = out.read_text()
    runs = len(list(folder.glob("*/summary.json")))
    assert f"({runs} runs in `{folder}`)" in text
    # The kind's table was built from the summaries: mean ± std over the seeds per row.
    assert "|---|" in text and " ± " in text
