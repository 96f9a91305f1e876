"""The study report from a study folder: results.csv holds exactly the numbers that
``ParaspinalFatLib.stats`` gives on subjects.csv, files are formula-safe, and the HTML
renders in headless Chromium (tables in the DOM, non-blank figures on the screenshot)."""
from __future__ import annotations

import math
import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ParaspinalFatLib import stats
from ParaspinalFatLib.errors import InputError, ParaspinalFatWarning
from ParaspinalFatLib.report.analysis_config import load_config
from ParaspinalFatLib.report.html_report import FIGURE_BORDER, read_study_table, write_report
from ParaspinalFatLib.report.study_analyses import format_mean_sd, format_p
from report_results import result_value as value

pytest.importorskip("matplotlib")

SIX = ["mf_csa_mean", "es_csa_mean", "ps_csa_mean", "mf_pdff_mean", "es_pdff_mean", "ps_pdff_mean"]


def make_study(folder, n=60, repeat=12, seed=11, qc=True):
    """A hand-built study folder: subjects.csv (session 2 for the first ``repeat``),
    codebook.csv, measurements.csv and a few QC pictures."""
    rng = np.random.default_rng(seed)
    vbmd = rng.normal(115.0, 35.0, n).clip(35.0, 210.0)
    sex = np.where(rng.random(n) < 0.5, "M", "F")
    d = pd.DataFrame({"subject": [f"P{i:02d}" for i in range(n)], "age": 90 - 0.3 * vbmd + rng.normal(0, 6, n),
                      "sex": sex, "bmi": rng.normal(24.7, 3.2, n), "vbmd": vbmd})
    for m, (c0, p0) in {"mf": (660, 17), "es": (1070, 18), "ps": (940, 5.7)}.items():
        d[f"{m}_csa_mean"] = c0 + 1.2 * (vbmd - 122) + np.where(sex == "M", 80, -80) + rng.normal(0, 100, n)
        d[f"{m}_pdff_mean"] = p0 - 0.06 * (vbmd - 122) + rng.normal(0, 3, n)
    second = d.iloc[:repeat].copy()
    for c in SIX:
        second[c] = second[c] * (1.0 + rng.normal(0, 0.05, repeat))
    readings = pd.concat([d.assign(session="1"), second.assign(session="2")], ignore_index=True)
    readings = readings[["subject", "session"] + [c for c in d.columns if c != "subject"]]
    folder.mkdir(parents=True, exist_ok=True)
    readings.to_csv(folder / "subjects.csv", index=False)
    kinds = ["key", "key", "clinical", "clinical", "clinical", "clinical"] + ["muscle"] * 6
    pd.DataFrame({"variable": readings.columns, "label": readings.columns, "unit": "", "kind": kinds}).to_csv(
        folder / "codebook.csv", index=False)
    rows = []
    for _, r in readings.iterrows():
        for muscle, ab in (("multifidus", "mf"), ("psoas", "ps")):
            for side in ("left", "right"):
                for lev in ("L3/4", "L4/5", "L5/S1"):
                    rows.append({"subject": r["subject"], "session": r["session"], "case_id": r["subject"],
                                 "muscle": muscle, "side": side, "level": lev, "csa_mm2": r[f"{ab}_csa_mean"],
                                 "fat_fraction_pct": r[f"{ab}_pdff_mean"]})
    pd.DataFrame(rows).to_csv(folder / "measurements.csv", index=False)
    if qc:
        from matplotlib import image as mimage
        for i in range(3):
            qc_dir = folder / "cases" / f"P{i:02d}" / "qc"
            qc_dir.mkdir(parents=True)
            arr = (rng.random((60, 80, 3)) * 255).astype(np.uint8)
            mimage.imsave(str(qc_dir / f"P{i:02d}_L4-5_slice7.png"), arr)
            mimage.imsave(str(qc_dir / f"P{i:02d}_sagittal.png"), arr)
    return readings


def results_of(report):
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    return pd.read_csv(report.results_csv, keep_default_na=False, na_values=[""], **exact,
                       dtype={"analysis": str, "dv": str, "group_or_term": str, "statistic": str})


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    make_study(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParaspinalFatWarning)
        rep = write_report(folder)
    return folder, rep


def test_every_number_equals_the_stats_functions_on_subjects_csv(report):
    folder, rep = report
    r = results_of(rep)
    readings = read_study_table(folder / "subjects.csv", "subjects.csv")
    one = readings[readings["session"] == "1"].reset_index(drop=True)  # the first reading of everybody
    assert len(one) == 60
    data = one.assign(vbmd_group=stats.vbmd_category(one["vbmd"]))
    a = stats.anova_oneway(data, "mf_pdff_mean", "vbmd_group", posthoc="lsd")
    assert value(r, "anova", "mf_pdff_mean", "between", "F") == a.F
    assert value(r, "anova", "mf_pdff_mean", "between", "p") == a.p
    ph = a.posthoc.iloc[0]
    assert (ph["group_a"], ph["group_b"]) == ("normal", "osteopenia")
    assert value(r, "posthoc_lsd", "mf_pdff_mean", "Normal vs Osteopenia", "p") == ph["p"]
    c = stats.correlation(one, "ps_csa_mean", "vbmd")
    assert value(r, "correlation", "ps_csa_mean", "vbmd", "r") == c.r
    assert value(r, "correlation", "ps_csa_mean", "vbmd", "p") == c.p
    reg = stats.linear_regression(one, "vbmd", ["sex", "age"] + SIX, categorical={"sex": None})
    coef = reg.coefficients.set_index("term")
    assert value(r, "regression", "vbmd", "mf_pdff_mean", "B") == coef.loc["mf_pdff_mean", "B"]
    assert value(r, "regression", "vbmd", "sex[M]", "se") == coef.loc["sex[M]", "se"]
    assert value(r, "regression_model", "vbmd", "model", "adj_r_squared") == reg.adj_r_squared
    wide = readings.pivot(index="subject", columns="session", values="es_pdff_mean")
    icc = stats.icc(wide, form="ICC2")
    assert icc.n == 12
    assert value(r, "icc", "es_pdff_mean", "between sessions", "icc") == icc.icc
    assert value(r, "icc", "es_pdff_mean", "between sessions", "ci_high") == icc.ci_high
    t = stats.ttest(one, "age", "sex", order=["M", "F"])
    assert value(r, "by_sex_ttest_student", "age", "M vs F", "p") == t.student.p
    # an independent oracle for two of them
    groups = [one.loc[data["vbmd_group"] == g, "mf_pdff_mean"] for g in ("normal", "osteopenia", "osteoporosis")]
    assert value(r, "anova", "mf_pdff_mean", "between", "F") == pytest.approx(sps.f_oneway(*groups)[0], rel=1e-10)
    assert value(r, "correlation", "ps_csa_mean", "vbmd", "r") == pytest.approx(
        sps.pearsonr(one["ps_csa_mean"], one["vbmd"])[0], rel=1e-12)
    # n is the number of subjects used, never a count of readings
    assert value(r, "descriptives", "age", "All", "n") == 60
    assert r.loc[r["analysis"] == "icc", "n"].eq(12).all()


def test_files_tables_and_markdown(report):
    folder, rep = report
    out = folder / "report"
    assert rep.html == out / "report.html" and rep.results_csv == out / "results.csv"
    assert set(rep.tables) == {"reproducibility", "groups", "posthoc", "by_sex", "correlations", "regression",
                               "regression_model"}
    assert set(rep.figures) == {"bar_by_group", "scatter", "level_profile", "qc_contact_sheet"}
    assert all(p.is_file() and p.parent == out / "figures" for p in rep.figures.values())
    groups = pd.read_csv(rep.tables["groups"], dtype=str, keep_default_na=False)
    readings = read_study_table(folder / "subjects.csv", "subjects.csv")
    one = readings[readings["session"] == "1"]
    x = one.loc[one["vbmd"] > 120, "mf_csa_mean"]
    row = groups[groups["Variable"] == "MF CSA (mm²)"].iloc[0]
    assert row[f"Normal (N = {len(x)})"] == format_mean_sd(x.mean(), x.std(ddof=1))
    md = (out / "tables" / "groups.md").read_text(encoding="utf-8")
    assert md.startswith("## Clinical characteristics") and f"| {format_mean_sd(x.mean(), x.std(ddof=1))} |" in md
    html = rep.html.read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == 4
    assert "<h2>Table 2b." in html and "<h2>Table 3." in html  # post hoc continues Table 2; sex is Table 3
    methods = html.split('id="methods">', 1)[1].split("</p>", 1)[0]
    for phrase in ("first reading", "ICC(A,1)", "LSD", "ISCD", "Student", "numpy", "scipy", "pandas"):
        assert phrase in methods, phrase
    assert not list(out.rglob(".*.tmp"))


def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        pytest.skip("headless Chromium is not installed (Debian: `apt-get install -y chromium`); "
                    "the HTML rendering test needs it")
    return exe


def run_chromium(exe, profile, *args):
    cmd = [exe, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, timeout=90)


def test_html_renders_in_headless_chromium(report, tmp_path):
    from matplotlib import image as mimage
    from scipy import ndimage

    exe = chromium()
    folder, rep = report
    url = rep.html.resolve().as_uri()
    dom = run_chromium(exe, tmp_path / "profile1", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    text = dom.stdout.decode("utf-8")
    for key in rep.tables:
        assert f'id="table-{key}"' in text, key
    readings = read_study_table(folder / "subjects.csv", "subjects.csv")
    one = readings[readings["session"] == "1"]
    x = one.loc[(one["vbmd"] >= 80) & (one["vbmd"] <= 120), "ps_pdff_mean"]
    assert f"<td>{format_mean_sd(x.mean(), x.std(ddof=1))}</td>" in text
    p = stats.anova_oneway(one.assign(g=stats.vbmd_category(one["vbmd"])), "mf_csa_mean", "g").p
    assert f"<td>{format_p(p)}</td>" in text
    assert text.count('class="figure"') == len(rep.figures)

    shot = tmp_path / "shot.png"
    res = run_chromium(exe, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1200,9000", url)
    assert res.returncode == 0 and shot.is_file(), res.stderr.decode(errors="replace")[-2000:]
    img = (mimage.imread(str(shot))[:, :, :3] * 255).round().astype(int)
    border = np.array([int(FIGURE_BORDER[i:i + 2], 16) for i in (1, 3, 5)])
    frames, n = ndimage.label((img == border).all(axis=2))
    boxes = [b for b in ndimage.find_objects(frames) if b[0].stop - b[0].start > 40]
    assert len(boxes) == len(rep.figures), f"{len(boxes)} framed figures on the screenshot"
    for rows, cols in boxes:
        h, w = rows.stop - rows.start, cols.stop - cols.start
        assert h > 150 and w > 300, (h, w)  # a broken image would be a small icon
        inner = img[rows.start + 5:rows.stop - 5, cols.start + 5:cols.stop - 5]
        assert inner.std() > 10.0  # drawn, not blank
        assert (inner != 255).any(axis=2).mean() > 0.02
    # the tables are drawn too: the area above the first figure is not blank
    top = min(b[0].start for b in boxes)
    assert (img[:top] < 128).all(axis=2).sum() > 5000


def test_formula_like_cells_are_neutralised_and_markup_escaped(tmp_path):
    readings = make_study(tmp_path, n=40, repeat=0, qc=False)
    readings["site"] = np.where(np.arange(len(readings)) % 2 == 0, '=HYPERLINK("http://x")', "<b>bold</b>")
    readings.to_csv(tmp_path / "subjects.csv", index=False)
    cfg_file = tmp_path / "site.toml"
    cfg_file.write_text('base = "seed001"\n[groups]\ncolumn = "site"\nfrom = "column"\nlabels = []\n'
                        'name = "site_group"\ntitle = "Site"\n[figures]\nenabled = false\n', encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParaspinalFatWarning)
        rep = write_report(tmp_path, config=cfg_file)
    raw = rep.results_csv.read_text(encoding="utf-8")
    assert "'=HYPERLINK" in raw and "\n=HYPERLINK" not in raw and ",=HYPERLINK" not in raw
    table = rep.tables["groups"].read_text(encoding="utf-8")
    assert "'=HYPERLINK" in table and ",=HYPERLINK" not in table
    html = rep.html.read_text(encoding="utf-8")
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert rep.figures == {}


def test_a_second_config_replaces_the_files_of_the_first(report, tmp_path):
    folder, _ = report
    out = tmp_path / "rep"
    cfg = load_config()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParaspinalFatWarning)
        write_report(folder, config=cfg, output=out)
        assert (out / "tables" / "posthoc.csv").is_file()
        from ParaspinalFatLib.report.analysis_config import AnovaConfig
        rep = write_report(folder, config=cfg.with_changes(anova=AnovaConfig(enabled=True, posthoc="none")),
                           output=out)
    assert not (out / "tables" / "posthoc.csv").exists() and not (out / "tables" / "posthoc.md").exists()
    assert "posthoc" not in rep.tables and (out / "tables" / "groups.csv").is_file()


def test_repeated_mean_uses_the_mean_of_the_readings(tmp_path):
    readings = make_study(tmp_path, n=45, repeat=10, qc=False)
    cfg_file = tmp_path / "mean.toml"
    cfg_file.write_text('base = "seed001"\n[reproducibility]\nrepeated = "mean"\n[figures]\nenabled = false\n',
                        encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParaspinalFatWarning)
        rep = write_report(tmp_path, config=cfg_file)
    r = results_of(rep)
    back = read_study_table(tmp_path / "subjects.csv", "subjects.csv")
    per_subject = back.groupby("subject")["mf_csa_mean"].mean()
    assert value(r, "descriptives", "mf_csa_mean", "All", "mean") == pytest.approx(per_subject.mean(), rel=1e-12)
    first = back[back["session"] == "1"]["mf_csa_mean"].mean()
    assert not math.isclose(per_subject.mean(), first, rel_tol=1e-9)
    assert "mean of the readings" in rep.html.read_text(encoding="utf-8")
    assert readings["subject"].nunique() == 45


def test_missing_study_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        write_report(tmp_path / "nope")
    with pytest.raises(InputError, match="subjects.csv not found"):
        write_report(tmp_path)
