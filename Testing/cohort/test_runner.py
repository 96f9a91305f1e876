"""Cohort runs (ParaspinalFatLib.cohort.runner) and case fingerprints.

The cohort is made of 2-D phantoms (``make_phantom(mode="2d")``, ~0.1 s per
case).  Expected tables are computed by calling ``measure()`` directly on each
case and by the phantom's own truth table (voxel counts x pixel area), never by
the runner's code.
"""
from __future__ import annotations

import csv
import hashlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from ParaspinalFatLib.cohort import fingerprints as fp
from ParaspinalFatLib.cohort import runner
from ParaspinalFatLib.cohort.manifest import read_manifest
from ParaspinalFatLib.cohort.runner import ERROR_COLUMNS, measure_case_folder, run_cohort
from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.measurement.pipeline import measure
from ParaspinalFatLib.phantom import make_phantom, write_phantom
from ParaspinalFatLib.report.case_files import FORMULA_PREFIXES, write_csv_atomic
from ParaspinalFatLib.schemas import LEVEL_COLUMNS

PROJECT = Path(__file__).resolve().parents[2]
# the direct measure() calls of the oracle warn about the detected PDFF scale, as the runner records
pytestmark = pytest.mark.filterwarnings("ignore:.*PDFF scale detected:UserWarning")
N_CASES = 6
SUBJECTS = [f"C{i}" for i in range(N_CASES)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Phantom images and segmentations of N_CASES subjects (+ their truth tables)."""
    root = tmp_path_factory.mktemp("cohort")
    truths = {}
    for i, subject in enumerate(SUBJECTS):
        phantom = make_phantom(mode="2d", seed=100 + i)
        write_phantom(phantom, root / "data", stem=subject)
        truths[subject] = phantom.truth
    return root, truths


def _manifest(root: Path, name: str, rows, header=("subject", "session", "image", "segmentation", "age")) -> Path:
    path = root / name
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _good_rows(extra=None):
    rows = [[s, "1", f"data/{s}_pdff.nrrd", f"data/{s}_muscles.seg.nrrd", str(50 + i)] for i, s in enumerate(SUBJECTS)]
    rows.append([SUBJECTS[0], "2", f"data/{SUBJECTS[0]}_pdff.nrrd", f"data/{SUBJECTS[0]}_muscles.seg.nrrd", "50"])
    return rows + (extra or [])


def _raw(path: Path) -> bytes:
    return Path(path).read_bytes()


def _expected_measurements(root: Path, rows) -> pd.DataFrame:
    """measure() run directly per case, key columns in front: the oracle of measurements.csv."""
    parts = []
    for subject, session, image, seg, _ in rows:
        levels = measure(str(root / image), str(root / seg), subject=subject).levels
        front = pd.DataFrame({"subject": subject, "session": session,
                              "case_id": f"{subject}__s-{session}"}, index=levels.index)
        parts.append(pd.concat([front, levels.drop(columns=["subject"])], axis=1))
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------- tables
def test_measurements_equal_measure_run_per_case(data):
    root, truths = data
    rows = _good_rows()
    manifest = _manifest(root, "good.csv", rows)
    result = run_cohort(manifest, root / "study_w1", workers=1, progress=False)
    assert (result.n_cases, result.n_measured, result.n_reused, result.n_failed) == (N_CASES + 1, N_CASES + 1, 0, 0)
    expected = _expected_measurements(root, rows)
    write_csv_atomic(expected, root / "expected.csv")
    written = pd.read_csv(root / "study_w1" / "measurements.csv", dtype=str, keep_default_na=False)
    oracle = pd.read_csv(root / "expected.csv", dtype=str, keep_default_na=False)
    assert list(written.columns) == ["subject", "session", "case_id"] + [c for c in LEVEL_COLUMNS if c != "subject"]
    pd.testing.assert_frame_equal(written, oracle)
    # the in-memory table is the written one, typed
    exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
    again = pd.read_csv(root / "study_w1" / "measurements.csv", **exact)
    assert result.measurements["csa_mm2"].tolist() == again["csa_mm2"].tolist()
    assert result.measurements["subject"].tolist() == written["subject"].tolist()
    # independent truth: CSA = voxel count x pixel area, mean = mean of the written PDFF values
    for subject, truth in truths.items():
        got = result.measurements[result.measurements["case_id"] == f"{subject}__s-1"]
        merged = got.merge(truth, on=["segment"], suffixes=("", "_truth"))
        assert len(merged) == len(truth) == 18
        assert (merged["csa_mm2"] == merged["csa_mm2_truth"]).all()
        assert ((merged["mean"] - merged["mean_pdff_pct"]).abs() < 1e-3).all()
    assert list(result.case_tables) == [f"{s}__s-1" for s in SUBJECTS] + [f"{SUBJECTS[0]}__s-2"]  # manifest order
    assert all(len(t) == 18 for t in result.case_tables.values())
    errors = pd.read_csv(root / "study_w1" / "errors.csv")
    assert list(errors.columns) == ERROR_COLUMNS and len(errors) == 0
    case = root / "study_w1" / "cases" / f"{SUBJECTS[1]}__s-1"
    assert sorted(p.name for p in case.iterdir()) == ["done.json", "landmarks.csv", "levels.csv", "summary.csv",
                                                      "warnings.txt"]
    assert "PDFF scale detected as 0-100" in (case / "warnings.txt").read_text()
    log = (root / "study_w1" / "run.log").read_text()
    assert f"cases: {N_CASES + 1}, measured: {N_CASES + 1}, reused: 0, failed: 0" in log
    assert f"warnings: {N_CASES + 1} in {N_CASES + 1} case(s)" in log  # one PDFF scale warning per case


def test_two_workers_give_identical_tables(data):
    """Also the subject tables: with 2 workers the pool writes the workbook and the SPSS file."""
    pytest.importorskip("openpyxl")
    pyreadstat = pytest.importorskip("pyreadstat")
    import openpyxl

    from ParaspinalFatLib.cohort.subject_tables import write_subject_tables

    root, _ = data
    manifest = _manifest(root, "good2.csv", _good_rows())
    calls = []

    def assemble(study, measurements, manifest_, submit=None):
        calls.append(submit is not None)
        return write_subject_tables(study, measurements, manifest_, submit=submit)

    a = run_cohort(manifest, root / "study_a", workers=1, progress=False, assemble=assemble)
    b = run_cohort(manifest, root / "study_b", workers=2, progress=False, assemble=assemble)
    assert calls == [False, True]  # in-process: no pool to hand on; 2 workers: the pool's submit
    # the CLI's assemble takes errors= too: measurements.csv is then written by a worker while the
    # subject tables are built, and the study files are committed after them
    c = run_cohort(manifest, root / "study_c", workers=2, progress=False, assemble=write_subject_tables)
    assert b.n_measured == c.n_measured == N_CASES + 1
    studies = ("study_a", "study_b", "study_c")
    for name in ("measurements.csv", "errors.csv", "subjects.csv", "codebook.csv"):
        assert _raw(root / "study_a" / name) == _raw(root / "study_b" / name) == _raw(root / "study_c" / name)
    pd.testing.assert_frame_equal(a.measurements, b.measurements)
    pd.testing.assert_frame_equal(a.measurements, c.measurements)
    assert list(c.assembled) == ["subjects.csv", "codebook.csv", "subjects.xlsx", "subjects.sav"]
    books = [openpyxl.load_workbook(root / s / "subjects.xlsx") for s in studies]
    assert books[0].sheetnames == books[1].sheetnames == books[2].sheetnames == ["subjects", "codebook", "errors"]
    for name in books[0].sheetnames:
        cells = [[[c.value for c in row] for row in book[name].iter_rows()] for book in books]
        assert cells[0] == cells[1] == cells[2] and len(cells[0]) > (0 if name == "errors" else 1)
    (da, ma), (db, mb), (dc, mc) = (pyreadstat.read_sav(str(root / s / "subjects.sav")) for s in studies)
    pd.testing.assert_frame_equal(da, db)
    pd.testing.assert_frame_equal(da, dc)
    assert ma.column_labels == mb.column_labels == mc.column_labels
    assert ma.variable_value_labels == mb.variable_value_labels == mc.variable_value_labels
    assert not [p.name for s in studies for p in (root / s).iterdir()
                if p.name.startswith(".") and p.name != runner.LOCK_NAME]  # no staging folder left


def test_bad_rows_go_to_errors_csv_and_formulas_are_neutralised(data):
    root, _ = data
    (root / "data" / "broken.nrrd").write_bytes(b"NRRD0004\nthis is not an image\n")
    s0, s1, s2, s3 = SUBJECTS[:4]
    rows = [
        [s0, "1", f"data/{s0}_pdff.nrrd", f"data/{s0}_muscles.seg.nrrd", "", "61", '=HYPERLINK("http://x","y")'],
        [s1, "1", f"data/{s1}_pdff.nrrd", "data/missing.seg.nrrd", "", "62", ""],            # 3 missing file
        [s2, "1", f"data/{s2}_pdff.nrrd", f"data/{s2}_muscles.seg.nrrd", "pdf", "63", ""],    # 4 unknown map kind
        [s3, "1", f"data/{s3}_pdff.nrrd", f"data/{s3}_muscles.seg.nrrd", "", "64", ""],      # 5 dup of 6
        [s3, "1", f"data/{s3}_pdff.nrrd", f"data/{s3}_muscles.seg.nrrd", "", "64", ""],      # 6 dup of 5
        [s0, "2", f"data/{s0}_pdff.nrrd", f"data/{s0}_muscles.seg.nrrd", "", "60", ""],      # 7 age 61 vs 60
        ["@SUM(1)", "1", f"../{root.name}/data/{s1}_pdff.nrrd", f"data/{s1}_muscles.seg.nrrd", "", "70", ""],  # 8 ok
        ["S9", "1", "data/broken.nrrd", f"data/{s2}_muscles.seg.nrrd", "", "abc", ""],       # 9 age abc
        ["S10", "1", f"data/{s2}_pdff.nrrd", f"data/{s2}_muscles.seg.nrrd", "", "71", ""],   # 10 ok; row 9's age
    ]
    manifest = _manifest(root, "bad.csv", rows, header=("subject", "session", "image", "segmentation", "map", "age",
                                                        "note"))
    result = run_cohort(manifest, root / "study_bad", workers=2, progress=False)
    assert (result.n_cases, result.n_measured, result.n_failed) == (9, 2, 7)
    errors = pd.read_csv(root / "study_bad" / "errors.csv", keep_default_na=False)
    assert list(errors.columns) == ERROR_COLUMNS
    assert sorted(set(errors["row"])) == [2, 3, 4, 5, 6, 7, 9]
    by_row = {r: errors[errors["row"] == r] for r in set(errors["row"])}
    assert by_row[3]["message"].str.startswith("segmentation file not found: " + str(root / "data" /
                                                                                   "missing.seg.nrrd")).any()
    assert by_row[4]["message"].str.contains("column 'map' = 'pdf': unknown map kind 'pdf'").any()
    assert by_row[5]["message"].str.contains("duplicate key").all() and by_row[6]["message"].str.contains(
        "duplicate key").all()
    for r in (2, 7):
        assert by_row[r]["message"].str.contains(f"clinical column 'age' differs between the rows of subject "
                                                 f"'{s0}': 61 \\(row 2\\) vs 60 \\(row 7\\)").all()
    assert set(errors.loc[errors["row"] != 9, "stage"]) == {"manifest"}
    # row 9: a non-numeric age ('abc' among numbers) is refused before measuring
    assert by_row[9]["stage"].tolist() == ["manifest"]
    assert "'abc' is not a number" in by_row[9]["message"].iloc[0]
    measured = pd.read_csv(root / "study_bad" / "measurements.csv", dtype=str, keep_default_na=False)
    assert measured.drop_duplicates("case_id")["subject"].tolist() == ["'@SUM(1)", "S10"]
    assert result.measurements.drop_duplicates("case_id")["subject"].tolist() == ["@SUM(1)", "S10"]
    _assert_no_live_formula(root / "study_bad")


def test_a_case_that_fails_to_measure_is_an_error_row_and_the_rest_complete(data):
    root, _ = data
    (root / "data" / "broken2.nrrd").write_bytes(b"NRRD0004\nthis is not an image\n")
    rows = [["S1", "1", "data/broken2.nrrd", f"data/{SUBJECTS[1]}_muscles.seg.nrrd", "1"],
            ["S2", "1", f"data/{SUBJECTS[2]}_pdff.nrrd", f"data/{SUBJECTS[2]}_muscles.seg.nrrd", "2"]]
    result = run_cohort(_manifest(root, "fails.csv", rows), root / "study_fail", workers=1, progress=False)
    assert (result.n_measured, result.n_failed) == (1, 1)
    (err,) = result.errors.to_dict("records")
    assert err["row"] == 2 and err["stage"] == "measure" and err["subject"] == "S1"
    assert err["error_type"] == "InputError"
    assert str(root / "data" / "broken2.nrrd") in err["message"]
    assert err["file"] == str(root / "data" / "broken2.nrrd")
    case = root / "study_fail" / "cases" / "S1__s-1"
    assert not (case / "done.json").exists() and (case / "error.txt").is_file()
    assert result.measurements["case_id"].unique().tolist() == ["S2__s-1"]


def _assert_no_live_formula(folder: Path) -> None:
    """No CSV cell under ``folder`` starts like a formula unless it is a plain number."""
    number = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
    n_files = 0
    for path in folder.rglob("*.csv"):
        n_files += 1
        with open(path, encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert not (cell[:1] in FORMULA_PREFIXES and not number.match(cell)), (path, cell)
    assert n_files >= 3


def test_assemble_hook_gets_the_tables_and_its_failure_is_recorded(data):
    root, _ = data
    manifest = _manifest(root, "hook.csv", _good_rows()[:2])
    seen = {}

    def hook(study, measurements, manifest_):
        seen["args"] = (study, len(measurements), manifest_.path)
        write_csv_atomic(manifest_.clinical, study / "clinical.csv")
        return "done"

    result = run_cohort(manifest, root / "study_hook", workers=1, progress=False, assemble=hook)
    assert seen["args"] == (root / "study_hook", 36, manifest)
    assert result.assembled == "done"

    def broken(study, measurements, manifest_):
        raise ValueError("no subject table today")

    result = run_cohort(manifest, root / "study_hook", workers=1, progress=False, assemble=broken)
    assert result.n_reused == 2
    rows = pd.read_csv(root / "study_hook" / "errors.csv", keep_default_na=False).to_dict("records")
    assert [(r["stage"], r["error_type"], r["message"]) for r in rows] == [
        ("assemble", "ValueError", "no subject table today")]
    assert "no subject table today" in (root / "study_hook" / "run.log").read_text()


def test_assemble_failure_with_the_pool_keeps_the_study_files(data):
    """An assemble taking errors= and submit= runs before the study files are committed (a worker
    writes measurements.csv meanwhile); its failure is still one row of errors.csv, as without a pool."""
    root, _ = data
    manifest = _manifest(root, "hook2.csv", _good_rows()[:3])
    seen = {}

    def broken(study, measurements, manifest_, *, errors=None, submit=None):
        seen["errors"] = list(errors.columns) if errors is not None else None
        seen["submit"] = submit is not None
        seen["measurements.csv there"] = (study / "measurements.csv").exists()
        raise ValueError("no subject table today")

    result = run_cohort(manifest, root / "study_hook2", workers=2, progress=False, assemble=broken)
    assert seen == {"errors": ERROR_COLUMNS, "submit": True, "measurements.csv there": False}
    assert result.n_measured == 3 and result.assembled is None
    rows = pd.read_csv(root / "study_hook2" / "errors.csv", keep_default_na=False).to_dict("records")
    assert [(r["stage"], r["error_type"], r["message"]) for r in rows] == [
        ("assemble", "ValueError", "no subject table today")]
    assert "no subject table today" in (root / "study_hook2" / "run.log").read_text()
    written = pd.read_csv(root / "study_hook2" / "measurements.csv", dtype={"subject": str})
    assert len(written) == len(result.measurements) == 54 and list(written.columns) == list(result.measurements.columns)
    assert not [p.name for p in (root / "study_hook2").iterdir() if p.name.startswith(".") and p.name != runner.LOCK_NAME]


# --------------------------------------------------------------------------- resume
def test_resume_recomputes_only_changed_cases(data, tmp_path):
    root, _ = data
    work = tmp_path / "resume"
    (work / "data").mkdir(parents=True)
    for s in SUBJECTS[:4]:
        for suffix in ("_pdff.nrrd", "_muscles.seg.nrrd"):
            (work / "data" / f"{s}{suffix}").write_bytes((root / "data" / f"{s}{suffix}").read_bytes())
    header = ("subject", "session", "image", "segmentation", "fat_threshold_pct")
    rows = [[s, "1", f"data/{s}_pdff.nrrd", f"data/{s}_muscles.seg.nrrd", ""] for s in SUBJECTS[:4]]
    manifest = _manifest(work, "m.csv", rows, header)
    first = run_cohort(manifest, work / "study", workers=2, progress=False)
    assert (first.n_measured, first.n_reused) == (4, 0)
    again = run_cohort(manifest, work / "study", workers=2, progress=False)
    assert (again.n_measured, again.n_reused) == (0, 4)
    assert "reusing 4 finished case(s)" in (work / "study" / "run.log").read_text()

    # a changed option: only that case is measured again
    rows[1][4] = "40"
    manifest = _manifest(work, "m.csv", rows, header)
    changed = run_cohort(manifest, work / "study", workers=2, progress=False)
    assert (changed.n_measured, changed.n_reused) == (1, 3)
    threshold = changed.measurements.drop_duplicates("case_id").set_index("case_id")["fat_threshold_pct"]
    assert threshold.to_dict() == {"C0__s-1": 50.0, "C1__s-1": 40.0, "C2__s-1": 50.0, "C3__s-1": 50.0}
    run_cohort(manifest, work / "fresh", workers=1, progress=False)
    assert _raw(work / "study" / "measurements.csv") == _raw(work / "fresh" / "measurements.csv")

    # a replaced input file (new content): only that case is measured again, with the new values
    before = changed.measurements[changed.measurements["case_id"] == "C2__s-1"]["mean"].tolist()
    write_phantom(make_phantom(mode="2d", seed=999), work / "data", stem="C2")
    replaced = run_cohort(manifest, work / "study", workers=2, progress=False)
    assert (replaced.n_measured, replaced.n_reused) == (1, 3)
    after = replaced.measurements[replaced.measurements["case_id"] == "C2__s-1"]["mean"].tolist()
    direct = measure(str(work / "data" / "C2_pdff.nrrd"), str(work / "data" / "C2_muscles.seg.nrrd"),
                     subject="C2").levels["mean"].tolist()
    assert after == direct and after != before
    # an unreadable levels.csv or a foreign done.json: measured again
    (work / "study" / "cases" / "C3__s-1" / "done.json").write_text('{"fingerprint": "other"}')
    (work / "study" / "cases" / "C0__s-1" / "levels.csv").unlink()
    # and the temporary folders a killed run leaves are removed
    (work / "study" / "cases" / ".tmp-C1__s-1-0123abcd").mkdir()
    (work / "study" / "cases" / ".tmp-C1__s-1-0123abcd" / "levels.csv").write_text("half")
    (work / "study" / "cases" / ".stale-C2__s-1-89abcdef").mkdir()
    last = run_cohort(manifest, work / "study", workers=1, progress=False)
    assert (last.n_measured, last.n_reused) == (2, 2)
    assert sorted(p.name for p in (work / "study" / "cases").iterdir()) == ["C0__s-1", "C1__s-1", "C2__s-1",
                                                                             "C3__s-1"]
    assert "removed 2 unfinished temporary folder(s)" in (work / "study" / "run.log").read_text()
    run_cohort(manifest, work / "fresh2", workers=1, progress=False)
    assert _raw(work / "study" / "measurements.csv") == _raw(work / "fresh2" / "measurements.csv")


_KILL_SCRIPT = textwrap.dedent("""
    import sys
    from ParaspinalFatLib.cohort.runner import run_cohort

    if __name__ == "__main__":
        run_cohort(sys.argv[1], sys.argv[2], workers=2, progress=False)
""")


def test_kill_minus_9_then_rerun_gives_the_uninterrupted_tables(data, tmp_path):
    root, _ = data
    rows = [[SUBJECTS[i % N_CASES], str(1 + i // N_CASES), f"data/{SUBJECTS[i % N_CASES]}_pdff.nrrd",
             f"data/{SUBJECTS[i % N_CASES]}_muscles.seg.nrrd", str(50 + i % N_CASES)] for i in range(12)]
    manifest = _manifest(root, "kill.csv", rows)
    (tmp_path / "killme.py").write_text(_KILL_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(PROJECT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for attempt in range(3):
        t0 = time.monotonic()
        study = tmp_path / f"killed{attempt}"
        proc = subprocess.Popen([sys.executable, str(tmp_path / "killme.py"), str(manifest), str(study)],
                                cwd=str(tmp_path), env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        n_done = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            n_done = len(list(study.glob("cases/*/done.json")))
            if n_done >= 2:
                break
            time.sleep(0.005)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        n_done = len(list(study.glob("cases/*/done.json")))
        print(f"attempt {attempt}: killed after {time.monotonic() - t0:.2f} s with {n_done} case(s) done")
        if proc.returncode == -signal.SIGKILL and 0 < n_done < 12:
            break
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read().decode()
    else:
        pytest.fail("the cohort run finished before it could be killed three times")
    proc.stderr.close()
    assert not (study / "measurements.csv").exists()
    resumed = run_cohort(manifest, study, workers=2, progress=False)
    assert resumed.n_reused == n_done and resumed.n_measured == 12 - n_done and resumed.n_failed == 0
    run_cohort(manifest, tmp_path / "straight", workers=2, progress=False)
    for name in ("measurements.csv", "errors.csv"):
        assert _raw(study / name) == _raw(tmp_path / "straight" / name)
    counts = resumed.measurements["case_id"].value_counts()
    assert len(counts) == 12 and (counts == 18).all()
    leftovers = [p.name for p in (study / "cases").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert sorted(p.name for p in (study / "cases").iterdir()) == sorted(resumed.case_tables)


def _crash_on_c2(spec, case_dir, qc=False, fingerprint=None):
    if spec.subject == "C2":
        os._exit(3)  # a worker dying (segfault, out-of-memory kill)
    return measure_case_folder(spec, case_dir, qc, fingerprint)


def _run_with_workers_that(worker, root, name, monkeypatch):
    """(manifest, result) of the good rows run on 2 worker processes that run ``worker`` for each case."""
    manifest = _manifest(root, f"{name}.csv", _good_rows())
    monkeypatch.setattr(runner, "measure_case_folder", worker)
    result = run_cohort(manifest, root / f"study_{name}", workers=2, progress=False)
    monkeypatch.undo()
    return manifest, result


def test_a_dead_worker_fails_only_its_cases_and_the_run_completes(data, monkeypatch):
    root, _ = data
    manifest, result = _run_with_workers_that(_crash_on_c2, root, "crash", monkeypatch)
    errors = result.errors
    assert "C2" in set(errors["subject"])
    assert set(errors["stage"]) == {"measure"} and set(errors["error_type"]) == {"BrokenProcessPool"}
    assert errors["message"].str.contains("stopped").all()
    assert result.n_measured + result.n_failed == N_CASES + 1 and result.n_measured >= 1
    assert set(result.measurements["case_id"]) | set(errors["case_id"]) == {f"{s}__s-1" for s in SUBJECTS} | {
        "C0__s-2"}
    rerun = run_cohort(manifest, root / "study_crash", workers=2, progress=False)
    assert rerun.n_reused == result.n_measured and rerun.n_failed == 0
    run_cohort(manifest, root / "study_clean", workers=1, progress=False)
    assert _raw(root / "study_crash" / "measurements.csv") == _raw(root / "study_clean" / "measurements.csv")


def _die_after_committing_c1(spec, case_dir, qc=False, fingerprint=None):
    result = measure_case_folder(spec, case_dir, qc, fingerprint)
    if spec.subject == "C1":
        os._exit(3)  # the case's folder and done.json are written, its result never reaches the parent
    return result


def test_a_case_committed_before_its_worker_died_counts_as_measured(data, monkeypatch):
    root, _ = data
    manifest, result = _run_with_workers_that(_die_after_committing_c1, root, "commit_crash", monkeypatch)
    assert "C1" not in set(result.errors["subject"])
    assert set(result.errors["error_type"]) <= {"BrokenProcessPool"}
    assert result.n_measured + result.n_failed == N_CASES + 1
    clean = run_cohort(manifest, root / "study_commit_clean", workers=1, progress=False)
    got = result.measurements[result.measurements["case_id"] == "C1__s-1"].reset_index(drop=True)
    want = clean.measurements[clean.measurements["case_id"] == "C1__s-1"].reset_index(drop=True)
    assert len(want) == 18
    pd.testing.assert_frame_equal(got, want)
    rerun = run_cohort(manifest, root / "study_commit_crash", workers=2, progress=False)
    assert rerun.n_reused == result.n_measured and rerun.n_failed == 0
    assert _raw(root / "study_commit_crash" / "measurements.csv") == _raw(root / "study_commit_clean" /
                                                                          "measurements.csv")


def test_dask_local_cluster_gives_identical_tables(data):
    pytest.importorskip("distributed")
    root, _ = data
    manifest = _manifest(root, "dask.csv", _good_rows())
    local = run_cohort(manifest, root / "study_local", workers=1, progress=False)
    dask = run_cohort(manifest, root / "study_dask", workers=2, scheduler="local", progress=False)
    assert dask.n_measured == N_CASES + 1
    for name in ("measurements.csv", "errors.csv"):
        assert _raw(root / "study_local" / name) == _raw(root / "study_dask" / name)
    pd.testing.assert_frame_equal(local.measurements, dask.measurements)
    assert "Dask LocalCluster with 2 worker process(es)" in (root / "study_dask" / "run.log").read_text()


# --------------------------------------------------------------------------- progress
def test_plain_progress_lines_when_not_a_terminal(data, capsys):
    root, _ = data
    rows = _good_rows()[:2] + [["C9", "1", "data/C1_pdff.nrrd", "data/C1_muscles.seg.nrrd", "1"]]
    (root / "data" / "bad_seg.seg.nrrd").write_bytes(b"not a segmentation")
    rows[2][3] = "data/bad_seg.seg.nrrd"
    run_cohort(_manifest(root, "progress.csv", rows), root / "study_progress", workers=1)
    err = capsys.readouterr().err.splitlines()
    lines = [line for line in err if line.startswith("[")]
    assert len(lines) == 3
    assert re.fullmatch(r"\[1/3\] C0__s-1 ok \(\d+\.\d s\)", lines[0])
    assert re.fullmatch(r"\[2/3\] C1__s-1 ok \(\d+\.\d s\)", lines[1])
    assert lines[2].startswith("[3/3] C9__s-1 failed: ") and "bad_seg.seg.nrrd" in lines[2]
    log = (root / "study_progress" / "run.log").read_text().splitlines()
    assert all(line in log for line in lines)
    assert any(line.startswith("cases: 3, measured: 2, reused: 0, failed: 1") for line in log)
    run_cohort(_manifest(root, "progress.csv", rows), root / "study_progress", workers=1, progress=False)
    assert capsys.readouterr().err == ""


def test_qc_pictures_go_into_the_case_folder_and_asking_for_them_recomputes(data):
    pytest.importorskip("matplotlib")
    root, _ = data
    manifest = _manifest(root, "qc.csv", _good_rows()[:1])
    plain = run_cohort(manifest, root / "study_qc", workers=1, progress=False)
    assert plain.n_measured == 1 and not (root / "study_qc" / "cases" / "C0__s-1" / "qc").exists()
    with_qc = run_cohort(manifest, root / "study_qc", workers=1, progress=False, qc=True)
    assert (with_qc.n_measured, with_qc.n_reused) == (1, 0)
    pictures = sorted(p.name for p in (root / "study_qc" / "cases" / "C0__s-1" / "qc").iterdir())
    assert pictures == ["C0_L3-4_slice26.png", "C0_L4-5_slice18.png", "C0_L5-S1_slice10.png", "C0_sagittal.png"]
    again = run_cohort(manifest, root / "study_qc", workers=1, progress=False, qc=True)
    assert (again.n_measured, again.n_reused) == (0, 1)
    pd.testing.assert_frame_equal(plain.measurements, again.measurements)


def test_progress_bar_on_request(data, capsys):
    pytest.importorskip("tqdm")
    root, _ = data
    run_cohort(_manifest(root, "bar.csv", _good_rows()[:2]), root / "study_bar", workers=1, progress=True)
    err = capsys.readouterr().err
    assert "measuring" in err and "2/2" in err and "failed=0" in err
    assert not re.search(r"^\[\d+/\d+\] ", err, flags=re.MULTILINE)  # no plain lines with a bar


def test_a_manifest_without_a_runnable_row_still_writes_the_study_files(data):
    root, _ = data
    rows = [["C0", "1", "data/none.nrrd", "data/C0_muscles.seg.nrrd", "1"]]
    result = run_cohort(_manifest(root, "none.csv", rows), root / "study_none", workers=2, progress=False)
    assert (result.n_cases, result.n_measured, result.n_failed) == (1, 0, 1)
    written = pd.read_csv(root / "study_none" / "measurements.csv")
    assert len(written) == 0
    assert list(written.columns) == ["subject", "session", "case_id"] + [c for c in LEVEL_COLUMNS if c != "subject"]
    assert pd.read_csv(root / "study_none" / "errors.csv")["row"].tolist() == [2]


def test_the_study_folder_is_locked_while_a_run_writes(data):
    root, _ = data
    study = root / "study_locked"
    study.mkdir()
    with _hold_lock(study), pytest.raises(InputError, match="another cohort run"):
        run_cohort(_manifest(root, "lock.csv", _good_rows()[:1]), study, workers=1, progress=False)


class _hold_lock:
    """Hold the study lock from another process (flock locks are per open file)."""

    def __init__(self, study):
        self.study = study

    def __enter__(self):
        code = ("import fcntl, sys, time\n"
                f"fh = open({str(self.study / runner.LOCK_NAME)!r}, 'a+')\n"
                "fcntl.flock(fh.fileno(), fcntl.LOCK_EX)\n"
                "print('locked', flush=True)\n"
                "time.sleep(60)\n")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "locked"
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        return False


# --------------------------------------------------------------------------- fingerprints
def test_fingerprint_changes_with_options_content_and_time(data, tmp_path):
    root, _ = data
    for suffix in ("_pdff.nrrd", "_muscles.seg.nrrd"):
        (tmp_path / f"C0{suffix}").write_bytes((root / "data" / f"C0{suffix}").read_bytes())
    manifest = _manifest(tmp_path, "f.csv", [["C0", "1", "C0_pdff.nrrd", "C0_muscles.seg.nrrd", "1"]])
    (spec,) = read_manifest(manifest).cases
    first = fp.case_fingerprint(spec)
    assert re.fullmatch(r"[0-9a-f]{64}", first) and fp.case_fingerprint(spec) == first
    assert fp.case_fingerprint(spec, extra={"qc": True}) != first
    (spec3,) = read_manifest(manifest, defaults={"n_slices": 3}).cases
    assert fp.case_fingerprint(spec3) != first
    image = tmp_path / "C0_pdff.nrrd"
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))  # same content, new time
    assert fp.case_fingerprint(spec) != first
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fp.case_fingerprint(spec) == first
    data_bytes = image.read_bytes()
    image.write_bytes(data_bytes[:-1] + bytes([data_bytes[-1] ^ 1]))  # one bit of content, same size and time
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fp.case_fingerprint(spec) != first
    sig = fp.file_signature(str(image))
    assert sig == [{"path": str(image), "size": len(data_bytes), "mtime_ns": stat.st_mtime_ns,
                    "sha256": hashlib.sha256(image.read_bytes()).hexdigest()}]
    assert fp.input_files(spec) == [("image", str(image)), ("segmentation", str(tmp_path / "C0_muscles.seg.nrrd"))]


def test_large_files_hash_their_two_ends_and_size(tmp_path, monkeypatch):
    monkeypatch.setattr(fp, "FULL_HASH_LIMIT", 10)
    monkeypatch.setattr(fp, "EDGE_BYTES", 4)
    path = tmp_path / "big.bin"
    path.write_bytes(b"ABCDmiddle-partWXYZ")
    expected = hashlib.sha256(b"19" + b"ABCD" + b"WXYZ").hexdigest()
    assert fp.content_digest(path, 19) == "edges:" + expected
    path.write_bytes(b"ABCDmiddle-PARTWXYZ")  # the middle is not read
    assert fp.content_digest(path, 19) == "edges:" + expected
    small = tmp_path / "small.bin"
    small.write_bytes(b"0123456789")
    assert fp.content_digest(small, 10) == hashlib.sha256(b"0123456789").hexdigest()


def test_folder_inputs_sign_every_file(tmp_path):
    series = tmp_path / "dicom"
    (series / "sub").mkdir(parents=True)
    (series / "b.dcm").write_bytes(b"b")
    (series / "sub" / "a.dcm").write_bytes(b"a")
    sig = fp.file_signature(str(series))
    assert [s["path"] for s in sig] == [str(series / "b.dcm"), str(series / "sub" / "a.dcm")]
    assert [s["sha256"] for s in sig] == [hashlib.sha256(b"b").hexdigest(), hashlib.sha256(b"a").hexdigest()]
    assert fp.file_signature(str(tmp_path / "gone")) == [{"path": str(tmp_path / "gone"), "missing": True}]


def test_text_level_columns_are_the_text_columns_of_measure(data):
    root, _ = data
    levels = measure(str(root / "data" / "C0_pdff.nrrd"), str(root / "data" / "C0_muscles.seg.nrrd")).levels
    text = [c for c in levels.columns if not (pd.api.types.is_numeric_dtype(levels[c])
                                              or pd.api.types.is_bool_dtype(levels[c]))]
    assert set(text) == set(runner.TEXT_LEVEL_COLUMNS)
