"""The command line: paraspinalfat measure / phantom / demo."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ParaspinalFatLib.cli import main
from ParaspinalFatLib.phantom import make_phantom, write_phantom
from ParaspinalFatLib.schemas import LEVEL_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def test_measure_writes_tables_matching_the_truth(tmp_path, capsys):
    ph = make_phantom(mode="3d", pdff_scale="0-1", tilt_deg=6.0)
    paths = write_phantom(ph, tmp_path / "in")
    out = tmp_path / "out" / "case.csv"
    rc = main(["measure", "--image", str(paths["image"]), "--segmentation", str(paths["segmentation"]),
               "--map", "pdff", "--output", str(out), "--per-slice", "--whole-roi", "--subject", "S01"])
    assert rc == 0
    table = pd.read_csv(out)
    assert list(table.columns) == LEVEL_COLUMNS
    merged = table.merge(ph.truth, on=["segment", "level"], suffixes=("", "_truth"))
    assert len(merged) == 18
    np.testing.assert_allclose(merged["csa_mm2"], merged["csa_mm2_truth"], rtol=1e-12)
    np.testing.assert_allclose(merged["fat_fraction_pct"], merged["mean_pdff_pct"], rtol=1e-9)
    assert (table["subject"] == "S01").all() and (table["pdff_scale"] == "0-1").all()
    for suffix in ("_slices", "_rois", "_summary", "_summary_wide", "_levels", "_grades"):
        assert (out.parent / f"case{suffix}.csv").is_file()
    wide = pd.read_csv(out.parent / "case_summary_wide.csv")
    assert len(wide) == 1 and wide.loc[0, "subject"] == "S01"
    left = table[(table.muscle == "psoas") & (table.side == "left") & (table.level == "L4/5")]["csa_mm2"].iloc[0]
    assert wide.loc[0, "psoas L4/5 left csa_mm2"] == pytest.approx(left)
    levels = pd.read_csv(out.parent / "case_levels.csv")
    assert set(levels["level"]) >= {"L3/4", "L4/5", "L5/S1"}
    assert not list(out.parent.glob(".*.tmp"))  # atomic writes leave no temporary files
    printed = capsys.readouterr().out
    assert "multifidus" in printed and "wrote" in printed


def test_measure_error_exit_code_and_message(tmp_path, capsys):
    rc = main(["measure", "--image", str(tmp_path / "missing.nrrd"), "--segmentation", str(tmp_path / "s.seg.nrrd")])
    assert rc == 2
    assert "missing.nrrd" in capsys.readouterr().err


def test_python_dash_m_demo(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ParaspinalFatLib", "demo", "--case", "--out", str(tmp_path)],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "max |CSA error| = 0 mm2" in proc.stdout
    assert (tmp_path / "demo_levels.csv").is_file()


def test_sample_data_generator(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "Resources" / "make_sample_data.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    from ParaspinalFatLib import measure_case

    truth = pd.read_csv(tmp_path / "phantom_3d_truth.csv")
    table = measure_case(tmp_path / "phantom_3d_pdff.nrrd", tmp_path / "phantom_3d_muscles.seg.nrrd")
    merged = table.merge(truth, on=["segment", "level"], suffixes=("", "_truth"))
    assert len(merged) == len(truth) == 18
    np.testing.assert_allclose(merged["csa_mm2"], merged["csa_mm2_truth"], rtol=1e-12)


def test_every_measure_option_is_documented_in_the_readme():
    import dataclasses

    from ParaspinalFatLib.measurement.pipeline import MeasureOptions

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [f.name for f in dataclasses.fields(MeasureOptions) if f"`{f.name}`" not in readme]
    assert not missing, f"options not documented in README.md: {missing}"


def test_an_os_error_is_one_clean_line(tmp_path, capsys, monkeypatch):
    import ParaspinalFatLib.measurement.pipeline as pipeline

    image = tmp_path / "pdff.nrrd"

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(image))

    monkeypatch.setattr(pipeline, "measure", denied)
    rc = main(["measure", "--image", str(image), "--segmentation", str(tmp_path / "s.seg.nrrd")])
    assert rc == 2
    assert capsys.readouterr().err == f"paraspinalfat: error: [Errno 13] Permission denied: '{image}'\n"


def test_parser_imports_only_the_standard_library():
    code = ("import sys; from ParaspinalFatLib.cli import build_parser; build_parser().parse_args(['demo'])\n"
            "print(sorted(m for m in ('numpy', 'pandas', 'SimpleITK', 'scipy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_measure_prints_every_written_file_and_the_levels(tmp_path, capsys):
    ph = make_phantom(mode="2d")
    paths = write_phantom(ph, tmp_path / "in")
    out = tmp_path / "out" / "case.csv"
    rc = main(["measure", "--image", str(paths["image"]), "--segmentation", str(paths["segmentation"]),
               "--pdff-scale", "0-100", "--output", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out.splitlines()
    names = ["case.csv", "case_summary.csv", "case_summary_wide.csv", "case_levels.csv", "case_grades.csv"]
    assert printed[-5:] == [f"wrote {out.parent / n}" for n in names]
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(names)
    assert (out.read_bytes().count(b"\r\n") == len(ph.truth) + 1)  # header + one row per ROI, CRLF ends
