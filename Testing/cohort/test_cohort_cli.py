"""``paraspinalfat cohort`` / ``report`` from the command line: exit codes and files."""
from __future__ import annotations

import pandas as pd
import pytest

from ParaspinalFatLib.cli import main
from ParaspinalFatLib.phantom import make_phantom, write_phantom


def _manifest(tmp_path, bad=False):
    rows = []
    for k in range(3):
        paths = write_phantom(make_phantom(mode="2d", seed=k), tmp_path / f"c{k}", stem=f"s{k}")
        rows.append({"subject": f"S{k}", "image": paths["image"].relative_to(tmp_path),
                     "segmentation": paths["segmentation"].relative_to(tmp_path), "age": 40 + k})
    if bad:
        rows.append({"subject": "S9", "image": "missing.nrrd", "segmentation": rows[0]["segmentation"], "age": 50})
    path = tmp_path / "cases.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_cohort_exit_code_and_error_rows(tmp_path, capsys):
    status = main(["cohort", "--manifest", str(_manifest(tmp_path, bad=True)), "--output", str(tmp_path / "st"),
                   "--workers", "1"])
    out = capsys.readouterr().out
    assert status == 1  # completed, with a failed row
    errors = pd.read_csv(tmp_path / "st" / "errors.csv")
    assert list(errors["subject"]) == ["S9"] and "missing.nrrd" in errors.loc[0, "message"]
    measured = pd.read_csv(tmp_path / "st" / "measurements.csv")
    assert sorted(set(measured["subject"])) == ["S0", "S1", "S2"]
    assert "3 measured" in out and "1 failed" in out


def test_cohort_then_report(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["cohort", "--manifest", str(_manifest(tmp_path)), "--output", str(tmp_path / "st"),
                 "--workers", "1"]) == 0
    subjects = pd.read_csv(tmp_path / "st" / "subjects.csv")
    assert list(subjects["subject"]) == ["S0", "S1", "S2"] and "mf_csa_mean" in subjects
    status = main(["report", "--study", str(tmp_path / "st")])
    assert status == 0
    assert (tmp_path / "st" / "report" / "report.html").is_file()
    assert "report:" in capsys.readouterr().out


def test_unreadable_manifest_is_exit_2(tmp_path, capsys):
    bad = tmp_path / "cases.csv"
    bad.write_text("name,file\nA,b\n")
    assert main(["cohort", "--manifest", str(bad), "--output", str(tmp_path / "st")]) == 2
    assert "paraspinalfat: error:" in capsys.readouterr().err
