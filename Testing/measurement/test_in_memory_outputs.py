"""In-memory hooks of measure(): the class labelmap as an array, markups held in memory.

* ``measure(..., class_labelmap=True)`` returns the array that ``fat_labelmap`` writes
  (oracle: the written file read back), and the phantom's fat voxels (oracle: the
  phantom's truth table, computed from the written voxels).
* ``markups=InMemoryMarkups(...)`` gives the same table as the same points in a
  ``.mrk.json`` file (oracle: the file path), and its level error names it.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from ParaspinalFatLib import make_phantom, measure
from ParaspinalFatLib.errors import LevelError
from ParaspinalFatLib.geometry import Geometry
from ParaspinalFatLib.io.markups import InMemoryMarkups, Markup
from ParaspinalFatLib.io.resample import resample_to_grid
from ParaspinalFatLib.report.case_files import CLASS_LABELS


@pytest.fixture(scope="module")
def phantom3d():
    return make_phantom(mode="3d", tilt_deg=6.0)


def test_class_labelmap_array_is_what_fat_labelmap_writes(phantom3d, tmp_path):
    ph = phantom3d
    plain = measure(ph.image, ph.segmentation)
    assert plain.class_labelmap is None
    res = measure(ph.image, ph.segmentation, class_labelmap=True, fat_labelmap=tmp_path / "classes.nrrd")
    written = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "classes.nrrd")))
    assert res.class_labelmap.dtype == np.uint8 and res.class_labelmap.shape == written.shape
    np.testing.assert_array_equal(res.class_labelmap, written)
    pd.testing.assert_frame_equal(res.levels, plain.levels)
    # the phantom's truth: fat voxels of each ROI on its level slice
    on_grid = resample_to_grid(ph.segmentation, Geometry.from_sitk(ph.image))
    fat = res.class_labelmap == CLASS_LABELS["fat"]
    lean = res.class_labelmap == CLASS_LABELS["lean"]
    for t in ph.truth.itertuples():
        mask = on_grid.mask(t.segment)[t.slice_index]
        assert int((fat[t.slice_index] & mask).sum()) == t.n_fat, (t.segment, t.level)
        assert int((lean[t.slice_index] & mask).sum()) == t.n_voxels - t.n_fat, (t.segment, t.level)
    assert not res.class_labelmap[[k for k in range(fat.shape[0]) if k not in set(ph.truth.slice_index)]].any()


def _markups_json(path, points, lines):
    def markup(mtype, name, cps):
        return {"type": mtype, "name": name, "coordinateSystem": "LPS",
                "controlPoints": [{"label": label, "position": [float(v) for v in xyz]} for label, xyz in cps]}

    path.write_text(json.dumps({"markups": [markup("Fiducial", "points", points)]
                                + [markup("Line", name, cps) for name, cps in lines]}))
    return path


def test_in_memory_markups_give_the_table_of_the_file(tmp_path):
    ph = make_phantom(mode="3d")
    muscles = [s for s in ph.segmentation.segments if not s.name.startswith("vertebrae")]
    seg = ph.segmentation.with_layers(ph.segmentation.layers, ph.segmentation.geometry)
    seg.segments = muscles  # no vertebra masks: the levels come from the markups only
    p34, p45, p5s1 = (np.asarray(ph.disc_points[lv], float) for lv in ("L3/4", "L4/5", "L5/S1"))
    points = [("L3/4", p34), ("L4/5", p45 + [0.0, 0.0, 1.0])]
    line = [("L-1", p5s1 + [0.0, -20.0, 0.0]), ("L-2", p5s1 + [0.0, 20.0, 0.0])]
    path = _markups_json(tmp_path / "levels.mrk.json", points, [("L5/S1", line)])
    memory = InMemoryMarkups((Markup("points", "Fiducial", [p[0] for p in points], [p[1] for p in points]),
                              Markup("L5/S1", "Line", [p[0] for p in line], [p[1] for p in line])),
                             source="markups 'points', 'L5/S1'")
    for plane in ("image", "disc"):
        from_file = measure(ph.image, seg, markups=path, plane=plane, subject="s")
        in_memory = measure(ph.image, seg, markups=memory, plane=plane, subject="s")
        pd.testing.assert_frame_equal(in_memory.levels, from_file.levels)
        assert set(in_memory.levels["level_source"]) == {"markups"}
    truth = ph.truth.set_index(["segment", "level"])
    image_rows = measure(ph.image, seg, markups=memory, subject="s").levels
    for row in image_rows.itertuples():
        assert row.slice_index == truth.loc[(row.segment, row.level), "slice_index"]
        assert row.n_voxels == truth.loc[(row.segment, row.level), "n_voxels"]


def test_level_error_names_the_markups_in_memory():
    ph = make_phantom(mode="3d")
    seg = ph.segmentation.with_layers(ph.segmentation.layers, ph.segmentation.geometry)
    seg.segments = [s for s in seg.segments if not s.name.startswith("vertebrae")]
    memory = InMemoryMarkups((Markup("notes", "Fiducial", ["centre"], [(0.0, 0.0, 0.0)]),),
                             source="markups 'notes'")
    with pytest.warns(Warning), pytest.raises(LevelError, match="the markups 'notes' gave no disc level"):
        measure(ph.image, seg, markups=memory)
