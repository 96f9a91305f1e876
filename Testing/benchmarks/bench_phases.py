"""Where the time of one in-memory ``measure_case`` goes (issue #11): the phases, per segment count.

The README's per-phase table comes from this script. Each call gets a freshly built case: the
PDFF phantom of ``bench_speed.py`` case 1, 512x512x60 float32, scale detected, as new SimpleITK
images with a plain ``{value: name}`` dict. Every phase is timed around the library function
that does it, with a wrapper put in place for this script only. The figures are the fastest
of the repeats (phases are short, and the host's noise only ever adds time) and the medians.
The calls alternate between the segment counts. "rest" is the total minus the timed phases.
The last column is the ratio of each phase's growth to the total growth (per added segment).

Run: ``python Testing/benchmarks/bench_phases.py [--quick] [--repeat N] [--segments muscles,6,200]``
"""
from __future__ import annotations

import argparse
import functools
import gc
import importlib
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from bench_speed import PdffCase, quiet  # noqa: E402

from ParaspinalFatLib import measure_case  # noqa: E402

#: (what the phase does, module, function): the functions ``measure`` calls, in order
PHASES = (
    ("reading the image arrays", "ParaspinalFatLib.measurement.pipeline", "_read_pair"),
    ("reading the labelmap", "ParaspinalFatLib.measurement.pipeline", "_read_segmentation"),
    ("judging the PDFF scale (method)", "ParaspinalFatLib.measurement.pipeline", "make_method"),
    ("choosing the ROIs", "ParaspinalFatLib.measurement.pipeline", "select_rois"),
    ("finding the level landmarks", "ParaspinalFatLib.anatomy.landmarks", "find_landmarks"),
    ("checking the sides", "ParaspinalFatLib.anatomy.sides", "check_sides"),
    ("gathering the ROI voxels", "ParaspinalFatLib.measurement.pipeline", "gather_roi_voxels"),
    ("planning the rows", "ParaspinalFatLib.measurement.pipeline", "plan_rows"),
    ("the per-level table", "ParaspinalFatLib.measurement.pipeline", "level_table"),
    ("the landmark table", "ParaspinalFatLib.measurement.pipeline", "_landmark_table"),
    ("the bone table", "ParaspinalFatLib.measurement.pipeline", "_bone"),
)


def timed(spent, label, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - t0
    return wrapper


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="128x128x20 and 3 repeats (smoke test)")
    parser.add_argument("--repeat", type=int, default=None, help="calls per segment count (default 21)")
    parser.add_argument("--segments", default="muscles,6,200",
                        help="segment counts, e.g. 6,50,200; 'muscles': the 6 named muscles of bench_speed case 1")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 21)
    n, slices = (128, 20) if args.quick else (512, 60)
    parts = [p.strip() for p in args.segments.split(",") if p.strip()]
    count = {p: 6 if p == "muscles" else int(p) for p in parts}

    spent = defaultdict(float)
    for label, module, name in PHASES:  # wrappers in place for this process only
        mod = importlib.import_module(module)
        setattr(mod, name, timed(spent, label, getattr(mod, name)))
    cases = {p: PdffCase(n, slices, None if p == "muscles" else count[p]) for p in parts}
    runs = {p: defaultdict(list) for p in parts}
    for it in range(repeat + 1):  # the first round warms up (imports, first-call caches)
        for p in parts:
            img, lab = cases[p].sitk_pair()
            gc.collect()
            spent.clear()
            t0 = time.perf_counter()
            quiet(measure_case, img, lab, map_kind="pdff", label_names=dict(cases[p].names))
            total = time.perf_counter() - t0
            if it:
                for label, _, _ in PHASES:
                    runs[p][label].append(spent[label])
                runs[p]["rest"].append(total - sum(spent[label] for label, _, _ in PHASES))
                runs[p]["total"].append(total)
            del img, lab

    print(f"in-memory measure_case, PDFF {n}x{n}x{slices} float32 (scale detected): the 6 named muscles "
          f"(bench_speed case 1) and the same muscle voxels cut into N segments; fastest / median of {repeat} "
          f"calls, ms; growth from the first to the last column")
    head = "".join(f"{p if p == 'muscles' else p + ' seg.':>9s} fastest{'median':>8s}" for p in parts)
    print(f"    {'phase':34s}{head}" + ("   share of the growth" if len(parts) > 1 else ""))
    growth = min(runs[parts[-1]]["total"]) - min(runs[parts[0]]["total"])
    for label in [lb for lb, _, _ in PHASES] + ["rest", "total"]:
        cells = "".join(f"{min(runs[p][label]) * 1e3:17.2f}{statistics.median(runs[p][label]) * 1e3:8.2f}"
                        for p in parts)
        share = ""
        if len(parts) > 1 and label != "total" and growth > 0:
            share = f"   {(min(runs[parts[-1]][label]) - min(runs[parts[0]][label])) / growth:6.2f}"
        print(f"    {label:34s}{cells}{share}")
    if len(parts) > 1:
        print(f"    ratio of the fastest totals, {parts[-1]} / {parts[0]} segments: "
              f"{min(runs[parts[-1]]['total']) / min(runs[parts[0]]['total']):.2f}; "
              f"{growth / max(count[parts[-1]] - count[parts[0]], 1) * 1e6:.1f} us per added segment")


if __name__ == "__main__":
    main()
