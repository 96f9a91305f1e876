"""The per-level table measures each row on its own ROI's voxels in its own slice window.

Rows of one ROI whose windows overlap (wide windows at close levels) are measured in separate
passes; every row must still see exactly its voxels, checked against numpy on hand-picked voxels.
"""
from __future__ import annotations

import numpy as np
import pytest

from ParaspinalFatLib.composition.factory import make_method
from ParaspinalFatLib.measurement.case_tables import level_table
from ParaspinalFatLib.measurement.planning import Roi, Row
from ParaspinalFatLib.measurement.voxels import RoiVoxels
from ParaspinalFatLib.segmentation import Segment


def _case(rng, n_rois=3, n_slices=12, per=400):
    roi = np.repeat(np.arange(n_rois, dtype=np.int32), per)
    slices = rng.integers(0, n_slices, roi.size).astype(np.int32)
    values = rng.normal(50, 20, roi.size)
    vox = RoiVoxels(roi, slices, values, n_rois, n_slices)
    rois = [Roi(Segment(f"m{r}_left", 0, r + 1), f"m{r}", "left", None) for r in range(n_rois)]
    counts = np.zeros((n_rois, n_slices), np.int64)
    np.add.at(counts, (roi, slices), 1)
    return vox, rois, counts


@pytest.mark.parametrize("windows", [
    [(2, 2), (5, 5), (9, 9)],            # one slice each, far apart: a single pass
    [(1, 5), (3, 7), (6, 10), (4, 4)],   # overlapping windows of one ROI: several passes
    [(0, 11), (0, 11), (5, 6)],          # the same window twice
])
def test_each_row_is_measured_on_its_own_voxels(windows):
    rng = np.random.default_rng(len(windows))
    vox, rois, counts = _case(rng)
    rows = [Row(r, f"L{1 + w}", "segment_name", (a + b) // 2, 0.0, (a, b))
            for r in range(len(rois)) for w, (a, b) in enumerate(windows)]
    method = make_method("scalar", np.zeros((2, 2, 2)), None)
    table = level_table(rows, rois, vox, counts, 2.0, method, "s1")
    assert len(table) == len(rows)
    for row in rows:
        got = table[(table["segment"] == rois[row.roi].segment.name) & (table["level"] == row.level)]
        assert len(got) == 1
        a, b = row.window
        mine = vox.value[(vox.roi == row.roi) & (vox.slice_index >= a) & (vox.slice_index <= b)]
        assert got["n_voxels"].iloc[0] == mine.size
        assert got["mean"].iloc[0] == pytest.approx(mine.mean(), rel=1e-12)
        assert got["median"].iloc[0] == pytest.approx(np.median(mine), rel=1e-12)
        assert got["csa_mm2"].iloc[0] == pytest.approx(mine.size * 2.0 / (b - a + 1))
        assert got["n_slices"].iloc[0] == b - a + 1
