"""Benchmark: peak memory of measuring a 512 x 512 x 400 float32 image with a uint8 labelmap.

Target (issue #9): the measurement peaks below 3x the image's size in memory.

Each measurement runs in a fresh Python process (nothing cached between runs). The
process imports everything first, records its resident size (VmRSS), runs the case,
and then reads its peak resident size (VmHWM, Linux). The figure reported is

    (peak - resident size after imports) / image bytes

As a reference, measured the same way in its own process: SimpleITK reading the image
file alone. This is the floor of any file-based measurement (about 1x).

The case: a PDFF map (0-100 %) with six 3-D muscles and four vertebrae (L3, L4, L5,
S1) in a uint8 labelmap. Both files are uncompressed NRRD, built fresh in a temporary
folder. Levels L3/4-L5/S1 come from the vertebrae.

Run: ``python Testing/benchmarks/bench_memory.py [--slices 400]``
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[2]
NAMES = {1: "multifidus_left", 2: "multifidus_right", 3: "erector_spinae_left",
         4: "erector_spinae_right", 5: "psoas_left", 6: "psoas_right",
         7: "vertebrae_L3", 8: "vertebrae_L4", 9: "vertebrae_L5", 10: "vertebrae_S1"}

CHILD = r"""
import json, sys, warnings
sys.path.insert(0, {root!r})
import numpy, pandas, scipy.ndimage, SimpleITK as sitk
import ParaspinalFatLib.measurement.pipeline as pipeline
from ParaspinalFatLib import measure_case

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
before = status("VmRSS")
what = {what!r}
if what == "measure":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = measure_case({image!r}, {labels!r}, map_kind="pdff", pdff_scale="0-100",
                             label_names={names!r})
    rows = len(table)
else:
    img = sitk.ReadImage({image!r})
    arr = sitk.GetArrayViewFromImage(img)
    rows = int(arr.shape[0])
print(json.dumps({{"before": before, "peak": status("VmHWM"), "rows": rows}}))
"""


def build(folder: Path, n_slices: int) -> tuple:
    """Write the image and labelmap; return their paths and the image size in bytes."""
    shape = (n_slices, 512, 512)
    rng = np.random.default_rng(3)
    image = np.empty(shape, np.float32)
    labels = np.zeros(shape, np.uint8)
    jj, ii = np.mgrid[0:512, 0:512]
    body = ((ii - 256) / 220.0) ** 2 + ((jj - 256) / 180.0) ** 2 <= 1
    for k in range(n_slices):  # slice by slice: the builder itself stays small
        sl = rng.normal(8.0, 3.0, (512, 512)).astype(np.float32)
        sl[~body] = 0.0
        sl[body & (((jj - 256) / 180.0) ** 2 + ((ii - 256) / 220.0) ** 2 > 0.8)] = 90.0  # fat rim
        image[k] = sl
    label = 0
    for cx, cy, a, b in ((30, 330, 18, 24), (72, 335, 30, 22), (62, 240, 22, 26)):
        for sign in (1, -1):
            label += 1
            ell = ((ii - (256 + sign * cx)) / a) ** 2 + ((jj - cy) / b) ** 2 <= 1
            labels[:, ell] = label
    vert = ((ii - 256) / 30.0) ** 2 + ((jj - 260) / 22.0) ** 2 <= 1
    height = n_slices // 5
    for v in range(4):
        label += 1
        k0 = (v + 1) * height - height // 3
        labels[k0: k0 + 2 * height // 3][:, vert] = label
    paths = {}
    for name, arr in (("image", image), ("labels", labels)):
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing((0.78125, 0.78125, 1.0))
        paths[name] = str(folder / f"{name}.nrrd")
        sitk.WriteImage(img, paths[name], False)
    return paths["image"], paths["labels"], image.nbytes


def child(what: str, image: str, labels: str) -> dict:
    code = CHILD.format(root=str(ROOT), what=what, image=image, labels=labels, names=NAMES)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image, labels, nbytes = build(Path(tmp), args.slices)
        print(f"image 512x512x{args.slices} float32 = {nbytes / 2**20:.0f} MiB; uint8 labelmap; "
              f"numpy {np.__version__}, SimpleITK {sitk.__version__}")
        results = {"measure": [], "read": []}
        for _ in range(args.repeat):  # alternate the two, each in a fresh process
            for what in ("read", "measure"):
                r = child(what, image, labels)
                results[what].append((r["peak"] - r["before"]) / nbytes)
                if what == "measure":
                    assert r["rows"] == 18, r
        read, meas = min(results["read"]), min(results["measure"])
        print(f"  SimpleITK reads the image (reference)   peak - baseline = {read:4.2f} x image")
        print(f"  measure_case from the two files         peak - baseline = {meas:4.2f} x image   "
              f"(ratio to the target 3x: {meas / 3:4.2f}; target <= 1)")
        print(f"  memory ratio measure/read = {meas / read:4.2f}")


if __name__ == "__main__":
    main()
