"""How close in-memory ``measure_case`` can come to one numpy pass (issue #11): its fixed costs and floors.

The issue asks for at most 3x one numpy pass over the image (``mean()``) on ``bench_speed.py``
case 1 (PDFF 512x512x60 float32, scale detected, 6 muscles and 4 vertebrae). This script times,
alternating inside every repeat and on freshly built arrays for every call:

* ``mean()`` of the image: the reference pass;
* ``max()`` of the labelmap: one pass over it, the least that finding its labels costs;
* the PDFF scale judgement's sample alone (:func:`~ParaspinalFatLib.composition.base.bounded_sample`,
  the 10**6 voxels its percentiles are taken from, gathered by numpy's fastest ``take``);
* ``measure_case`` of the same case shrunk to 64x64x10 (the same muscles, vertebrae and rows on
  1/384 of the voxels): its Python, pandas and per-call costs, which do not grow with the image
  (128x128x20 takes about as long);
* ``measure_case`` of case 1.

The sum of three of them (the small case, the labelmap pass and the sample) is what case 1
would take if every step that grows with the image ran at numpy's own speed and nothing else
changed: an estimate, printed as a ratio to ``mean()`` next to the measured one.

Run: ``python Testing/benchmarks/bench_floors.py [--quick] [--repeat N]``
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from bench_speed import PdffCase, quiet  # noqa: E402

from ParaspinalFatLib import measure_case  # noqa: E402
from ParaspinalFatLib.composition.base import bounded_sample  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="256x256x30 instead of 512x512x60, 3 repeats (smoke test)")
    parser.add_argument("--repeat", type=int, default=None, help="calls of each kind (default 21)")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 21)
    (n, slices), (n_small, slices_small) = ((256, 30), (64, 10)) if args.quick else ((512, 60), (64, 10))
    big, small = PdffCase(n, slices), PdffCase(n_small, slices_small)

    def case_call(case):
        img, lab = case.sitk_pair()
        gc.collect()
        t0 = time.perf_counter()
        quiet(measure_case, img, lab, map_kind="pdff", label_names=dict(case.names))
        return time.perf_counter() - t0

    def array_call(make, work):
        arr = make()
        gc.collect()
        t0 = time.perf_counter()
        work(arr)
        return time.perf_counter() - t0

    kinds = {
        "mean() of the image (the reference)": lambda: array_call(big.image, lambda a: a.mean()),
        "max() of the labelmap (one pass)": lambda: array_call(big.labels, lambda a: a.max()),
        "the judgement's sample (gather only)": lambda: array_call(big.image,
                                                                   lambda a: bounded_sample(a, keep_type=True)),
        f"measure_case, the case at {n_small}x{n_small}x{slices_small}": lambda: case_call(small),
        f"measure_case, {n}x{n}x{slices}": lambda: case_call(big),
    }
    times = {k: [] for k in kinds}
    for it in range(repeat + 1):  # the first round warms up (imports, first-call caches)
        for label, call in kinds.items():
            t = call()
            if it:
                times[label].append(t)
    fast = {k: min(v) for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"in-memory measure_case, PDFF {n}x{n}x{slices} float32 (scale detected, bench_speed case 1): fixed "
          f"costs and floors; fastest / median of {repeat} alternated calls, each on freshly built arrays")
    for label in kinds:
        print(f"    {label:48s}{fast[label] * 1e3:9.2f}{med[label] * 1e3:9.2f} ms")
    names = list(kinds)
    ref, lab_pass, sample, fixed, whole = names
    for what, t in (("fastest", fast), ("median", med)):
        floor = t[fixed] + t[lab_pass] + t[sample]
        print(f"    {what}: measured ratio {t[whole] / t[ref]:.2f}x mean(); fixed costs + the two floors "
              f"{floor * 1e3:.2f} ms = ratio {floor / t[ref]:.2f}x (estimate); fixed costs alone "
              f"{t[fixed] / t[ref]:.2f}x")


if __name__ == "__main__":
    main()
