"""tables.summarize: left/right, asymmetry, pooling of several ROIs, CSV round trip."""
import io

import numpy as np
import pandas as pd
import pytest

from ParaspinalFatLib.schemas import LOWER_LUMBAR_LABEL
from ParaspinalFatLib.measurement.summary import summarize


def _row(muscle, side, level, csa, ff, unit="%", mean=None, n=None):
    n = n if n is not None else int(csa)
    return dict(subject="s1", segment=f"{muscle}_{side}_{level}", muscle=muscle, side=side, level=level,
                csa_mm2=float(csa), fat_csa_mm2=csa * ff / 100, lean_csa_mm2=csa * (1 - ff / 100),
                undefined_csa_mm2=0.0, fat_area_ratio=ff / 100, fat_fraction_pct=ff,
                mean=ff if mean is None else mean, unit=unit, n_voxels=n, n_nan=0, n_below_noise=0)


def _get(s, muscle, level, metric):
    return s[(s.muscle == muscle) & (s.level == level) & (s.metric == metric)].iloc[0]


def test_left_right_asymmetry_and_lower_lumbar_mean_by_hand():
    rows = [_row("multifidus", side, lv, csa, ff) for side, base in (("left", 600), ("right", 500))
            for lv, csa, ff in (("L3/4", base, 10), ("L4/5", base + 60, 15), ("L5/S1", base + 120, 20))]
    s = summarize(pd.DataFrame(rows))
    r = _get(s, "multifidus", "L4/5", "csa_mm2")
    assert (r.left, r.right, r.lr_mean) == (660, 560, 610)
    assert r.asymmetry_pct == pytest.approx(100 / 610 * 100)
    m = _get(s, "multifidus", LOWER_LUMBAR_LABEL, "csa_mm2")
    assert (m.left, m.right, m.n_levels) == (660, 560, 3)


def test_asymmetry_of_mean_hu_is_not_a_percentage():
    rows = [_row("autochthon", "left", "L4/5", 2000, 20, unit="HU", mean=-13.38),
            _row("autochthon", "right", "L4/5", 2100, 18, unit="HU", mean=-5.65)]
    s = summarize(pd.DataFrame(rows))
    assert np.isnan(_get(s, "autochthon", "L4/5", "mean").asymmetry_pct)
    assert _get(s, "autochthon", "L4/5", "csa_mm2").asymmetry_pct == pytest.approx(100 / 2050 * 100)


def test_two_rois_of_one_muscle_side_level_are_pooled_as_one():
    rows = [_row("erector_spinae", "left", "L4/5", 800, 10), _row("erector_spinae", "left", "L4/5", 400, 30)]
    s = summarize(pd.DataFrame(rows))
    assert _get(s, "erector_spinae", "L4/5", "csa_mm2").left == 1200
    assert _get(s, "erector_spinae", "L4/5", "fat_fraction_pct").left == pytest.approx((800 * 10 + 400 * 30) / 1200)
    assert _get(s, "erector_spinae", "L4/5", "fat_area_ratio").left == pytest.approx((80 + 120) / 1200)


def test_bilateral_roi_survives_a_csv_round_trip():
    df = pd.DataFrame([_row("psoas", "", "L4/5", 1000, 5)])
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    back = pd.read_csv(io.StringIO(buf.getvalue()))
    assert back["side"].isna().all()
    assert _get(summarize(back), "psoas", "L4/5", "csa_mm2").lr_mean == 1000


def test_unmeasurable_side_gives_nan_asymmetry_and_carries_the_row_warning():
    rows = [_row("multifidus", side, lv, csa, ff) for side in ("left", "right")
            for lv, csa, ff in (("L3/4", 600, 10), ("L4/5", 660, 15), ("L5/S1", 720, 20))]
    df = pd.DataFrame(rows)
    df["warnings"] = ""
    bad = (df.side == "left") & (df.level == "L4/5")
    for col in ("fat_csa_mm2", "lean_csa_mm2", "undefined_csa_mm2", "fat_area_ratio", "fat_fraction_pct", "mean"):
        df.loc[bad, col] = np.nan
    df.loc[bad, "warnings"] = "fat/lean composition not measurable (NaN): all 660 voxels are excluded"
    s = summarize(df)
    reason = "multifidus_left_L4/5 (L4/5): fat/lean composition not measurable (NaN): all 660 voxels are excluded"
    for metric in ("lean_csa_mm2", "fat_csa_mm2", "fat_fraction_pct", "fat_area_ratio"):
        r = _get(s, "multifidus", "L4/5", metric)
        assert np.isnan(r.left) and np.isfinite(r.right)
        assert np.isnan(r.asymmetry_pct) and np.isnan(r.lr_mean)
        assert r.warnings == reason
        m = _get(s, "multifidus", LOWER_LUMBAR_LABEL, metric)
        assert np.isnan(m.left) and np.isfinite(m.right) and m.warnings == reason
    r = _get(s, "multifidus", "L4/5", "csa_mm2")
    assert r.asymmetry_pct == 0.0 and r.warnings == reason  # CSA is measured on both sides
    assert _get(s, "multifidus", "L3/4", "csa_mm2").warnings == ""
    wide = summarize(df, wide=True)
    assert wide.loc[0, "warnings"] == reason
    assert np.isnan(wide.loc[0, "multifidus L4/5 asymmetry_pct lean_csa_mm2"])


def test_warnings_of_both_sides_and_levels_are_joined_once_each():
    rows = [_row("psoas", side, lv, 1000, 5) for side in ("left", "right") for lv in ("L3/4", "L4/5", "L5/S1")]
    df = pd.DataFrame(rows)
    df["warnings"] = ["psoas on T1: unreliable"] * 6
    s = summarize(df)
    r = _get(s, "psoas", "L4/5", "csa_mm2")
    assert r.warnings == ("psoas_left_L4/5 (L4/5): psoas on T1: unreliable; "
                          "psoas_right_L4/5 (L4/5): psoas on T1: unreliable")
    m = _get(s, "psoas", LOWER_LUMBAR_LABEL, "csa_mm2")
    assert m.warnings.count("; ") == 5
    buf = io.StringIO()
    df.assign(warnings="").to_csv(buf, index=False)  # empty warnings come back from a CSV as NaN
    back = pd.read_csv(io.StringIO(buf.getvalue()))
    assert back["warnings"].isna().all() and (summarize(back)["warnings"] == "").all()


# =============================================================================
# frozen reference: the loop implementation of summarize before issue #11
# (copied verbatim; the vectorised summarize must give the same frames bit for bit)
# =============================================================================
_REF_SUMMARY_METRICS = ("csa_mm2", "fat_fraction_pct", "fat_csa_mm2", "lean_csa_mm2", "fat_area_ratio", "mean")


def _reference_summarize(levels, wide=False, metrics=None):
    from ParaspinalFatLib.anatomy.level_names import level_sort_key
    from ParaspinalFatLib.schemas import LOWER_LUMBAR_LEVELS, SUMMARY_COLUMNS

    side = levels["side"].astype(object)
    levels = levels.assign(side=side.where(side.notna(), "").astype(str),
                           _warn=_reference_labelled_row_warnings(levels))
    if metrics is None:
        metrics = [m for m in _REF_SUMMARY_METRICS if m in levels and levels[m].notna().any()]
    unit_of = {
        "csa_mm2": "mm2", "fat_csa_mm2": "mm2", "lean_csa_mm2": "mm2", "fat_area_ratio": "fraction",
        "fat_fraction_pct": "%",
    }
    recs = []
    for (subject, muscle), grp in levels.groupby(["subject", "muscle"], sort=True):
        level_names = sorted(set(grp["level"]), key=level_sort_key)
        for metric in metrics:
            unit = unit_of.get(metric) or (grp["unit"].iloc[0] if "unit" in grp else "")
            per_level = {}
            for level in level_names:
                sub = grp[grp["level"] == level]
                left = _reference_side_value(sub, "left", metric)
                right = _reference_side_value(sub, "right", metric)
                both = _reference_side_value(sub, "", metric)
                per_level[level] = (left, right, both)
                recs.append(_reference_summary_record(subject, muscle, level, metric, unit, left, right, both, 1,
                                                      _reference_join_warnings(sub["_warn"])))
            have = [lv for lv in LOWER_LUMBAR_LEVELS if lv in per_level]
            if have:
                if len(have) == len(LOWER_LUMBAR_LEVELS):
                    left, right, both = (
                        float(np.mean([per_level[lv][i] for lv in have])) for i in range(3)
                    )
                else:
                    left = right = both = np.nan
                recs.append(_reference_summary_record(
                    subject, muscle, LOWER_LUMBAR_LABEL, metric, unit, left, right, both, len(have),
                    _reference_join_warnings(grp.loc[grp["level"].isin(have), "_warn"])))
    tidy = pd.DataFrame.from_records(recs, columns=SUMMARY_COLUMNS)
    if not wide:
        return tidy
    long = tidy.melt(
        id_vars=["subject", "muscle", "level", "metric"],
        value_vars=["left", "right", "lr_mean", "asymmetry_pct"], var_name="stat",
    )
    long["column"] = long["muscle"] + " " + long["level"] + " " + long["stat"] + " " + long["metric"]
    out = long.pivot_table(index="subject", columns="column", values="value", aggfunc="first", dropna=False)
    out.columns.name = None
    out = out.reset_index()
    by_subject = {subject: _reference_join_warnings(grp["_warn"])
                  for subject, grp in levels.groupby("subject", sort=False)}
    out["warnings"] = [by_subject.get(subject, "") for subject in out["subject"]]
    return out


def _reference_labelled_row_warnings(levels):
    n = len(levels)
    if "warnings" not in levels.columns or n == 0:
        return np.array([""] * n, dtype=object)

    def text(v) -> str:
        return "" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v).strip()

    def column(name):
        return [text(v) for v in levels[name]] if name in levels.columns else [""] * n

    warn, level, segment = column("warnings"), column("level"), column("segment")
    muscle, side = column("muscle"), column("side")
    out = []
    for w, lv, seg, mu, sd in zip(warn, level, segment, muscle, side):
        if not w:
            out.append("")
            continue
        name = seg or " ".join(x for x in (mu, sd) if x) or "row"
        out.append(f"{name} ({lv}): {w}" if lv else f"{name}: {w}")
    return np.array(out, dtype=object)


def _reference_join_warnings(texts):
    seen = []
    for t in texts:
        if isinstance(t, str) and t and t not in seen:
            seen.append(t)
    return "; ".join(seen)


def _reference_side_value(sub, side, metric):
    rows = sub.loc[sub["side"] == side]
    if len(rows) == 0:
        return np.nan
    vals = rows[metric].to_numpy(dtype=float)
    if len(rows) == 1:
        return float(vals[0])
    if metric.endswith("csa_mm2"):
        return float(np.nansum(vals)) if np.isfinite(vals).any() else np.nan
    weights = _reference_pool_weights(rows, metric)
    ok = np.isfinite(vals) & np.isfinite(weights) & (weights > 0)
    if not ok.any():
        return np.nan
    return float(np.sum(vals[ok] * weights[ok]) / np.sum(weights[ok]))


def _reference_pool_weights(rows, metric):
    def col(name):
        return rows[name].to_numpy(dtype=float) if name in rows else np.zeros(len(rows))

    if metric == "fat_area_ratio":
        und = col("undefined_csa_mm2")
        return col("fat_csa_mm2") + col("lean_csa_mm2") + np.where(np.isfinite(und), und, 0.0)
    return col("n_voxels") - col("n_nan") - col("n_below_noise")


def _reference_summary_record(subject, muscle, level, metric, unit, left, right, both, n_levels, warnings_text=""):
    if np.isfinite(left) and np.isfinite(right):
        lr_mean = (left + right) / 2.0
        interval_scale = metric == "mean" and unit == "HU"
        if interval_scale or lr_mean == 0:
            asym = np.nan
        else:
            asym = abs(left - right) / abs(lr_mean) * 100.0
    else:
        lr_mean = both if np.isfinite(both) else np.nan
        asym = np.nan
    return {
        "subject": subject, "muscle": muscle, "level": level, "metric": metric, "unit": unit,
        "left": left, "right": right, "lr_mean": lr_mean, "asymmetry_pct": asym, "n_levels": n_levels,
        "warnings": warnings_text,
    }


# =============================================================================
# generated per-level tables
# =============================================================================
_GEN_LEVELS = ["T12/L1", "L1/2", "L2/3", "L3/4", "L4/5", "L5/S1", "L3/4", "L4/5", "L5/S1", "L4", "S1"]
_GEN_MUSCLES = ["multifidus", "erector_spinae", "psoas", "quadratus_lumborum", "iliocostalis", "m5", "m6"]
_GEN_WARNINGS = ["fat/lean composition not measurable (NaN): all voxels are excluded",
                 "psoas on T1: unreliable", "level from vertebrae; disc missing"]


def random_level_table(rng: np.random.Generator, n: int, kind: str = "pdff") -> pd.DataFrame:
    """A per-level table of ``n`` rows with repeats, holes, NaN, inf and warnings (seeded)."""
    n_subj = int(rng.choice([1, 1, 1, 2, 3]))
    subjects = [f"s{i}" for i in range(n_subj)]
    muscles = list(rng.choice(_GEN_MUSCLES, size=int(rng.integers(1, len(_GEN_MUSCLES) + 1)), replace=False))
    levels = list(rng.choice(_GEN_LEVELS, size=int(rng.integers(1, 7)), replace=True))
    sides = ["left", "right", ""] if rng.random() < 0.5 else ["left", "right"]
    subj = rng.choice(subjects, size=n)
    mus = rng.choice(muscles, size=n)
    lev = rng.choice(levels, size=n)
    sid = rng.choice(sides, size=n, p=None)
    if rng.random() < 0.2 and n > 12:  # one big pool of ROIs of one muscle/side/level
        k = int(rng.integers(9, min(n, 150) + 1))
        idx = rng.choice(n, size=k, replace=False)
        subj[idx], mus[idx], lev[idx], sid[idx] = subjects[0], muscles[0], levels[0], "left"
    n_vox = rng.integers(0, 3000, size=n)
    n_nan = np.minimum(rng.integers(0, 50, size=n) * (rng.random(n) < 0.2), n_vox)
    n_below = np.minimum(rng.integers(0, 50, size=n) * (rng.random(n) < 0.2), n_vox - n_nan)
    px = rng.choice([0.5, 1.0, 1.625, 0.7421875])
    csa = n_vox * px
    ratio = rng.random(n)
    ratio[rng.random(n) < 0.1] = rng.choice([0.0, 1.0])
    fat = csa * ratio
    lean = csa - fat
    und = np.where(rng.random(n) < 0.3, rng.random(n) * 10, 0.0)
    if kind == "ct":
        ff = np.full(n, np.nan)
        mean = rng.normal(20, 40, size=n)
        unit = "HU"
    else:
        ff = rng.random(n) * 100
        mean = ff.copy()
        unit = "%"
    table = pd.DataFrame({
        "subject": subj, "segment": [f"{m}_{s}_{lv}_{i}" for i, (m, s, lv) in enumerate(zip(mus, sid, lev))],
        "muscle": mus, "side": sid, "level": lev, "n_voxels": n_vox, "n_nan": n_nan, "n_below_noise": n_below,
        "csa_mm2": csa, "mean": mean, "fat_csa_mm2": fat, "lean_csa_mm2": lean, "undefined_csa_mm2": und,
        "fat_area_ratio": ratio, "fat_fraction_pct": ff, "warnings": "", "unit": unit,
    })
    warned = rng.random(n) < 0.15
    table.loc[warned, "warnings"] = rng.choice(_GEN_WARNINGS, size=int(warned.sum()))
    bad = rng.random(n) < 0.1  # not measurable: composition NaN, with the reason
    for col in ("fat_csa_mm2", "lean_csa_mm2", "undefined_csa_mm2", "fat_area_ratio", "fat_fraction_pct", "mean"):
        table.loc[bad, col] = np.nan
    table.loc[bad, "warnings"] = _GEN_WARNINGS[0]
    for col in ("csa_mm2", "mean", "fat_fraction_pct", "lean_csa_mm2", "undefined_csa_mm2"):
        r = rng.random(n)
        table.loc[r < 0.03, col] = np.nan
        table.loc[(r >= 0.03) & (r < 0.05), col] = rng.choice([np.inf, -np.inf, 0.0, -0.0])
    if rng.random() < 0.2:  # a muscle measured only as zeros (lr_mean 0: no asymmetry)
        zero = table["muscle"] == muscles[0]
        table.loc[zero, ["csa_mm2", "fat_csa_mm2", "lean_csa_mm2", "mean"]] = 0.0
    if rng.random() < 0.1:
        table["unit"] = rng.choice(["%", "HU", "a.u."], size=n)
    if rng.random() < 0.1:
        table["subject"] = [int(x[1:]) + 100 for x in table["subject"]]
    if rng.random() < 0.1:
        table.loc[rng.random(n) < 0.1, "side"] = "midline"  # neither left, right nor none: no value
    if rng.random() < 0.1:
        table = table.drop(columns=["warnings"])
    if rng.random() < 0.1:
        table = table.drop(columns=["segment"])
    if rng.random() < 0.1:
        table = table.drop(columns=["undefined_csa_mm2"])
    if rng.random() < 0.1:
        table["level"] = table["level"].astype(object)
        table.loc[rng.random(n) < 0.1, "level"] = np.nan
    table = table.sample(frac=1.0, random_state=int(rng.integers(0, 2 ** 31))).reset_index(drop=True)
    if rng.random() < 0.25:  # CSV round trip: "" sides and warnings come back as NaN
        buf = io.StringIO()
        table.to_csv(buf, index=False)
        table = pd.read_csv(io.StringIO(buf.getvalue()))
    return table


def _generated_cases(count, seed):
    rng = np.random.default_rng(seed)
    for i in range(count):
        n = int(rng.choice([1, 2, 3, 6, 18, 18, 40, 60])) if i % 15 else 200
        yield i, random_level_table(rng, n, kind="ct" if rng.random() < 0.3 else "pdff"), rng


def test_summarize_equals_the_frozen_loop_implementation_on_generated_tables():
    import warnings as _w

    checked = 0
    for i, table, rng in _generated_cases(60, seed=11):
        options = [{}, {"wide": True}]
        if rng.random() < 0.3:
            options.append({"metrics": list(rng.choice(list(_REF_SUMMARY_METRICS),
                                                       size=int(rng.integers(1, 4)), replace=False))})
        for kw in options:
            with _w.catch_warnings():
                _w.simplefilter("ignore", RuntimeWarning)
                ref = _reference_summarize(table.copy(), **kw)
            before = table.copy()
            with _w.catch_warnings():
                _w.simplefilter("error", RuntimeWarning)
                new = summarize(table, **kw)
            pd.testing.assert_frame_equal(table, before)  # input not modified
            pd.testing.assert_frame_equal(new, ref, check_exact=True, obj=f"case {i} {kw}")
            checked += 1
    assert checked >= 120


def test_summarize_equals_the_frozen_loop_implementation_on_the_hand_tables():
    rows = [_row("multifidus", side, lv, csa, ff) for side, base in (("left", 600), ("right", 500))
            for lv, csa, ff in (("L3/4", base, 10), ("L4/5", base + 60, 15), ("L5/S1", base + 120, 20))]
    rows += [_row("erector_spinae", "left", "L4/5", 800, 10), _row("erector_spinae", "left", "L4/5", 400, 30),
             _row("psoas", "", "L4/5", 1000, 5), _row("autochthon", "left", "L4/5", 2000, 20, unit="HU", mean=-13.38)]
    df = pd.DataFrame(rows)
    for kw in ({}, {"wide": True}):
        pd.testing.assert_frame_equal(summarize(df, **kw), _reference_summarize(df, **kw), check_exact=True)
    empty = df.iloc[:0]
    pd.testing.assert_frame_equal(summarize(empty), _reference_summarize(empty), check_exact=True)
