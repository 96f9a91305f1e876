"""Benchmark: measuring all ROIs of a 512 x 512 x 60 float32 PDFF case with 18 ROIs.

Prints, from one run on this machine, the median wall time of

* ``measure()`` on in-memory inputs (the whole public pipeline: labelmap to
  segments with a ``{value: name}`` dict, PDFF scale detection, name parsing,
  level planning, one gathering pass, grouped statistics incl. medians),
* (a) one numpy reduction over the same volume (``image.mean()``),
* (b) SimpleITK's ``LabelIntensityStatisticsImageFilter`` on the same arrays,

and the ratios.  Targets (issue #3): measure <= 3x (a) and faster than (b).
Every timed call gets a freshly built SimpleITK image and labelmap (building is
not timed; no ``Segmentation`` or other object is carried between calls), the
three methods alternate inside each repeat, and the ratios are between medians
of the same run.  ``bench_speed.py`` has the file, memory, table and scaling
cases of issue #11.

Two ROI layouts are timed: 18 2-D ROIs (6 muscles x 3 levels, named with their
level, the manual workflow of seed 001) and 6 3-D muscles measured at 3 levels
found from vertebra masks (18 rows).

Run: ``python Testing/benchmarks/bench_measure.py [--repeat 7]``
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ParaspinalFatLib import measure

SHAPE = (60, 512, 512)  # k, j, i
SPACING = (0.78125, 0.78125, 4.0)
LEVEL_SLICES = {"L3/4": 18, "L4/5": 30, "L5/S1": 42}
MUSCLES = {  # name -> (abbr, centre x (i), centre y (j), semi-axes in voxels)
    "multifidus": ("MF", 30, 330, 18, 24),
    "erector_spinae": ("ES", 72, 335, 30, 22),
    "psoas": ("PS", 62, 240, 22, 26),
}


def race(methods, repeat=7):
    """Median wall time (s) of each ``(name, build, run)``; the methods alternate in every repeat.

    ``build()`` makes fresh arguments (not timed); one untimed warm-up call each first.
    """
    for _, build, run in methods:
        run(*build())
    times = {name: [] for name, _, _ in methods}
    for _ in range(repeat):
        for name, build, run in methods:
            args = build()
            gc.collect()
            t0 = time.perf_counter()
            out = run(*args)
            times[name].append(time.perf_counter() - t0)
            del args, out
    return {name: statistics.median(t) for name, t in times.items()}


def build(layout: str):
    """The image array (PDFF 0-100 %), the labelmap array and its ``{value: name}`` dict."""
    rng = np.random.default_rng(1)
    image = rng.normal(40.0, 15.0, SHAPE).astype(np.float32)
    labels = np.zeros(SHAPE, np.uint8)
    jj, ii = np.mgrid[0: SHAPE[1], 0: SHAPE[2]]
    names = {}
    label = 0
    for muscle, (abbr, cx, cy, a, b) in MUSCLES.items():
        for side, sign in (("left", 1), ("right", -1)):
            ell = ((ii - (256 + sign * cx)) / a) ** 2 + ((jj - cy) / b) ** 2 <= 1
            if layout == "2d":
                for level, k in LEVEL_SLICES.items():
                    label += 1
                    labels[k][ell] = label
                    names[label] = f"{abbr}_{side[0].upper()}_{level}"
            else:
                label += 1
                labels[:, ell] = label
                names[label] = f"{muscle}_{side}"
    if layout == "3d":
        body = ((ii - 256) / 30.0) ** 2 + ((jj - 260) / 22.0) ** 2 <= 1
        for name, (k0, k1) in {"L3": (8, 16), "L4": (20, 28), "L5": (32, 40), "S1": (44, 52)}.items():
            label += 1
            labels[k0: k1 + 1][:, body & (labels[k0] == 0)] = label
            names[label] = f"vertebrae_{name}"
    return image, labels, names


def run(layout: str, repeat: int) -> None:
    image, labels, names = build(layout)

    def fresh():
        """New SimpleITK image and labelmap (copies of the arrays) for one call."""
        img = sitk.GetImageFromArray(image.copy())
        img.SetSpacing(SPACING)
        img.SetOrigin((-200.0, -180.0, -100.0))
        label_img = sitk.GetImageFromArray(labels.copy())
        label_img.CopyInformation(img)
        return img, label_img

    def do_measure(img, label_img):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return measure(img, label_img, map_kind="pdff", label_names=dict(names), levels="all")

    def do_sitk(img, label_img):
        f = sitk.LabelIntensityStatisticsImageFilter()
        f.Execute(label_img, img)
        return [f.GetMean(int(v)) for v in f.GetLabels()]

    table = do_measure(*fresh()).levels
    assert len(table) == 18, len(table)
    t = race([("measure", fresh, do_measure),
              ("numpy", fresh, lambda img, label_img: sitk.GetArrayViewFromImage(img).mean()),
              ("sitk", fresh, do_sitk)], repeat)
    t_measure, t_numpy, t_sitk = t["measure"], t["numpy"], t["sitk"]
    print(f"layout {layout}: {len(names)} segments, {int((labels > 0).sum())} labelled voxels, 18 table rows, "
          f"median of {repeat}")
    print(f"  measure()                            {t_measure * 1e3:8.1f} ms")
    print(f"  (a) numpy image.mean()               {t_numpy * 1e3:8.1f} ms   "
          f"ratio measure/(a) = {t_measure / t_numpy:5.2f}  (target <= 3)")
    print(f"  (b) sitk LabelIntensityStatistics    {t_sitk * 1e3:8.1f} ms   "
          f"ratio measure/(b) = {t_measure / t_sitk:5.2f}  (target < 1)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="repeats per method (medians)")
    args = parser.parse_args()
    print(f"volume {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} float32 PDFF (scale detected), numpy {np.__version__}, "
          f"SimpleITK {sitk.__version__}")
    run("2d", args.repeat)
    run("3d", args.repeat)
