"""A synthetic study drawn from seed 001's published group statistics (Table 2).

:func:`make_synthetic_cohort` writes, for N subjects, a PDFF map and a Slicer
``.seg.nrrd`` with 18 two-dimensional ROIs (multifidus MF, erector spinae ES and
psoas PS, left and right, at L3/4, L4/5 and L5/S1), a ``manifest.csv`` for
``paraspinalfat cohort`` and a ``truth.csv`` with every value the images were
made from.  It is what ``paraspinalfat demo`` measures and reports.

How the values are drawn
------------------------
* Groups (vBMD normal / osteopenia / osteoporosis) are allocated to the 191 / 129
  / 63 proportions of the paper by the largest-remainder rule, every group getting
  at least ``min(3, N // 3)`` subjects; N = 383 reproduces the paper's sizes
  exactly.  Sex is allocated the same way within each group (113/78, 64/65,
  13/50 M/F), then the order of the subjects is shuffled.
* Age, BMI, vBMD and the six muscle variables (subject value = mean over the
  three levels and both sides, as in the paper) are drawn per group from a
  normal distribution truncated to a plausible range (:data:`VALUE_RANGES`;
  vBMD to its ISCD group's range, so that ``vbmd_category(vbmd)`` gives back the
  drawn group).  The parent normal's mean and SD are solved for so that the
  *truncated* distribution has exactly the published mean and SD (moment
  matching): the cohort's group means and SDs then differ from Table 2 by
  sampling error only.  Within a group the variables are independent; the
  correlations of the muscle variables with vBMD, age and sex in the synthetic
  cohort therefore come from the group structure alone.
* Age is rounded to whole years, BMI and vBMD to 0.1 (the clinical columns are
  stored as a clinician would type them).
* Per level and side, a muscle value is the subject value times ``1 + d`` where
  the six ``d`` are drawn uniformly in +-3 % and then centred on zero, so the
  mean over the three levels and both sides equals the subject value exactly
  (each level/side value lies within +-6 % of it).

How the images are made
-----------------------
* One slice per level, L3/4 cranial (k = 2, LPS +z is superior), L5/S1 at
  k = 0.  With ``shape[2] > 3`` the level slices lie at 5/6, 1/2 and 1/6 of the
  stack (rounded) and every other slice repeats the nearest level slice's
  picture, without ROIs.  Identity direction, in-plane centre at LPS x = y = 0.
* Every ROI is an ellipse (aspect ratios of :data:`MUSCLE_SHAPES`) made of the
  ``round(CSA / pixel area)`` voxels of smallest normalised elliptical distance
  from its centre, so the voxel area equals the drawn CSA to within half a pixel
  (``|measured - drawn| <= pixel area / 2``).
* The PDFF inside an ROI is a pattern of lean voxels (about ``min(PDFF / 2, 4) %``
  +- a little) and fat voxels (evenly spread over 60-95 %, so >= 50 %), their
  number chosen from the PDFF and placed preferably at the muscle's periphery;
  the lean level is adjusted so that the ROI mean equals the drawn PDFF exactly
  (in float64; within float32 rounding, ~1e-6 %, as stored).
* A rim of fascia (8 % of the larger semi-axis + 3 voxels wide: room for the
  second reading; PDFF :data:`RIM_PDFF_FACTOR` x the muscle's PDFF, at most
  90 %) surrounds each muscle, a subcutaneous fat ring (~90 %) the body
  (so the PDFF scale is detectable), and the rest of the body is 0 %.
* The layout is scaled per subject by the muscle sizes (MF next to the midline,
  ES lateral to it, PS anterior); muscles, rims and room for the second
  reading never overlap.  A grid too small for a subject's muscles is refused
  with :class:`~ParaspinalFatLib.errors.InputError`; the default grid (300 x 204
  mm at 1.5 mm) holds every size the generator can draw.
* Repeated readings: for ``n_repeated`` subjects (chosen at random) a second
  session's segmentation re-draws every ROI on the same image: both semi-axes
  scaled by ``1 + c + e`` (c ~ N(0, 3 %) shared by the six ROIs of a muscle,
  e ~ U(+-2 %) per ROI and axis, the total clipped to +-8 %) and the centre moved
  by up to one voxel per axis.  The larger or smaller ROI takes in fascia or
  leaves out the fat-rich periphery, so both CSA and PDFF change a little:
  intra-observer ICCs come out high but below 1 (about 0.93-0.99 with 30
  repeated subjects; seed 001 Table 1: 0.83-0.97).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = [
    "DEFAULT_SHAPE", "DEFAULT_SPACING", "GROUPS", "LEVELS", "MUSCLE_SHAPES", "RIM_PDFF_FACTOR", "SEED001_TABLE2", "VALUE_RANGES",
    "SyntheticCohort", "draw_subjects", "make_synthetic_cohort",
]

#: vBMD groups (ISCD labels of :func:`ParaspinalFatLib.stats.vbmd_category`), in Table 2's order
GROUPS: Tuple[str, ...] = ("normal", "osteopenia", "osteoporosis")
#: disc levels of the ROIs, cranial to caudal
LEVELS: Tuple[str, ...] = ("L3/4", "L4/5", "L5/S1")
_LEVEL_TAGS = ("L3_4", "L4_5", "L5_S1")  # level spelling of the subject variables (cohort.variables)
_SIDES = ("left", "right")
_SIDE_ABBR = {"left": "L", "right": "R"}
_SIDE_SIGN = {"left": 1.0, "right": -1.0}  # LPS: +x is the patient's left

# Seed 001 (/work/shared/seeds/001_b7a8066549629e66.txt), Table 2 as printed:
#   Table 2  The clinical characteristics and paraspinal muscle properties of the patients in the
#   normal bone density, osteopenia, and osteoporosis groups
#                     Normal (N = 191)  Osteopenia (N = 129)  Osteoporosis (N = 63)  All (N = 383)    p
#   Sex Male/ Female  N = 113/78        N = 64/65             N = 13/50              N = 190/193
#   Age (years)       45.37 ± 9.89      55.40 ± 7.96          63.25 ± 5.93           51.69 ± 11.06  < 0.001**
#   BMI (kg/m2)       24.56 ± 2.72      24.51 ± 3.36          25.37 ± 4.18           24.68 ± 3.23   0.172
#   vBMD (mg/cm3)     154.46 ± 21.43    101.98 ± 11.39        65.06 ± 13.07          122.08 ± 38.69 < 0.001**
#   CSA (mm2) MF      682.49 ± 121.58   656.40 ± 142.93       607.01 ± 116.38        661.29 ± 130.82 < 0.001**
#             ES      1131.03 ± 271.63  1046.78 ± 253.80      932.20 ± 246.78        1069.95 ± 270.82 < 0.001**
#             PS      1064.89 ± 314.91  904.97 ± 309.13       646.12 ± 234.48        942.14 ± 335.74 < 0.001**
#   PDFF (%)  MF      14.66 ± 6.45      18.20 ± 7.87          25.44 ± 11.23          17.63 ± 8.74   < 0.001**
#             ES      16.02 ± 7.02      18.69 ± 7.27          23.36 ± 9.34           18.13 ± 7.95   < 0.001**
#             PS      5.25 ± 1.98       5.71 ± 2.00           7.30 ± 2.61            5.74 ± 2.21    < 0.001**
# The muscle values are per subject the mean over L3/4, L4/5, L5/S1 and both sides (Methods).
_TABLE2 = {
    "normal": {
        "n": 191, "male": 113, "female": 78,
        "age": (45.37, 9.89), "bmi": (24.56, 2.72), "vbmd": (154.46, 21.43),
        "mf_csa": (682.49, 121.58), "es_csa": (1131.03, 271.63), "ps_csa": (1064.89, 314.91),
        "mf_pdff": (14.66, 6.45), "es_pdff": (16.02, 7.02), "ps_pdff": (5.25, 1.98),
    },
    "osteopenia": {
        "n": 129, "male": 64, "female": 65,
        "age": (55.40, 7.96), "bmi": (24.51, 3.36), "vbmd": (101.98, 11.39),
        "mf_csa": (656.40, 142.93), "es_csa": (1046.78, 253.80), "ps_csa": (904.97, 309.13),
        "mf_pdff": (18.20, 7.87), "es_pdff": (18.69, 7.27), "ps_pdff": (5.71, 2.00),
    },
    "osteoporosis": {
        "n": 63, "male": 13, "female": 50,
        "age": (63.25, 5.93), "bmi": (25.37, 4.18), "vbmd": (65.06, 13.07),
        "mf_csa": (607.01, 116.38), "es_csa": (932.20, 246.78), "ps_csa": (646.12, 234.48),
        "mf_pdff": (25.44, 11.23), "es_pdff": (23.36, 9.34), "ps_pdff": (7.30, 2.61),
    },
}
#: seed 001 Table 2, read-only: group -> {"n", "male", "female", and variable -> (mean, SD)};
#: variables ``age`` (years), ``bmi`` (kg/m2), ``vbmd`` (mg/cm3), ``{mf,es,ps}_csa`` (mm2, per
#: side, mean over L3/4-L5/S1 and both sides) and ``{mf,es,ps}_pdff`` (%)
SEED001_TABLE2: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {g: MappingProxyType(dict(v)) for g, v in _TABLE2.items()})

#: (low, high) of the truncated normal each variable is drawn from; ``vbmd`` per group (its ISCD
#: range, kept 0.04 inside so that rounding to 0.1 stays inside: > 120 normal, 80-120 osteopenia,
#: < 80 osteoporosis).  Age spans the paper's 24-76 years (drawn in [23.5, 76.49], rounded).
VALUE_RANGES: Mapping[str, Any] = MappingProxyType({
    "age": (23.5, 76.49), "bmi": (15.0, 45.0),
    "vbmd": MappingProxyType({"normal": (120.06, 250.0), "osteopenia": (79.96, 120.04),
                              "osteoporosis": (20.0, 79.94)}),
    "mf_csa": (150.0, 1100.0), "es_csa": (250.0, 2000.0), "ps_csa": (100.0, 2000.0),
    "mf_pdff": (1.0, 70.0), "es_pdff": (1.0, 70.0), "ps_pdff": (0.5, 30.0),
})
_ROUNDING = {"age": 0, "bmi": 1, "vbmd": 1}
_VARIABLES = ("age", "bmi", "vbmd", "mf_csa", "es_csa", "ps_csa", "mf_pdff", "es_pdff", "ps_pdff")

#: muscle abbreviation -> (variable prefix, ellipse aspect b/a (antero-posterior / left-right),
#: segment colour RGB); MF red, ES blue, PS green as in seed 001 Fig. 2
MUSCLE_SHAPES: Mapping[str, Tuple[str, float, Tuple[float, float, float]]] = MappingProxyType({
    "MF": ("mf", 1.56, (0.85, 0.15, 0.15)),
    "ES": ("es", 0.81, (0.15, 0.35, 0.85)),
    "PS": ("ps", 1.25, (0.15, 0.70, 0.25)),
})
#: PDFF of the fascia rim around a muscle = this x the muscle's PDFF (at most 90 %)
RIM_PDFF_FACTOR = 3.0

_LEVEL_SIDE_SPREAD = 0.03      # level/side variation: uniform +-3 %, centred
_REPEAT_COMMON_SD = 0.03       # second reading: axis scale shared by a muscle's six ROIs
_REPEAT_ROI_SPREAD = 0.02      # ...plus uniform +-2 % per ROI and axis
_REPEAT_MAX = 0.08             # ...clipped to +-8 %; centre moved by up to one voxel per axis
_FAT_LOW, _FAT_HIGH = 60.0, 95.0   # fat voxels, %
_LEAN_MAX, _LEAN_SPREAD = 4.0, 2.0  # lean level = min(PDFF / 2, 4) %, +- up to 2 %
_RIM_MAX = 90.0
_PERIPHERY_NOISE = 1.0         # fat placement score = rho^2 + U(0, this): prefers the periphery
_SUBCUT_PCT, _SUBCUT_SPREAD, _SUBCUT_MM = 90.0, 3.0, 10.0  # subcutaneous fat ring
_BODY_EXPONENT = 3.0           # body outline |u/Ru|^n + |v/Rv|^n = 1 (a rounded rectangle)
_MIDLINE_GAP_MM, _PSOAS_GAP_MM = 3.0, 16.0

#: default image size (i, j, k) and spacing (mm): a 300 x 204 mm field of view that holds the
#: largest muscles the generator draws (range ends of VALUE_RANGES + 6 % level/side variation)
DEFAULT_SHAPE: Tuple[int, int, int] = (200, 136, 3)
DEFAULT_SPACING: Tuple[float, float, float] = (1.5, 1.5, 4.0)


@dataclass
class SyntheticCohort:
    """A written synthetic cohort.

    Attributes
    ----------
    folder : pathlib.Path
        The cohort folder (``manifest.csv``, ``truth.csv``, ``cases_input/``).
    manifest : pathlib.Path
        ``manifest.csv``: one row per subject and session, paths relative to ``folder``.
    truth : pandas.DataFrame
        One row per subject: ``subject``, ``group``, ``sex`` (M/F), ``age`` (years),
        ``bmi`` (kg/m2), ``vbmd`` (mg/cm3), ``repeated`` (has a second session), the
        subject values ``{mf,es,ps}_{csa,pdff}_mean`` (mm2 / %, mean over the three
        levels and both sides) and the drawn ROI values
        ``{mf,es,ps}_{csa,pdff}_{L3_4,L4_5,L5_S1}_{left,right}`` (the names of
        the cohort's subject variables).  CSA values are the drawn ones; the
        images hold them to within half a pixel area.
    n_subjects : int
        Number of subjects.
    truth_path : pathlib.Path
        ``truth.csv`` (the same table).
    """

    folder: Path
    manifest: Path
    truth: pd.DataFrame
    n_subjects: int
    truth_path: Optional[Path] = None


# --------------------------------------------------------------------------- drawing values
def _allocate(n: int, weights: Sequence[float], minimum: int) -> np.ndarray:
    """Largest-remainder allocation of ``n`` to ``weights``, each at least ``minimum``."""
    w = np.asarray(weights, dtype=float)
    quota = n * w / w.sum()
    counts = np.floor(quota + 1e-9).astype(int)
    order = np.argsort(-(quota - counts), kind="stable")
    for i in order[: n - counts.sum()]:
        counts[i] += 1
    while counts.min() < minimum:
        counts[int(np.argmin(counts))] += 1
        counts[int(np.argmax(counts))] -= 1
    return counts


def _standard_truncated(mu: float, sigma: float, low: float, high: float):
    """Bounds of the standardised truncation, oriented so both tails are computed accurately.

    Returns ``(a, b, sign, log_z)``: for ``sign = -1`` the variable is reflected
    (``a, b = -b, -a``) so that ``a <= 0`` whenever possible; ``log_z`` is
    ``log(Phi(b) - Phi(a))``.
    """
    from scipy import special

    a, b = (low - mu) / sigma, (high - mu) / sigma
    sign = 1.0
    if a > 0:
        a, b, sign = -b, -a, -1.0
    la, lb = float(special.log_ndtr(a)), float(special.log_ndtr(b))
    return a, b, sign, lb + math.log1p(-math.exp(la - lb))


def _truncated_moments(mu: float, sigma: float, low: float, high: float) -> Tuple[float, float]:
    """Mean and SD of N(mu, sigma^2) truncated to [low, high] (closed form, log-space)."""
    a, b, sign, log_z = _standard_truncated(mu, sigma, low, high)
    half_log_2pi = 0.5 * math.log(2.0 * math.pi)
    pa = math.exp(-0.5 * a * a - half_log_2pi - log_z)
    pb = math.exp(-0.5 * b * b - half_log_2pi - log_z)
    m = pa - pb
    var = 1.0 + a * pa - b * pb - m * m
    return mu + sign * sigma * m, sigma * math.sqrt(max(var, 0.0))


@lru_cache(maxsize=None)
def _parent_normal(mean: float, sd: float, low: float, high: float) -> Tuple[float, float]:
    """(mu, sigma) of the normal whose truncation to [low, high] has this mean and SD."""
    from scipy import optimize

    def residual(x):
        m, s = _truncated_moments(x[0], math.exp(x[1]), low, high)
        return [(m - mean) / sd, (s - sd) / sd]

    fit = optimize.least_squares(residual, [mean, math.log(sd)], xtol=1e-14, ftol=1e-14, gtol=1e-14)
    if not np.all(np.abs(fit.fun) < 1e-8):  # pragma: no cover - the constants above all solve
        raise ValueError(f"no truncated normal on [{low}, {high}] has mean {mean} and SD {sd}")
    return float(fit.x[0]), float(math.exp(fit.x[1]))


def _draw_truncated(rng: np.random.Generator, n: int, mean: float, sd: float,
                    low: float, high: float) -> np.ndarray:
    """``n`` values of the moment-matched truncated normal (inverse-CDF sampling)."""
    from scipy import special

    mu, sigma = _parent_normal(float(mean), float(sd), float(low), float(high))
    a, b, sign, log_z = _standard_truncated(mu, sigma, low, high)
    u = rng.uniform(size=n)
    p = special.ndtr(a) + u * math.exp(log_z)
    x = mu + sign * sigma * special.ndtri(np.clip(p, 0.0, 1.0))
    return np.clip(x, low, high)


def _roi_columns(prefix: str, metric: str) -> List[str]:
    return [f"{prefix}_{metric}_{tag}_{side}" for tag in _LEVEL_TAGS for side in _SIDES]


def _check_int(value: Any, name: str, low: int, high: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"synthetic cohort: {name} must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        upper = f" and at most {high}" if high is not None else ""
        raise InputError(f"synthetic cohort: {name} must be at least {low}{upper}, got {value}")
    return int(value)


def draw_subjects(n_subjects: int = 60, *, seed: int = 2024, n_repeated: Optional[int] = None) -> pd.DataFrame:
    """Draw the subjects' clinical and muscle values (the truth table, no images).

    Parameters
    ----------
    n_subjects : int
        Number of subjects (>= 3, so that every vBMD group is present).
    seed : int
        Seed of the random generator; the same seed gives the same table (and
        :func:`make_synthetic_cohort` with this seed writes images of exactly it).
    n_repeated : int, optional
        Number of subjects (chosen at random) marked ``repeated`` (measured
        twice); default ``min(10, n_subjects)``.

    Returns
    -------
    pandas.DataFrame
        One row per subject, columns as :attr:`SyntheticCohort.truth`.

    Raises
    ------
    InputError
        ``n_subjects`` below 3, ``n_repeated`` outside 0..n_subjects, or a
        non-integer argument.
    """
    n = _check_int(n_subjects, "n_subjects", 3)
    n_rep = min(10, n) if n_repeated is None else _check_int(n_repeated, "n_repeated", 0, n)
    seed = _check_int(seed, "seed", 0)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])

    sizes = _allocate(n, [_TABLE2[g]["n"] for g in GROUPS], min(3, n // len(GROUPS)))
    group = np.repeat(np.arange(len(GROUPS)), sizes)
    sex = np.empty(n, dtype=object)
    for gi, g in enumerate(GROUPS):
        m, f = _allocate(int(sizes[gi]), [_TABLE2[g]["male"], _TABLE2[g]["female"]], 0)
        sex[group == gi] = rng.permutation(np.array(["M"] * int(m) + ["F"] * int(f), dtype=object))
    values: Dict[str, np.ndarray] = {}
    for var in _VARIABLES:
        col = np.empty(n)
        for gi, g in enumerate(GROUPS):
            low, high = VALUE_RANGES[var][g] if var == "vbmd" else VALUE_RANGES[var]
            mean, sd = _TABLE2[g][var]
            col[group == gi] = _draw_truncated(rng, int(sizes[gi]), mean, sd, low, high)
        if var in _ROUNDING:
            col = np.floor(col * 10 ** _ROUNDING[var] + 0.5) / 10 ** _ROUNDING[var]
        values[var] = col
    order = rng.permutation(n)  # subjects in random order, not sorted by group
    width = max(3, len(str(n)))
    table = pd.DataFrame({
        "subject": [f"S{i + 1:0{width}d}" for i in range(n)],
        "group": np.asarray(GROUPS, dtype=object)[group[order]],
        "sex": sex[order],
        "age": values["age"][order].astype(int),
        "bmi": values["bmi"][order],
        "vbmd": values["vbmd"][order],
    })
    repeated = np.zeros(n, dtype=bool)
    repeated[rng.choice(n, size=n_rep, replace=False)] = True
    table["repeated"] = repeated
    roi_blocks = {}
    for abbr, (prefix, _aspect, _colour) in MUSCLE_SHAPES.items():
        for metric in ("csa", "pdff"):
            subject_value = values[f"{prefix}_{metric}"][order]
            d = rng.uniform(-_LEVEL_SIDE_SPREAD, _LEVEL_SIDE_SPREAD, size=(n, len(LEVELS) * 2))
            d -= d.mean(axis=1, keepdims=True)
            per_roi = subject_value[:, None] * (1.0 + d)
            table[f"{prefix}_{metric}_mean"] = subject_value
            roi_blocks.update(dict(zip(_roi_columns(prefix, metric), per_roi.T)))
    return pd.concat([table, pd.DataFrame(roi_blocks)], axis=1)


# --------------------------------------------------------------------------- images
@dataclass(frozen=True)
class _Grid:
    ni: int
    nj: int
    nk: int
    px_u: float
    px_v: float
    u: np.ndarray  # LPS x (mm, + = left) of each i, image centre = 0
    v: np.ndarray  # LPS y (mm, + = posterior) of each j
    level_slices: Tuple[int, ...]
    inner: Tuple[float, float]  # semi-axes of the superellipse the muscles must stay inside

    @property
    def voxel(self) -> float:
        return max(self.px_u, self.px_v)

    @property
    def pixel_area(self) -> float:
        return self.px_u * self.px_v


def _make_grid(shape, spacing) -> _Grid:
    ni, nj, nk = shape
    px_u, px_v = spacing[0], spacing[1]
    u = (np.arange(ni) - (ni - 1) / 2.0) * px_u
    v = (np.arange(nj) - (nj - 1) / 2.0) * px_v
    # L3/4, L4/5, L5/S1 at 5/6, 1/2, 1/6 of the stack: slices 2, 1, 0 of a 3-slice image
    level_slices = tuple(int(np.floor((nk - 1) * t + 0.5)) for t in (5 / 6, 1 / 2, 1 / 6))
    vox = max(px_u, px_v)
    ru, rv = ni * px_u / 2.0 - 2 * vox, nj * px_v / 2.0 - 2 * vox
    inner = (ru - _SUBCUT_MM - 2 * vox, rv - _SUBCUT_MM - 2 * vox)
    return _Grid(ni, nj, nk, px_u, px_v, u, v, level_slices, inner)


def _body_slice(grid: _Grid, rng: np.random.Generator) -> np.ndarray:
    """2-D PDFF (%) of the body: subcutaneous fat ring (~90 %), 0 elsewhere."""
    n = _BODY_EXPONENT
    ru, rv = grid.inner[0] + _SUBCUT_MM + 2 * grid.voxel, grid.inner[1] + _SUBCUT_MM + 2 * grid.voxel
    uu, vv = np.abs(grid.u)[None, :], np.abs(grid.v)[:, None]
    outer = (uu / ru) ** n + (vv / rv) ** n <= 1.0
    inner = (uu / (ru - _SUBCUT_MM)) ** n + (vv / (rv - _SUBCUT_MM)) ** n <= 1.0
    ring = outer & ~inner
    body = np.zeros((grid.nj, grid.ni))
    body[ring] = _SUBCUT_PCT + rng.uniform(-_SUBCUT_SPREAD, _SUBCUT_SPREAD, int(ring.sum()))
    return body


def _window(grid: _Grid, cu: float, cv: float, half_u: float, half_v: float):
    """Index ranges (j, i) of the voxels within ``half_u``/``half_v`` mm (+2 voxels) of a centre."""
    ic = cu / grid.px_u + (grid.ni - 1) / 2.0
    jc = cv / grid.px_v + (grid.nj - 1) / 2.0
    ri, rj = int(math.ceil(half_u / grid.px_u)) + 2, int(math.ceil(half_v / grid.px_v)) + 2
    i = np.arange(max(0, int(ic) - ri), min(grid.ni, int(ic) + ri + 2))
    j = np.arange(max(0, int(jc) - rj), min(grid.nj, int(jc) + rj + 2))
    return j, i


def _ellipse_voxels(grid: _Grid, cu: float, cv: float, a: float, b: float, n_vox: int):
    """The ``n_vox`` voxels of smallest ``rho^2 = ((u-cu)/a)^2 + ((v-cv)/b)^2`` (flat j, i, rho^2)."""
    j, i = _window(grid, cu, cv, 1.3 * a, 1.3 * b)
    rho2 = ((grid.v[j, None] - cv) / b) ** 2 + ((grid.u[None, i] - cu) / a) ** 2
    flat = rho2.ravel()
    order = np.argsort(flat, kind="stable")[:n_vox]
    if order.size < n_vox or flat[order[-1]] >= 1.69:  # pragma: no cover - the layout prevents it
        raise RuntimeError("synthetic cohort: an ROI window is too small (internal error)")
    return j[order // i.size], i[order % i.size], flat[order]


def _muscle_voxels(grid: _Grid, cu: float, cv: float, a: float, b: float, n_vox: int, rim: float):
    """An ROI and its rim on one slice.

    Returns ``(roi_j, roi_i, roi_rho2, rim_j, rim_i)``: the ``n_vox`` voxels of
    smallest ``rho^2 = ((u-cu)/a)^2 + ((v-cv)/b)^2`` and the other voxels of the
    ellipse with semi-axes ``a + rim``, ``b + rim``.
    """
    j, i = _window(grid, cu, cv, a + rim, b + rim)
    du, dv = grid.u[None, i] - cu, grid.v[j, None] - cv
    rho2 = ((dv / b) ** 2 + (du / a) ** 2).ravel()
    in_rim = ((dv / (b + rim)) ** 2 + (du / (a + rim)) ** 2 <= 1.0).ravel()
    order = np.argsort(rho2, kind="stable")[:n_vox]
    # the selection {rho^2 <= r^2} lies inside the window when the ellipse r*(a, b) lies inside the rim
    if order.size < n_vox or math.sqrt(rho2[order[-1]]) > 1.0 + rim / max(a, b):  # pragma: no cover
        raise RuntimeError("synthetic cohort: an ROI window is too small (internal error)")
    in_rim[order] = False
    rim_flat = np.flatnonzero(in_rim)
    return j[order // i.size], i[order % i.size], rho2[order], j[rim_flat // i.size], i[rim_flat % i.size]


def _fat_pattern(n: int, pdff: float, rng: np.random.Generator,
                 score: Optional[np.ndarray] = None) -> np.ndarray:
    """``n`` voxel PDFF values (%) whose mean is ``pdff``: lean voxels and fat voxels (>= 60 %).

    The fat voxels go where ``score + U(0, 1)`` is largest (``score`` = rho^2 puts
    them preferably at the periphery), or at random places without ``score``.
    """
    if n == 1:
        return np.array([pdff])
    fat_mean = (_FAT_LOW + _FAT_HIGH) / 2.0
    lean0 = min(pdff / 2.0, _LEAN_MAX)
    n_fat = int(np.floor(n * (pdff - lean0) / (fat_mean - lean0) + 0.5))
    n_fat = min(max(n_fat, 0), n - 1)

    def lean_level(k):
        return (pdff * n - k * fat_mean) / (n - k)

    while n_fat > 0 and lean_level(n_fat) < 0.5 * lean0:
        n_fat -= 1
    n_lean = n - n_fat
    lean = lean_level(n_fat)
    spread = min(_LEAN_SPREAD, 0.8 * lean)
    lean_values = lean + spread * (2.0 * (np.arange(n_lean) + 0.5) / n_lean - 1.0)
    fat_values = _FAT_LOW + (_FAT_HIGH - _FAT_LOW) * (np.arange(n_fat) + 0.5) / max(n_fat, 1)
    values = np.empty(n)
    s = rng.uniform(0.0, _PERIPHERY_NOISE, n) + (0.0 if score is None else score)
    fat_at = np.argsort(-s, kind="stable")[:n_fat]
    is_fat = np.zeros(n, dtype=bool)
    is_fat[fat_at] = True
    values[is_fat] = rng.permutation(fat_values)
    values[~is_fat] = rng.permutation(lean_values)
    values[~is_fat] += (pdff * n - values.sum()) / n_lean  # exact mean (float64 rounding only)
    return values


def _semi_axes(area: np.ndarray, aspect: float):
    a = np.sqrt(np.asarray(area, dtype=float) / (math.pi * aspect))
    return a, aspect * a


def _layout(grid: _Grid, extents: Dict[str, Tuple[float, float]]) -> Dict[Tuple[str, str], Tuple[float, float]]:
    """Centres (u, v) mm of each muscle and side from the reserved half-extents."""
    vox = grid.voxel
    mf_u, mf_v = extents["MF"]
    es_u, es_v = extents["ES"]
    ps_u, ps_v = extents["PS"]
    post = max(mf_v, es_v)
    dist = post + vox + ps_v  # posterior row centre - anterior row centre
    v_post = (dist + ps_v - post) / 2.0
    v_ant = v_post - dist
    u_centre = {
        "MF": _MIDLINE_GAP_MM / 2.0 + mf_u,
        "ES": _MIDLINE_GAP_MM / 2.0 + 2.0 * mf_u + vox + es_u,
        "PS": _PSOAS_GAP_MM / 2.0 + ps_u,
    }
    v_centre = {"MF": v_post, "ES": v_post, "PS": v_ant}
    return {(m, side): (_SIDE_SIGN[side] * u_centre[m], v_centre[m]) for m in MUSCLE_SHAPES for side in _SIDES}


def _fits(grid: _Grid, centres, extents) -> bool:
    t = np.linspace(0.0, 2.0 * math.pi, 181)
    ru, rv = grid.inner
    if ru <= 0 or rv <= 0:
        return False
    for (m, _side), (cu, cv) in centres.items():
        eu, ev = extents[m]
        uu, vv = cu + eu * np.cos(t), cv + ev * np.sin(t)
        if np.any(np.abs(uu / ru) ** _BODY_EXPONENT + np.abs(vv / rv) ** _BODY_EXPONENT > 1.0):
            return False
    return True


def _render_subject(grid: _Grid, row: pd.Series, rng: np.random.Generator, second: bool,
                    shape, spacing):
    """PDFF volume (%), session-1 and (optional) session-2 label volumes, segment names."""
    from ..segmentation import Segment

    vox, pxa = grid.voxel, grid.pixel_area
    rois = {}
    extents = {}
    for abbr, (prefix, aspect, _colour) in MUSCLE_SHAPES.items():
        area = row[_roi_columns(prefix, "csa")].to_numpy(float)
        a, b = _semi_axes(area, aspect)
        rim = _REPEAT_MAX * max(a.max(), b.max()) + 3.0 * vox
        extents[abbr] = (a.max() + rim, b.max() + rim)
        pdff = row[_roi_columns(prefix, "pdff")].to_numpy(float)
        rois[abbr] = (area, a, b, pdff, rim)
    centres = _layout(grid, extents)
    if not _fits(grid, centres, extents):
        big = ", ".join(f"{abbr} {rois[abbr][0].max():.0f}" for abbr in MUSCLE_SHAPES)
        fov = (grid.ni * grid.px_u, grid.nj * grid.px_v)
        raise InputError(
            f"synthetic cohort: the muscles of subject {row['subject']} (largest CSA per ROI: {big} mm2) "
            f"do not fit in an image of shape={tuple(shape)} with spacing={tuple(spacing)} (field of view "
            f"{fov[0]:.0f} x {fov[1]:.0f} mm); use a larger shape or spacing (the default shape "
            f"{DEFAULT_SHAPE} at spacing {DEFAULT_SPACING} holds every size the generator draws)"
        )
    if second:  # second reading: per muscle a shared scale, per ROI and axis a small extra
        common = {m: rng.normal(0.0, _REPEAT_COMMON_SD) for m in MUSCLE_SHAPES}
    body = _body_slice(grid, rng)
    pdff_slices = {}
    label_slices = {1: {}, 2: {}}
    segments = []
    label = 0
    for li, level in enumerate(LEVELS):
        k = grid.level_slices[li]
        pdff2d = body.copy()
        owner = np.zeros((grid.nj, grid.ni), dtype=np.int32)  # ROI + rim of which label (0 none)
        lab1 = np.zeros((grid.nj, grid.ni), dtype=np.uint8)
        lab2 = np.zeros((grid.nj, grid.ni), dtype=np.uint8) if second else None
        for abbr, (prefix, _aspect, colour) in MUSCLE_SHAPES.items():
            area, a_all, b_all, pdff_all, rim = rois[abbr]
            for si, side in enumerate(_SIDES):
                r = li * 2 + si
                label += 1
                cu, cv = centres[(abbr, side)]
                a, b = a_all[r], b_all[r]
                n_vox = max(1, int(np.floor(area[r] / pxa + 0.5)))
                j1, i1, rho2, jr, ir = _muscle_voxels(grid, cu, cv, a, b, n_vox, rim)
                if owner[j1, i1].any() or owner[jr, ir].any():
                    raise RuntimeError("synthetic cohort: muscles overlap (internal layout error)")
                owner[jr, ir] = label
                owner[j1, i1] = label
                pdff2d[j1, i1] = _fat_pattern(n_vox, pdff_all[r], rng, score=rho2)
                if jr.size:
                    pdff2d[jr, ir] = _fat_pattern(jr.size, min(RIM_PDFF_FACTOR * pdff_all[r], _RIM_MAX), rng)
                lab1[j1, i1] = label
                if second:
                    scale = np.clip(common[abbr] + rng.uniform(-_REPEAT_ROI_SPREAD, _REPEAT_ROI_SPREAD, 2),
                                    -_REPEAT_MAX, _REPEAT_MAX)
                    a2, b2 = a * (1.0 + scale[0]), b * (1.0 + scale[1])
                    du, dv = rng.uniform(-1.0, 1.0, 2) * (grid.px_u, grid.px_v)
                    n2 = max(1, int(np.floor(math.pi * a2 * b2 / pxa + 0.5)))
                    j2, i2, _ = _ellipse_voxels(grid, cu + du, cv + dv, a2, b2, n2)
                    if np.any(owner[j2, i2] != label):
                        raise RuntimeError("synthetic cohort: a second reading leaves its muscle (internal error)")
                    lab2[j2, i2] = label
                name = f"{abbr}_{_SIDE_ABBR[side]}_{level}"
                segments.append(Segment(name, 0, label, f"Segment_{label}", colour))
        pdff_slices[k] = pdff2d
        label_slices[1][k] = lab1
        if second:
            label_slices[2][k] = lab2
    # every slice shows the picture of its nearest level slice; ROIs only on the level slices
    ks = np.array(grid.level_slices)
    nearest = [int(ks[np.argmin(np.abs(ks - k))]) for k in range(grid.nk)]
    pdff = np.stack([pdff_slices[nearest[k]] for k in range(grid.nk)])
    labels = {}
    for session, slices in label_slices.items():
        if slices:
            vol = np.zeros((grid.nk, grid.nj, grid.ni), dtype=np.uint8)
            for k, lab in slices.items():
                vol[k] = lab
            labels[session] = vol
    return pdff, labels, segments


def _cropped_segmentation(labels: np.ndarray, geometry, segments, source: str):
    """A one-layer :class:`Segmentation` on the grid cropped to its labels (+2 voxels), as Slicer stores it."""
    from ..geometry import Geometry
    from ..segmentation import Segmentation

    nz = np.argwhere(labels)
    lo = np.maximum(nz.min(axis=0) - 2, 0)
    hi = np.minimum(nz.max(axis=0) + 3, labels.shape)
    crop = labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    origin = geometry.index_to_physical(np.array([lo[2], lo[1], lo[0]], dtype=float))
    g = Geometry(size=(int(crop.shape[2]), int(crop.shape[1]), int(crop.shape[0])), spacing=geometry.spacing,
                 origin=tuple(float(x) for x in origin), direction=geometry.direction)
    return Segmentation(np.ascontiguousarray(crop)[np.newaxis], g, list(segments), source=source)


def _write_atomic(path: Path, suffix: str, write) -> None:
    """``write(tmp)`` to a temporary file beside ``path`` (same extension), then rename it over ``path``."""
    tmp = path.with_name(f".{path.name[: -len(suffix)]}.{os.getpid()}.tmp{suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputError(f"synthetic cohort: cannot write {path} ({reason}); check the output folder "
                         f"and free disk space") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _check_shape(shape, spacing):
    try:
        shape = tuple(int(s) for s in shape)
        spacing = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise InputError(f"synthetic cohort: shape must be 3 whole numbers and spacing 3 numbers (mm), "
                         f"got shape={shape!r}, spacing={spacing!r}") from None
    if len(shape) != 3 or len(spacing) != 3:
        raise InputError(f"synthetic cohort: shape (i, j, k) and spacing (mm) need 3 values each, "
                         f"got shape={shape}, spacing={spacing}")
    if shape[0] < 32 or shape[1] < 32 or shape[2] < 3:
        raise InputError(f"synthetic cohort: shape={shape} is too small: at least 32 x 32 voxels in-plane "
                         f"and 3 slices (one per level L3/4, L4/5, L5/S1)")
    if not all(math.isfinite(s) and s > 0 for s in spacing):
        raise InputError(f"synthetic cohort: spacing must be 3 positive numbers (mm), got {spacing}")
    return shape, spacing


def make_synthetic_cohort(folder, n_subjects: int = 60, *, seed: int = 2024, n_repeated: Optional[int] = None,
                          shape: Sequence[int] = DEFAULT_SHAPE, spacing: Sequence[float] = DEFAULT_SPACING,
                          pdff_scale: str = "0-100") -> SyntheticCohort:
    """Write a synthetic cohort drawn from seed 001's Table 2 (images, ROIs, manifest, truth).

    Parameters
    ----------
    folder : str or os.PathLike
        Output folder (created when missing).  Writes ``manifest.csv``,
        ``truth.csv`` and ``cases_input/<subject>_pdff.nrrd``,
        ``cases_input/<subject>_s1.seg.nrrd`` (and ``_s2.seg.nrrd`` for the
        repeated subjects); files of the same names are overwritten, other
        files are left alone.
    n_subjects : int
        Number of subjects (>= 3); the vBMD groups follow the paper's 191 : 129 :
        63 proportions (exactly these sizes for 383).
    seed : int
        Seed of every random draw: the same arguments give the same files.
    n_repeated : int, optional
        Number of subjects measured twice (``session`` 1 and 2; 0 .. n_subjects);
        default ``min(10, n_subjects)``.
    shape : tuple of 3 int
        Image size (i, j, k); k >= 3.  The default, 200 x 136 x 3, is a 300 x 204
        mm field of view at 1.5 mm that holds every muscle size the generator draws.
    spacing : tuple of 3 float
        Voxel spacing in mm (i, j, k).
    pdff_scale : {"0-100", "0-1", "0-1000"}
        Storage scale of the PDFF maps (also written to the manifest).

    Returns
    -------
    SyntheticCohort
        The folder, the manifest path, the truth table (one row per subject) and
        the number of subjects.

    Raises
    ------
    InputError
        A bad argument (see :func:`draw_subjects`; ``shape`` / ``spacing`` not 3
        positive values, fewer than 32 x 32 x 3 voxels; an unknown
        ``pdff_scale``), a subject whose muscles do not fit in the grid, or an
        output file that cannot be written.
    """
    import SimpleITK as sitk

    from ..composition.pdff_scale import PDFF_SCALES
    from ..geometry import Geometry
    from ..io.slicer_seg import write_seg_nrrd
    from ..report.case_files import write_csv_atomic

    if pdff_scale not in PDFF_SCALES:
        raise InputError(f"synthetic cohort: pdff_scale must be one of {sorted(PDFF_SCALES)}, got {pdff_scale!r}")
    shape, spacing = _check_shape(shape, spacing)
    truth = draw_subjects(n_subjects, seed=seed, n_repeated=n_repeated)
    seed = int(seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    grid = _make_grid(shape, spacing)
    half = np.array([(shape[0] - 1) * spacing[0] / 2.0, (shape[1] - 1) * spacing[1] / 2.0, 0.0])
    geometry = Geometry(shape, spacing, (-half[0], -half[1], -60.0), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    full_scale = PDFF_SCALES[pdff_scale][0]

    folder = Path(folder)
    cases = folder / "cases_input"
    try:
        cases.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"synthetic cohort: cannot create the folder {cases} ({exc.strerror or exc}); "
                         f"choose another output folder") from None
    rows = []
    for _, subject in truth.iterrows():
        sid = subject["subject"]
        pdff, labels, segments = _render_subject(grid, subject, rng, bool(subject["repeated"]), shape, spacing)
        image = sitk.GetImageFromArray((pdff * (full_scale / 100.0)).astype(np.float32))
        geometry.apply_to_sitk(image)
        image_path = cases / f"{sid}_pdff.nrrd"
        _write_atomic(image_path, ".nrrd", lambda tmp: sitk.WriteImage(image, str(tmp), True))
        for session, vol in sorted(labels.items()):
            seg_path = cases / f"{sid}_s{session}.seg.nrrd"
            seg = _cropped_segmentation(vol, geometry, segments, f"synthetic {sid} session {session}")
            _write_atomic(seg_path, ".seg.nrrd", lambda tmp: write_seg_nrrd(seg, tmp))
            rows.append({
                "subject": sid, "session": session,
                "image": f"cases_input/{image_path.name}", "segmentation": f"cases_input/{seg_path.name}",
                "map": "pdff", "pdff_scale": pdff_scale,
                "age": subject["age"], "sex": subject["sex"], "bmi": subject["bmi"], "vbmd": subject["vbmd"],
            })
    manifest = write_csv_atomic(pd.DataFrame(rows), folder / "manifest.csv")
    truth_path = write_csv_atomic(truth, folder / "truth.csv")
    return SyntheticCohort(folder=folder, manifest=manifest, truth=truth, n_subjects=len(truth),
                           truth_path=truth_path)
