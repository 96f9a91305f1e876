"""Benchmark of the DeLong AUC variance of ``ParaspinalFatLib.stats.roc_analysis`` (a script).

Run from the project root::

    python Testing/benchmarks/bench_roc.py

1. n = 10^6 scores: wall time of AUC + DeLong CI (Sun & Xu 2014 mid-rank algorithm),
   and of the complete ``roc()`` call (curve, Youden point, Wilson CIs).  Target < 2 s.
2. n = 2*10^4 scores: the fast algorithm against the naive O(n_pos * n_neg) placement-value
   formula of DeLong et al. (1988), side by side, with the speed ratio (target >= 100x),
   after checking that both give the same AUC and variance.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

try:
    from ParaspinalFatLib.stats import roc
    from ParaspinalFatLib.stats.roc_analysis import placements
except ImportError:  # run as a plain script from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from ParaspinalFatLib.stats import roc
    from ParaspinalFatLib.stats.roc_analysis import placements


def fast_auc_var(cases: np.ndarray, controls: np.ndarray):
    """AUC and DeLong variance by the library's O(n log n) mid-rank algorithm."""
    pl = placements(cases, controls)
    var = np.var(pl.v10, ddof=1) / cases.size + np.var(pl.v01, ddof=1) / controls.size
    return pl.auc, float(var)


def naive_auc_var(cases: np.ndarray, controls: np.ndarray, block: int = 1000):
    """Placement values from all n_pos * n_neg pairs (vectorised in blocks of cases)."""
    m, n = cases.size, controls.size
    v10 = np.empty(m)
    v01 = np.zeros(n)
    for start in range(0, m, block):
        c = cases[start:start + block, None]
        psi = (c > controls[None, :]) + 0.5 * (c == controls[None, :])
        v10[start:start + block] = psi.mean(axis=1)
        v01 += psi.sum(axis=0)
    v01 /= m
    auc = float(v10.mean())
    var = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n
    return auc, float(var)


def best_time(func, repeats: int):
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - t0)
    return best, out


def make_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.uniform(size=n) < 0.4
    score = rng.normal(size=n) + 0.8 * y
    score[: n // 10] = np.round(score[: n // 10], 1)  # some ties
    return y.astype(np.int8), score


def main() -> int:
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}")
    ok = True

    n = 10 ** 6
    y, s = make_data(n, 1)
    cases, controls = s[y == 1], s[y == 0]
    t_core, (auc, var) = best_time(lambda: fast_auc_var(cases, controls), 3)
    t_full, res = best_time(lambda: roc(dv=y, score=s), 3)
    print(f"\n[1] n = {n:,} ({res.n_pos:,} cases, {res.n_neg:,} controls)")
    print(f"    AUC + DeLong SE/CI (mid-rank): {t_core:7.3f} s   AUC {auc:.6f}  SE {np.sqrt(var):.6g}")
    print(f"    full roc() incl. curve/Youden: {t_full:7.3f} s   95% CI {res.ci_low:.6f}-{res.ci_high:.6f}")
    target1 = t_full < 2.0
    ok &= target1
    print(f"    target < 2 s: {'PASS' if target1 else 'FAIL'}")

    n = 2 * 10 ** 4
    y, s = make_data(n, 2)
    cases, controls = s[y == 1], s[y == 0]
    t_fast, (auc_f, var_f) = best_time(lambda: fast_auc_var(cases, controls), 20)
    t_naive, (auc_n, var_n) = best_time(lambda: naive_auc_var(cases, controls), 2)
    same = abs(auc_f - auc_n) <= 1e-12 and abs(var_f - var_n) <= 1e-10 * var_n
    ratio = t_naive / t_fast
    print(f"\n[2] n = {n:,} ({cases.size:,} cases x {controls.size:,} controls = "
          f"{cases.size * controls.size:,} pairs)")
    print(f"    {'method':<28}{'time (s)':>12}{'AUC':>16}{'variance':>20}")
    print(f"    {'fast mid-rank O(n log n)':<28}{t_fast:>12.5f}{auc_f:>16.12f}{var_f:>20.12e}")
    print(f"    {'naive pairwise O(n^2)':<28}{t_naive:>12.5f}{auc_n:>16.12f}{var_n:>20.12e}")
    print(f"    |dAUC| = {abs(auc_f - auc_n):.2e}, relative dVar = {abs(var_f - var_n) / var_n:.2e}: "
          f"{'identical' if same else 'MISMATCH'}")
    print(f"    speed ratio naive/fast: {ratio:,.0f}x   target >= 100x: "
          f"{'PASS' if ratio >= 100 else 'FAIL'}")
    ok &= same and ratio >= 100
    print(f"\nall targets met: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
