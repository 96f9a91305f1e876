"""Benchmark (issue #12): a whole synthetic study measured and reported, without flattering.

What is timed
-------------
A synthetic cohort of seed 001's size (383 subjects, 30 of them read twice: 413 cases;
IDEAL-IQ-like 256 x 256 x 40 float32 PDFF maps at 1.5 x 1.5 x 4 mm, 18 two-dimensional ROIs
per reading, :func:`ParaspinalFatLib.cohort.synthetic_cohort.make_synthetic_cohort`) is
written ONCE (its time is printed separately, never added to the figures).  Smaller cohorts
are the first N subjects of it (all their readings): manifests ``manifest_<N>.csv`` in the
same folder.  Each timed run is

    run_cohort(manifest, study, workers=W, assemble=write_subject_tables, progress=False)
    write_report(study)

in a FRESH Python process (``bench_cohort.py --child ...``: nothing imported, cached or
warmed up in an earlier run carries over) writing into a NEW EMPTY study folder (no case is
ever reused from an earlier run).  The configurations alternate inside every repeat (order
reversed on every other repeat) and the figures are medians over the repeats.  The input
files are read from the operating system's page cache in every run alike (they were just
written).  A run in which any case fails stops the benchmark (a failed case is a cheap case).

Figures (targets of issue #12 printed next to them):

1. 383 subjects (413 cases), 2 workers: end-to-end wall time of the fresh process (start-up
   and imports included) split into cohort (measuring + study files + subject tables) and
   report (analyses, tables, figures, HTML); target < 60 s.
2. Linearity: seconds per case for 50, 100, 200 and 383 subjects (2 workers) and its ratio to
   the 50-subject figure; target: the ratio does not grow (<= 1.2; below 1 means fixed costs
   such as worker start-up are amortised).
3. Speed-up of 2 workers over 1 (``workers=1`` runs in the process itself, as ``--workers 1``
   does) on the same 383-subject cohort as figure 1 (the issue's cohort; ``--speedup N`` for
   another size), cohort step (measuring, study files, subject tables); target >= 1.7.  The
   figure is the median over the repeats of the PAIRED ratio: the 1-worker and the 2-worker
   run of one repeat follow each other, so a drift of the host's speed between repeats (seen
   here: 20-30 % within minutes) cancels; the ratio of the two medians is printed beside it,
   with the measuring phase alone and end-to-end (with the report, which one process writes).

The time of the cohort step is also split (per-case measuring time from each case's
``done.json``, pool overhead, study files, subject tables), and the cores other processes
kept busy just before and after every run are printed: on a shared machine the figures
(the speed-up above all) are noisy, and the output says so.

Run: ``python Testing/benchmarks/bench_cohort.py [--quick] [--repeat N] [--keep DIR]``
(``--quick``: 6 and 12 subjects at 200 x 136 x 8, for the smoke test).
"""
from __future__ import annotations

# Only the standard library at module level: the worker processes of run_cohort import this
# script (as __mp_main__), and a child run must not find anything preloaded by the parent.
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_T0 = time.perf_counter()  # start of this process's own code (child: after interpreter start-up)
ROOT = Path(__file__).resolve().parents[2]
_MARK = "BENCH_COHORT_JSON "

FULL = {"subjects": 383, "repeated": 30, "sizes": (50, 100, 200, 383), "speedup": 383,
        "shape": (256, 256, 40), "spacing": (1.5, 1.5, 4.0)}
QUICK = {"subjects": 12, "repeated": 2, "sizes": (6, 12), "speedup": 12,
         "shape": (200, 136, 8), "spacing": (1.5, 1.5, 4.0)}
TARGET_TOTAL_S = 60.0
TARGET_LINEAR = 1.2
TARGET_SPEEDUP = 1.7
NOISY = "\n  NOTE: the machine was not idle: the figures (the speed-up above all) are noisy; run again when idle"


# --------------------------------------------------------------------------- child: one timed run
def child(manifest: str, study: str, workers: int) -> None:
    """One timed configuration in this (fresh) process; prints one JSON line of figures."""
    import warnings

    sys.path.insert(0, str(ROOT))
    t_import0 = time.perf_counter()
    from ParaspinalFatLib.cohort.runner import run_cohort
    from ParaspinalFatLib.cohort.subject_tables import write_subject_tables
    from ParaspinalFatLib.report.html_report import write_report
    t_import = time.perf_counter() - t_import0

    assemble_s = []

    def assemble(study_dir, measurements, man, **kwargs):  # kwargs: the pool's submit, as the CLI gets it
        t = time.perf_counter()
        try:
            return write_subject_tables(study_dir, measurements, man, **kwargs)
        finally:
            assemble_s.append(time.perf_counter() - t)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report's small-group notes; they are in the report too
        t = time.perf_counter()
        result = run_cohort(manifest, study, workers=workers, assemble=assemble, progress=False)
        cohort_s = time.perf_counter() - t
        t = time.perf_counter()
        report = write_report(study)
        report_s = time.perf_counter() - t
    end = time.perf_counter()
    case_s = []
    for done in sorted(Path(study, "cases").glob("*/done.json")):
        with open(done, encoding="utf-8") as fh:
            case_s.append(float(json.load(fh)["seconds"]))
    out = {
        "workers": workers, "n_cases": result.n_cases, "n_measured": result.n_measured,
        "n_reused": result.n_reused, "n_failed": result.n_failed, "n_warnings": result.n_warnings,
        "n_subjects": int(result.measurements["subject"].nunique()) if len(result.measurements) else 0,
        "import_s": t_import, "own_start_s": t_import0 - _T0, "cohort_s": cohort_s,
        "cohort_elapsed_s": result.elapsed_s, "assemble_s": sum(assemble_s), "report_s": report_s,
        "child_s": end - _T0, "case_s_sum": sum(case_s), "case_s_median": statistics.median(case_s) if case_s else 0.0,
        "n_done": len(case_s), "assembled": sorted((result.assembled or {}).keys()),
        "n_figures": len(report.figures), "n_tables": len(report.tables), "html": report.html.is_file(),
    }
    print(_MARK + json.dumps(out), flush=True)


# --------------------------------------------------------------------------- parent
def _busy_jiffies() -> int:
    """System-wide busy CPU time (clock ticks) from /proc/stat (0 when not available)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal


def background_cores(seconds: float) -> float:
    """Cores other processes keep busy: system-wide busy CPU over ``seconds`` while this benchmark waits."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    b0 = _busy_jiffies()
    t = time.perf_counter()
    time.sleep(seconds)
    b1 = _busy_jiffies()
    return (b1 - b0) / tick / (time.perf_counter() - t) if b0 else float("nan")


def timed_run(manifest: Path, workers: int, work: Path, tag: str, keep: bool, idle_s: float):
    """Run one configuration in a fresh process into a new empty study folder; its figures.

    The machine's background load (other processes) is sampled for ``idle_s`` seconds just
    before and just after the run (not timed; the larger is kept).
    """
    study = Path(tempfile.mkdtemp(prefix=f"study_{tag}_w{workers}_", dir=work))
    assert not any(study.iterdir())
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(manifest), str(study), str(workers)]
    before = background_cores(idle_s)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    wall = time.perf_counter() - t
    background = max(before, background_cores(idle_s))
    if proc.returncode != 0:
        raise SystemExit(f"bench_cohort: the run {tag} with {workers} worker(s) failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith(_MARK)]
    if not line:
        raise SystemExit(f"bench_cohort: the run {tag} printed no figures:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    fig = json.loads(line[-1][len(_MARK):])
    if fig["n_failed"] or fig["n_reused"] or fig["n_measured"] != fig["n_cases"] or fig["n_done"] != fig["n_cases"] \
            or not fig["html"]:
        raise SystemExit(f"bench_cohort: the run {tag} with {workers} worker(s) did not measure every case from "
                         f"scratch (cases {fig['n_cases']}, measured {fig['n_measured']}, reused {fig['n_reused']}, "
                         f"failed {fig['n_failed']}; see {study}/errors.csv)")
    fig["wall_s"] = wall
    fig["startup_s"] = wall - fig["cohort_s"] - fig["report_s"]  # interpreter start-up, imports, exit
    fig["background_cores"] = background
    if not keep:
        shutil.rmtree(study, ignore_errors=True)
    return fig


def subset_manifests(cohort_folder: Path, manifest: Path, sizes):
    """``manifest_<N>.csv`` with every reading of the first N subjects (same folder: same relative paths)."""
    import pandas as pd

    table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    subjects = list(dict.fromkeys(table["subject"]))
    out = {}
    for n in sizes:
        if n > len(subjects):
            raise SystemExit(f"bench_cohort: size {n} > the {len(subjects)} subjects generated")
        part = table[table["subject"].isin(set(subjects[:n]))]
        path = cohort_folder / f"manifest_{n}.csv"
        part.to_csv(path, index=False)
        out[n] = (path, len(part))
    return out


def med(runs, key):
    """Median of one figure over the repeats of a configuration."""
    return statistics.median(r[key] for r in runs)


def main(argv=None) -> int:
    """Generate the cohort, time every configuration in fresh processes, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--repeat", type=int, default=1, help="repeats of every configuration (medians)")
    parser.add_argument("--speedup", type=int, metavar="N",
                        help="subjects of the 1-worker vs 2-worker comparison (default 383; --quick 12)")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep the cohort and study folders")
    parser.add_argument("--child", nargs=3, metavar=("MANIFEST", "STUDY", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    p = QUICK if args.quick else FULL
    sizes, big, speed_n = tuple(p["sizes"]), max(p["sizes"]), args.speedup or p["speedup"]
    if not 3 <= speed_n <= p["subjects"]:
        parser.error(f"--speedup must be between 3 and {p['subjects']}")

    sys.path.insert(0, str(ROOT))
    from ParaspinalFatLib.cohort.synthetic_cohort import make_synthetic_cohort

    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="bench_cohort_"))
    try:
        t = time.perf_counter()
        cohort = make_synthetic_cohort(work / "cohort", p["subjects"], n_repeated=p["repeated"],
                                       shape=p["shape"], spacing=p["spacing"])
        gen_s = time.perf_counter() - t
        manifests = subset_manifests(cohort.folder, cohort.manifest, sorted(set(sizes) | {speed_n}))
        with open(cohort.manifest, encoding="utf-8") as fh:
            n_rows_all = sum(1 for line in fh if line.strip()) - 1

        # the 1- and 2-worker runs of the speed-up next to each other (a pair shares the host's speed)
        configs = [(speed_n, 1), (speed_n, 2)]
        configs += [(n, 2) for n in sorted(set(sizes) - {speed_n}, reverse=True)]
        runs = {c: [] for c in configs}
        try:
            load0 = os.getloadavg()[0]
        except OSError:
            load0 = float("nan")
        idle_s = 0.5 if args.quick else 2.0
        t_all = time.perf_counter()
        for r in range(args.repeat):
            for n, w in (configs if r % 2 == 0 else configs[::-1]):
                runs[(n, w)].append(timed_run(manifests[n][0], w, work, f"n{n}", bool(args.keep), idle_s))
        bench_s = time.perf_counter() - t_all

        shape = "x".join(str(s) for s in p["shape"])
        spacing = " x ".join(f"{s:g}" for s in p["spacing"])
        n_cases_big = manifests[big][1]
        print(f"Cohort benchmark (issue #12){' QUICK' if args.quick else ''}: Python {platform.python_version()}, "
              f"{os.cpu_count()} cores, repeat {args.repeat} (medians)")
        print(f"  synthetic cohort: {p['subjects']} subjects, {p['repeated']} read twice = "
              f"{n_rows_all} cases; {shape} float32 PDFF at "
              f"{spacing} mm, 18 ROIs per reading")
        print(f"  generation (once, not in any figure below): {gen_s:.1f} s")
        print("  every timed run: a fresh process (start-up + imports counted), a new empty study folder, "
              "configurations alternating (order reversed on every other repeat)")
        other = [f["background_cores"] for rs in runs.values() for f in rs]
        print(f"  machine load: 1-min load average {load0:.2f} before the runs; other processes kept "
              f"{statistics.mean(other):.2f} core(s) busy on average ({min(other):.2f}-{max(other):.2f}) in the "
              f"{idle_s:g} s before and after each run ({bench_s:.0f} s of runs){NOISY if max(other) > 0.2 else ''}")

        b = runs[(big, 2)]
        print(f"\n1. {big} subjects ({n_cases_big} cases), 2 workers, from scratch")
        rows = [("cohort: measure + study files + subject tables", med(b, "cohort_s")),
                ("  of which subject tables (csv, xlsx, sav)", med(b, "assemble_s")),
                ("report: analyses, tables, figures, HTML", med(b, "report_s")),
                ("process start-up, imports, exit", med(b, "startup_s"))]
        for label, v in rows:
            print(f"    {label:<48s} {v:7.1f} s")
        total = med(b, "wall_s")
        print(f"    {'end-to-end (cohort + report, fresh process)':<48s} {total:7.1f} s   "
              f"ratio to target {total / TARGET_TOTAL_S:.2f} (target < {TARGET_TOTAL_S:.0f} s: ratio < 1)")
        if args.repeat > 1:
            print(f"    {'  end-to-end per repeat':<48s} " + ", ".join(f"{f['wall_s']:.1f}" for f in b) + " s")

        print(f"\n2. linearity, 2 workers: seconds per case (cohort step; end-to-end incl. report and start-up)")
        print(f"    {'subjects':>8s} {'cases':>6s} {'cohort s':>9s} {'s/case':>8s} {'ratio':>6s} "
              f"{'end-to-end s':>13s} {'s/case':>8s} {'ratio':>6s}")
        base_n = min(sizes)
        base = med(runs[(base_n, 2)], "cohort_s") / manifests[base_n][1]
        base_e = med(runs[(base_n, 2)], "wall_s") / manifests[base_n][1]
        worst = 0.0
        for n in sorted(sizes):
            rs, nc = runs[(n, 2)], manifests[n][1]
            c, e = med(rs, "cohort_s"), med(rs, "wall_s")
            worst = max(worst, (c / nc) / base)
            print(f"    {n:8d} {nc:6d} {c:9.2f} {c / nc:8.4f} {(c / nc) / base:6.2f} {e:13.2f} {e / nc:8.4f} "
                  f"{(e / nc) / base_e:6.2f}")
        print(f"    ratio = s/case / s/case at {base_n} subjects; largest cohort-step ratio {worst:.2f} "
              f"(target <= {TARGET_LINEAR}: time grows linearly with cases)")

        one, two = runs[(speed_n, 1)], runs[(speed_n, 2)]
        c1, c2 = med(one, "cohort_s"), med(two, "cohort_s")
        e1, e2 = med(one, "wall_s"), med(two, "wall_s")
        print(f"\n3. workers, {speed_n} subjects ({manifests[speed_n][1]} cases)")
        paired = [a["cohort_s"] / b2["cohort_s"] for a, b2 in zip(one, two)]
        print(f"    cohort step: 1 worker {c1:6.2f} s, 2 workers {c2:6.2f} s (medians): ratio of the medians "
              f"{c1 / c2:.2f}")
        print(f"    speed-up, median of the paired ratios (the 1- and 2-worker runs of one repeat, run one after "
              f"the other): {statistics.median(paired):.2f} (target >= {TARGET_SPEEDUP})")
        if args.repeat > 1:
            print("    paired ratio per repeat: " + ", ".join(f"{r:.2f}" for r in paired)
                  + " (the host's speed drifts between repeats; a pair shares it)")
        m1, m2 = med(one, "cohort_elapsed_s"), med(two, "cohort_elapsed_s")
        print(f"    measuring phase alone (run_cohort before the study files and subject tables): 1 worker {m1:6.2f} s, "
              f"2 workers {m2:6.2f} s: ratio {m1 / m2:.2f}")
        print(f"    end-to-end (incl. report, start-up): 1 worker {e1:6.2f} s, 2 workers {e2:6.2f} s: "
              f"ratio {e1 / e2:.2f}")

        print("\n4. where the cohort time goes (medians)")
        print(f"    {'run':<16s} {'cases':>5s} {'s/case in worker':>16s} {'sum/workers':>11s} {'pool+collect':>12s} "
              f"{'study files':>11s} {'subj tables':>11s} {'report':>7s} {'start-up':>8s} {'busy other':>10s}")
        for (n, w) in sorted(configs, key=lambda c: (c[1], c[0])):
            rs = runs[(n, w)]
            measure_wall = med(rs, "cohort_elapsed_s")
            per_worker = med(rs, "case_s_sum") / w
            files = med(rs, "cohort_s") - measure_wall - med(rs, "assemble_s")
            print(f"    {f'{n} subj, {w} wkr':<16s} {manifests[n][1]:5d} {med(rs, 'case_s_median'):16.4f} "
                  f"{per_worker:11.2f} {measure_wall - per_worker:12.2f} {files:11.2f} {med(rs, 'assemble_s'):11.2f} "
                  f"{med(rs, 'report_s'):7.2f} {med(rs, 'startup_s'):8.2f} {med(rs, 'background_cores'):10.2f}")
        print("    s/case in worker: median time of one case (read, measure, write its folder; done.json); "
              "sum/workers: their sum / workers;\n    pool+collect: the rest of run_cohort's measuring phase "
              "(manifest, fingerprints, worker start-up, waiting, measurements table);\n    busy other: cores other "
              "processes kept busy just before or after the run (0 = idle machine)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
