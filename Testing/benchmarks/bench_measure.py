"""Benchmark: measuring all ROIs of a 512 x 512 x 60 float32 case with 18 ROIs.

Prints, from one run on this machine, the best-of-N wall time of

* ``measure()`` on in-memory inputs (the whole public pipeline: name parsing,
  level planning, one gathering pass, grouped statistics incl. medians),
* (a) one numpy reduction over the same volume (``image.mean()``),
* (b) SimpleITK's ``LabelIntensityStatisticsImageFilter`` on the same arrays,

and the ratios.  Targets (issue #3): measure <= 3x (a) and faster than (b).

Two ROI layouts are timed: 18 2-D ROIs (6 muscles x 3 levels, named with their
level, the manual workflow of seed 001) and 6 3-D muscles measured at 3 levels
found from vertebra masks (18 rows).

Run: ``python Testing/benchmarks/bench_measure.py``
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ParaspinalFatLib import measure  # noqa: E402
from ParaspinalFatLib.geometry import Geometry  # noqa: E402
from ParaspinalFatLib.segmentation import Segment, Segmentation  # noqa: E402

SHAPE = (60, 512, 512)  # k, j, i
SPACING = (0.78125, 0.78125, 4.0)
LEVEL_SLICES = {"L3/4": 18, "L4/5": 30, "L5/S1": 42}
MUSCLES = {  # name -> (abbr, centre x (i), centre y (j), semi-axes in voxels)
    "multifidus": ("MF", 30, 330, 18, 24),
    "erector_spinae": ("ES", 72, 335, 30, 22),
    "psoas": ("PS", 62, 240, 22, 26),
}


def best_of(fn, repeat=7):
    """Best wall time (s) of ``repeat`` calls."""
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def build(layout: str):
    rng = np.random.default_rng(1)
    image = rng.normal(40.0, 15.0, SHAPE).astype(np.float32)
    labels = np.zeros(SHAPE, np.uint8)
    jj, ii = np.mgrid[0: SHAPE[1], 0: SHAPE[2]]
    segments = []
    label = 0
    for muscle, (abbr, cx, cy, a, b) in MUSCLES.items():
        for side, sign in (("left", 1), ("right", -1)):
            ell = ((ii - (256 + sign * cx)) / a) ** 2 + ((jj - cy) / b) ** 2 <= 1
            if layout == "2d":
                for level, k in LEVEL_SLICES.items():
                    label += 1
                    labels[k][ell] = label
                    segments.append(Segment(f"{abbr}_{side[0].upper()}_{level}", 0, label))
            else:
                label += 1
                labels[:, ell] = label
                segments.append(Segment(f"{muscle}_{side}", 0, label))
    if layout == "3d":
        body = ((ii - 256) / 30.0) ** 2 + ((jj - 260) / 22.0) ** 2 <= 1
        for name, (k0, k1) in {"L3": (8, 16), "L4": (20, 28), "L5": (32, 40), "S1": (44, 52)}.items():
            label += 1
            labels[k0: k1 + 1][:, body & (labels[k0] == 0)] = label
            segments.append(Segment(f"vertebrae_{name}", 0, label))
    geometry = Geometry((SHAPE[2], SHAPE[1], SHAPE[0]), SPACING, (-200.0, -180.0, -100.0),
                        (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    img = sitk.GetImageFromArray(image)
    geometry.apply_to_sitk(img)
    seg = Segmentation(labels[np.newaxis], geometry, segments, source=f"benchmark-{layout}")
    return img, image, labels, seg


def run(layout: str) -> None:
    img, image, labels, seg = build(layout)
    label_img = sitk.GetImageFromArray(labels)
    label_img.CopyInformation(img)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = measure(img, seg, map_kind="scalar", levels="all").levels
    assert len(table) == 18, len(table)

    def do_measure():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            measure(img, seg, map_kind="scalar", levels="all")

    def do_sitk():
        f = sitk.LabelIntensityStatisticsImageFilter()
        f.Execute(label_img, img)
        return [f.GetMean(int(v)) for v in f.GetLabels()]

    t_measure = best_of(do_measure)
    t_numpy = best_of(lambda: image.mean())
    t_sitk = best_of(do_sitk, repeat=3)
    print(f"layout {layout}: {len(seg.segments)} segments, {int((labels > 0).sum())} labelled voxels, 18 table rows")
    print(f"  measure()                            {t_measure * 1e3:8.1f} ms")
    print(f"  (a) numpy image.mean()               {t_numpy * 1e3:8.1f} ms   ratio measure/(a) = {t_measure / t_numpy:5.2f}  (target <= 3)")
    print(f"  (b) sitk LabelIntensityStatistics    {t_sitk * 1e3:8.1f} ms   ratio measure/(b) = {t_measure / t_sitk:5.2f}  (target < 1)")


if __name__ == "__main__":
    print(f"volume {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} float32, numpy {np.__version__}, SimpleITK {sitk.__version__}")
    run("2d")
    run("3d")
