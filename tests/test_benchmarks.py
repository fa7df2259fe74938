"""The benchmark scripts that write into the lab notebook keep what is already there."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_new_profile_replaces_the_table_and_keeps_the_notebook(tmp_path):
    profile_step = _load("profile_step")
    out = tmp_path / "profile.md"
    notebook = "## A notebook entry\n\nkept\n\n## Another\n\nkept too\n"
    out.write_text("# Old table\n\n| a |\n\n" + notebook)
    text = profile_step.replace_head(out, "# New table\n\n| b |\n")
    assert text.startswith("# New table\n\n| b |\n")
    assert "# Old table" not in text and "| a |" not in text
    assert text.endswith(notebook)
    # A first profile, with no notebook yet, is the table alone.
    assert profile_step.replace_head(tmp_path / "new.md", "# T\n") == "# T\n"
