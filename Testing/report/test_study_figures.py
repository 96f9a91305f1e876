"""Study figures: the pixels show the numbers given (bar heights, line slope, thumbnail
colours), in the Okabe-Ito palette, written atomically."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")
from matplotlib import image as mimage  # noqa: E402

from ParaspinalFatLib.errors import InputError  # noqa: E402
from ParaspinalFatLib.report.study_figures import (  # noqa: E402
    OKABE_ITO, bar_chart_by_group, level_profile, qc_contact_sheet, roc_figure, scatter_with_fit,
)


def rgb255(path):
    a = mimage.imread(str(path))
    return (a[:, :, :3] * 255).round().astype(int)


def hex_rgb(h):
    return np.array([int(h[i:i + 2], 16) for i in (1, 3, 5)])


def mask_of(img, colour):
    return (img == hex_rgb(colour)).all(axis=2)


def no_temp_files(folder):
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_bar_heights_are_proportional_to_the_means(tmp_path):
    means = pd.DataFrame({"variable": "v", "group": ["a", "b", "c"], "mean": [10.0, 20.0, 5.0],
                          "sd": [0.0, 0.0, 0.0]})
    out = bar_chart_by_group(means, tmp_path / "bars.png", dpi=100)
    assert out == tmp_path / "bars.png" and no_temp_files(tmp_path)
    img = rgb255(out)
    assert img.shape[:2] == (300, 330)  # 3.3 x (2.9 + 0.1) inches at 100 dpi
    heights = []
    for colour in OKABE_ITO[:3]:
        m = mask_of(img, colour)
        assert m.sum() > 50, colour
        cols = np.flatnonzero(m.any(axis=0))
        heights.append(m[:, cols[len(cols) // 2]].sum())  # bar height in pixels at its centre
    assert heights[1] / heights[0] == pytest.approx(2.0, abs=0.05)
    assert heights[2] / heights[0] == pytest.approx(0.5, abs=0.05)


def test_post_hoc_stars_add_a_bracket_above_the_bars(tmp_path):
    means = pd.DataFrame({"variable": "v", "group": ["a", "b"], "mean": [10.0, 12.0], "sd": [1.0, 1.0]})
    no_title = {"v": ""}  # nothing but the bracket may be black above the bars
    plain = rgb255(bar_chart_by_group(means, tmp_path / "plain.png", labels=no_title))
    ph = pd.DataFrame({"variable": ["v"], "group_a": ["a"], "group_b": ["b"], "p": [0.001]})
    starred = rgb255(bar_chart_by_group(means, tmp_path / "starred.png", posthoc=ph, labels=no_title))
    ns = pd.DataFrame({"variable": ["v"], "group_a": ["a"], "group_b": ["b"], "p": [0.2]})
    not_sig = rgb255(bar_chart_by_group(means, tmp_path / "ns.png", posthoc=ns, labels=no_title))
    assert np.array_equal(plain, not_sig)  # p >= 0.05: no bracket
    assert not np.array_equal(plain, starred)


    def bracket_rows(img):
        """Rows with a dark line crossing the whole gap between the two bars."""
        a_cols = np.flatnonzero(mask_of(img, OKABE_ITO[0]).any(axis=0))
        b_cols = np.flatnonzero(mask_of(img, OKABE_ITO[1]).any(axis=0))
        bars = mask_of(img, OKABE_ITO[0]) | mask_of(img, OKABE_ITO[1])
        top = np.flatnonzero(bars.any(axis=1))[0]  # above every bar (not the x axis line)
        gap = img[:top, a_cols.max() + 3:b_cols.min() - 2]
        return int((gap < 60).all(axis=2).all(axis=1).sum())
    assert bracket_rows(plain) == 0 and bracket_rows(not_sig) == 0
    assert bracket_rows(starred) >= 1


def test_bar_chart_without_data_is_an_input_error(tmp_path):
    empty = pd.DataFrame({"variable": [], "group": [], "mean": [], "sd": []})
    with pytest.raises(InputError, match="no variable"):
        bar_chart_by_group(empty, tmp_path / "x.png")


def test_scatter_line_follows_the_sign_of_the_relation(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, 60)
    data = pd.DataFrame({"t": 100 - 5 * x + rng.normal(0, 1, 60), "v": x})
    img = rgb255(scatter_with_fit(data, "t", ["v"], tmp_path / "s.png", annotations={"v": "r = −0.99"}))
    line = mask_of(img, OKABE_ITO[3])
    rows, cols = np.nonzero(line)
    assert cols.size > 50
    left, right = rows[cols <= cols.min() + 3].mean(), rows[cols >= cols.max() - 3].mean()
    assert left < right  # falls from left to right (image rows grow downwards)
    with pytest.raises(InputError):
        scatter_with_fit(data, "t", ["missing"], tmp_path / "s2.png")


def test_roc_figure_draws_each_curve_in_its_colour(tmp_path):
    perfect = SimpleNamespace(fpr=np.array([0, 0, 1.0]), tpr=np.array([0, 1.0, 1.0]), auc=1.0, ci_low=1.0,
                              ci_high=1.0, confidence=0.95)
    chance = SimpleNamespace(fpr=np.array([0, 1.0]), tpr=np.array([0, 1.0]), auc=0.5, ci_low=0.4, ci_high=0.6,
                             confidence=0.95)
    img = rgb255(roc_figure({"perfect": perfect, "chance": chance}, tmp_path / "roc.png"))
    first = mask_of(img, OKABE_ITO[0])
    second = mask_of(img, OKABE_ITO[1])
    assert first.sum() > 100 and second.sum() > 100
    r1, c1 = np.nonzero(first)
    # the perfect curve runs up the left edge: its pixels span the plot height at the smallest x
    left = c1 <= c1.min() + 2
    assert r1[left].max() - r1[left].min() > 200
    with pytest.raises(InputError):
        roc_figure({}, tmp_path / "none.png")


def test_level_profile_uses_the_first_reading(tmp_path):
    rows = []
    for s in range(6):
        for session, scale in (("1", 1.0), ("2", 50.0)):
            for side in ("left", "right"):
                for lev in ("L5/S1", "L3/4", "L4/5"):
                    rows.append({"subject": f"s{s}", "session": session, "muscle": "multifidus", "side": side,
                                 "level": lev, "csa_mm2": scale * (500 + 10 * s), "fat_fraction_pct": 10.0 + s})
    m = pd.DataFrame(rows)
    a = rgb255(level_profile(m, tmp_path / "both.png", repeated="first"))
    b = rgb255(level_profile(m[m["session"] == "1"].drop(columns="session"), tmp_path / "first.png"))
    c = rgb255(level_profile(m, tmp_path / "mean.png", repeated="mean"))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert mask_of(a, OKABE_ITO[0]).sum() > 50
    with pytest.raises(InputError, match="lack"):
        level_profile(m.drop(columns="level"), tmp_path / "x.png")


def test_contact_sheet_places_each_thumbnail(tmp_path):
    colours = [(255, 0, 0), (0, 160, 0), (0, 0, 255)]
    paths = []
    for i, c in enumerate(colours):
        arr = np.zeros((200, 300, 3), dtype=np.uint8)
        arr[:] = c
        p = tmp_path / f"case{i}_L4-5_slice3.png"
        mimage.imsave(str(p), arr)
        paths.append(p)
    clear = np.zeros((200, 300, 4), dtype=np.uint8)
    clear[:, :, 0] = 255  # red, but fully transparent: shown on white
    mimage.imsave(str(tmp_path / "clear.png"), clear)
    paths.append(tmp_path / "clear.png")
    out = qc_contact_sheet(paths, tmp_path / "sheet" / "qc.png", ncols=2, thumb_px=100)
    img = rgb255(out)
    gap, cap = 6, 16
    cell_w, cell_h = 100 + gap, 100 + cap + gap
    assert img.shape[:2] == (2 * cell_h + gap, 2 * cell_w + gap)
    for i, c in enumerate(colours):
        r, col = divmod(i, 2)
        y, x = gap + r * cell_h + 50, gap + col * cell_w + 50
        assert tuple(img[y, x]) == c, i
    assert tuple(img[gap + cell_h + 50, gap + cell_w + 50]) == (255, 255, 255)  # transparent 4th picture
    # 300 x 200 shrunk by 3 is 100 x 67, centred: rows 16..82 of the 100 x 100 box
    assert (img[gap + 16:gap + 83, gap:gap + 100] == (255, 0, 0)).all()
    assert (img[gap + 15, gap + 50] == 255).all() and (img[gap + 83, gap + 50] == 255).all()
    assert no_temp_files(out.parent)
    with pytest.raises(InputError, match="cannot read"):
        bad = tmp_path / "bad.png"
        bad.write_bytes(b"not a png")
        qc_contact_sheet([bad], tmp_path / "s2.png")
    with pytest.raises(InputError, match="no QC picture"):
        qc_contact_sheet([], tmp_path / "s3.png")
