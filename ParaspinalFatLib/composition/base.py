"""What every composition method shares: class codes, columns, units, the base class.

A composition method turns the gathered voxel values of the ROIs into

* ``value`` -- the voxel value reported by mean/median/SD (in ``unit``),
* a class code per voxel: :data:`LEAN` (0), :data:`UNDEFINED` (1), :data:`FAT`
  (2), or :data:`EXCLUDED` (-1: NaN/inf, below the Dixon noise floor, or in a
  row whose intensity threshold could not be fitted),
* method-specific per-row columns (Dixon signal-weighted fat fraction, CT
  muscle-window density...).

One half-open convention is used everywhere: a boundary value belongs to the
class *above* it (fat = value >= threshold), so that the percentages and the
areas always agree.

Every method class declares what it writes to the tables: ``columns`` (the
columns of :data:`~ParaspinalFatLib.schemas.COMPOSITION_COLUMNS` it fills besides
:data:`COMMON_COLUMNS`, which every method fills), ``unit`` (the unit of the voxel
values) and ``value_columns`` (the columns in that unit); every other numeric
column has the unit given in :data:`FIXED_UNITS`.  The map kinds and their
modules: ``pdff`` (:mod:`.pdff`), ``dixon`` (:mod:`.dixon`), ``ct`` (:mod:`.ct`),
``t1``/``t2`` (:mod:`.intensity`), ``scalar`` (:mod:`.scalar`); built by
:func:`~ParaspinalFatLib.composition.factory.make_method`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError

__all__ = [
    'LEAN', 'UNDEFINED', 'FAT', 'EXCLUDED', 'CLASS_NAMES',
    'COMMON_COLUMNS', 'VALUE_STATISTICS', 'SPLIT_COLUMNS', 'EXTRA_COLUMNS', 'THRESHOLD_COLUMNS', 'FIXED_UNITS',
    'GroupContext', 'CompositionMethod', 'FatFractionMethod', 'image_sample', 'bounded_sample', 'percentiles',
    'BOUNDED_SAMPLE_MAX',
]

#: class code of lean (muscle) voxels (below the fat threshold / in the muscle window)
LEAN = 0
#: class code of undefined voxels: partial volume (3 intensity classes), outside both CT windows
UNDEFINED = 1
#: class code of fat voxels (at or above the fat threshold / in the fat window)
FAT = 2
#: class code of voxels that are not classified: NaN/inf, below the Dixon noise floor,
#: in a row whose intensity threshold could not be fitted, or any voxel of a scalar map
EXCLUDED = -1
#: code -> name
CLASS_NAMES = {LEAN: "lean", UNDEFINED: "undefined", FAT: "fat", EXCLUDED: "excluded"}

#: columns every method fills (in :mod:`ParaspinalFatLib.measurement.quantities`)
COMMON_COLUMNS: Tuple[str, ...] = (
    "n_voxels", "n_nan", "n_below_noise", "csa_mm2", "mean", "median", "sd", "p05", "p10", "p90", "p95", "warnings",
)
#: the statistics of the voxel values: always in the method's ``unit``
VALUE_STATISTICS: Tuple[str, ...] = ("mean", "median", "sd", "p05", "p10", "p90", "p95")
#: the fat / lean split, filled by every method that classifies voxels
SPLIT_COLUMNS: Tuple[str, ...] = ("fat_csa_mm2", "lean_csa_mm2", "undefined_csa_mm2", "fat_area_ratio")
#: columns made by :meth:`CompositionMethod.extra_columns` (NaN unless a method declares them)
EXTRA_COLUMNS: Tuple[str, ...] = ("ff_signal_weighted_pct", "mean_muscle_window", "myosteatosis")
#: per-row thresholds made by :meth:`CompositionMethod.classify`, in the method's ``unit``
THRESHOLD_COLUMNS: Tuple[str, ...] = ("threshold_low", "threshold_high")
#: unit of every numeric column that is not in the unit of the voxel values
FIXED_UNITS: Dict[str, str] = {
    "n_voxels": "voxels", "n_nan": "voxels", "n_below_noise": "voxels",
    "csa_mm2": "mm2", "fat_csa_mm2": "mm2", "lean_csa_mm2": "mm2", "undefined_csa_mm2": "mm2",
    "fat_area_ratio": "1",  # fraction 0..1 of the classified voxels
    "fat_fraction_pct": "%", "ff_signal_weighted_pct": "%",
    "myosteatosis": "1",  # flag: 1.0 / 0.0
}


@dataclass
class GroupContext:
    """What a method may need about the groups (table rows) being classified.

    Attributes
    ----------
    names : list of str
        Muscle name of each group (for warnings).
    reference_values : list, optional
        Per group, the reference fat voxel values (T1/T2 ``reference`` classifier).
    labels : list of str, optional
        Per group, a label for refusal messages (e.g. ``"segment 'MF_R_L4/5'
        (L4/5)"``); ``"the <name> ROI"`` is used when None.
    """

    names: List[str]
    reference_values: Optional[List[Optional[np.ndarray]]] = None
    labels: Optional[List[str]] = None


class CompositionMethod:
    """A composition method with its parameters: the base of every map kind.

    Subclasses declare, as class attributes, the map ``kinds`` they serve,
    the ``columns`` they fill besides :data:`COMMON_COLUMNS`, the default
    ``unit`` of the voxel values and the ``value_columns`` in that unit, and
    override the hooks ``_assign_classes`` and ``_extra`` (this base class
    classifies nothing and fills no extra column).

    Parameters
    ----------
    params : dict, optional
        Every parameter used, written to the table (``method_params``).
    kind : str, optional
        The map kind (default: the first of ``kinds``).
    unit : str, optional
        Unit of the voxel values (default: the class's ``unit``).

    Attributes
    ----------
    kind : str
        One of :data:`~ParaspinalFatLib.composition.factory.MAP_KINDS`.
    unit : str
        Unit of ``value`` (``%`` for PDFF/Dixon, ``HU`` for CT).
    params : dict
        Every parameter used, written to the table (``method_params``).
    pdff_scale : str
        PDFF storage scale (table column ``pdff_scale``; ``""`` for other maps).
    """

    #: map kinds served by the class
    kinds: ClassVar[Tuple[str, ...]] = ()
    #: columns filled besides :data:`COMMON_COLUMNS` (NaN in a row without classified voxels)
    columns: ClassVar[Tuple[str, ...]] = ()
    #: the filled columns in the unit of the voxel values (``unit``)
    value_columns: ClassVar[Tuple[str, ...]] = VALUE_STATISTICS
    #: a second (water) image is gathered with the map
    needs_water: ClassVar[bool] = False
    #: default unit of the voxel values
    unit: str = ""
    pdff_scale: str = ""

    def __init__(self, params: Optional[Dict[str, Any]] = None, *, kind: Optional[str] = None,
                 unit: Optional[str] = None) -> None:
        self.kind = self.kinds[0] if kind is None else kind
        if self.kind not in self.kinds:
            raise InputError(f"{type(self).__name__} serves map kinds {self.kinds}, not {self.kind!r}")
        if unit is not None:
            self.unit = unit
        self.params: Dict[str, Any] = dict(params or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, unit={self.unit!r}, params={self.params!r})"

    # ------------------------------------------------------------------ declarations
    @property
    def has_composition(self) -> bool:
        """True when the method separates fat from lean voxels (fills :data:`SPLIT_COLUMNS`)."""
        return all(c in self.columns for c in SPLIT_COLUMNS)

    @property
    def fat_fraction_is_mean_value(self) -> bool:
        """True when ``fat_fraction_pct`` is the mean voxel value (PDFF, Dixon)."""
        return "fat_fraction_pct" in self.columns

    @property
    def filled_columns(self) -> Tuple[str, ...]:
        """The columns this method fills with its parameters (others are NaN)."""
        return COMMON_COLUMNS + self.columns

    def column_units(self) -> Dict[str, str]:
        """Unit of every numeric column this method fills.

        Returns
        -------
        dict
            Column name -> unit: ``unit`` for :attr:`value_columns`, else the
            entry of :data:`FIXED_UNITS`.
        """
        return {c: self.unit if c in self.value_columns else FIXED_UNITS[c]
                for c in self.filled_columns if c != "warnings"}

    # ------------------------------------------------------------------ values
    def voxel_values(self, raw: np.ndarray, water: Optional[np.ndarray] = None) -> np.ndarray:
        """Voxel values in output units (float64); NaN where excluded.

        Parameters
        ----------
        raw : numpy.ndarray
            Gathered voxel values of the map (the fat image for Dixon).
        water : numpy.ndarray, optional
            Gathered water values (Dixon only).

        Returns
        -------
        numpy.ndarray of float64
        """
        return raw.astype(np.float64, copy=False)

    def below_noise(self, raw: np.ndarray, water: Optional[np.ndarray]) -> np.ndarray:
        """Voxels below a noise floor (only Dixon has one; here: none).

        Parameters
        ----------
        raw : numpy.ndarray
            Gathered voxel values of the map.
        water : numpy.ndarray or None
            Gathered water values (Dixon only).

        Returns
        -------
        numpy.ndarray of bool
        """
        return np.zeros(raw.shape, bool)

    # ------------------------------------------------------------------ classes
    def classify(
        self, values: np.ndarray, groups: np.ndarray, n_groups: int, context: GroupContext
    ) -> Tuple[np.ndarray, Dict[str, np.ndarray], List[List[str]]]:
        """Class code of every voxel, per-group thresholds, and per-group warnings.

        Parameters
        ----------
        values : numpy.ndarray
            Voxel values from :meth:`voxel_values`.
        groups : numpy.ndarray of int
            Group (table row) of each voxel, ``0 .. n_groups-1``.
        n_groups : int
            Number of groups.
        context : GroupContext
            Muscle names and reference values of the groups.

        Returns
        -------
        codes : numpy.ndarray of int8
        thresholds : dict with ``threshold_low`` / ``threshold_high`` arrays (n_groups)
        warnings : list (n_groups) of lists of str
        """
        codes = np.full(values.shape, EXCLUDED, dtype=np.int8)
        low = np.full(n_groups, np.nan)
        high = np.full(n_groups, np.nan)
        notes: List[List[str]] = [[] for _ in range(n_groups)]
        self._assign_classes(values, np.isfinite(values), groups, context, codes, low, high, notes)
        return codes, {"threshold_low": low, "threshold_high": high}, notes

    def _assign_classes(self, values: np.ndarray, finite: np.ndarray, groups: np.ndarray, context: GroupContext,
                        codes: np.ndarray, low: np.ndarray, high: np.ndarray, notes: List[List[str]]) -> None:
        """Hook: write class codes, thresholds and notes in place (default: all excluded)."""

    # ------------------------------------------------------------------ extras
    def extra_columns(self, groups: np.ndarray, n_groups: int, values: np.ndarray, raw: np.ndarray,
                      water: Optional[np.ndarray], codes: np.ndarray) -> Dict[str, np.ndarray]:
        """Method-specific per-group columns (:data:`EXTRA_COLUMNS`; NaN where not applicable).

        Parameters
        ----------
        groups : numpy.ndarray of int
            Group of each voxel.
        n_groups : int
            Number of groups.
        values : numpy.ndarray
            Voxel values from :meth:`voxel_values`.
        raw : numpy.ndarray
            Gathered voxel values of the map.
        water : numpy.ndarray or None
            Gathered water values (Dixon only).
        codes : numpy.ndarray of int8
            Class codes from :meth:`classify`.

        Returns
        -------
        dict of numpy.ndarray
            One array (n_groups) per column of :data:`EXTRA_COLUMNS`.
        """
        out = {c: np.full(n_groups, np.nan) for c in EXTRA_COLUMNS}
        out.update(self._extra(groups, n_groups, values, raw, water, codes))
        return out

    def _extra(self, groups: np.ndarray, n_groups: int, values: np.ndarray, raw: np.ndarray,
               water: Optional[np.ndarray], codes: np.ndarray) -> Dict[str, np.ndarray]:
        """Hook: the method's own columns of :data:`EXTRA_COLUMNS` (default: none)."""
        return {}

    def params_json(self) -> str:
        """The parameters as a JSON string (table column ``method_params``).

        Returns
        -------
        str
        """
        return json.dumps(self.params, sort_keys=True, default=_jsonable)


class FatFractionMethod(CompositionMethod):
    """Base of the maps whose voxel value is a fat fraction in % (PDFF, Dixon).

    ``fat_fraction_pct`` is the mean voxel value; a voxel is fat when its
    value is at or above ``params["fat_threshold_pct"]``, else lean.
    """

    columns: ClassVar[Tuple[str, ...]] = SPLIT_COLUMNS + ("fat_fraction_pct", "threshold_high")
    value_columns: ClassVar[Tuple[str, ...]] = VALUE_STATISTICS + ("fat_fraction_pct", "threshold_high")
    unit: str = "%"

    def _assign_classes(self, values, finite, groups, context, codes, low, high, notes) -> None:
        t = float(self.params["fat_threshold_pct"])
        codes[finite] = np.where(values[finite] >= t, FAT, LEAN)
        high[:] = t


def image_sample(image: np.ndarray) -> np.ndarray:
    """A strided subsample (about 2 million voxels at most) of a 3-D image, as float64.

    Enough for robust percentiles of the whole image (Dixon noise floor, the CT
    Hounsfield check) without reading every voxel of a large volume.  Only the
    sampled voxels are converted to float64.  (The PDFF scale detection uses
    :func:`bounded_sample`.)

    Parameters
    ----------
    image : numpy.ndarray
        3-D voxel array.

    Returns
    -------
    numpy.ndarray of float64
        The sampled voxels, flattened (NaN/inf kept).
    """
    step = max(1, int(round((image.size / 2_000_000) ** (1 / 3))))
    return np.asarray(image[::step, ::step, ::step], dtype=np.float64).ravel()


#: most voxels in a :func:`bounded_sample` (the PDFF scale detection sample); smaller images are used whole
BOUNDED_SAMPLE_MAX = 1_000_000


def bounded_sample(image: np.ndarray, max_voxels: int = BOUNDED_SAMPLE_MAX, keep_type: bool = False) -> np.ndarray:
    """A deterministic sample of at most ``max_voxels`` voxels of an image, as float64 (or in its own type).

    An image of at most ``max_voxels`` voxels is used whole (exact percentiles).
    A larger one is sampled on a grid spread evenly along every axis: along
    each axis a number of evenly spaced indices (the centres of equal parts of
    the axis), chosen so that their product is as close to ``max_voxels`` as
    whole numbers allow.  The sample size therefore grows with the image up to
    ``max_voxels`` and stays near it (no saw-tooth of a rounded integer
    stride), the cost is bounded, and only the sampled voxels are converted to
    float64 (the image keeps its own type).

    Parameters
    ----------
    image : numpy.ndarray
        Voxel array (any number of dimensions, any real type).
    max_voxels : int
        Most voxels in the sample (>= 1).
    keep_type : bool
        Return the voxels in the image's own type (e.g. float32): for
        :func:`percentiles`, whose order statistics and interpolation are the
        same for the values and their float64 conversion, at half the memory.

    Returns
    -------
    numpy.ndarray of float64 (or of the image's type)
        The sampled voxels, flattened (NaN/inf kept).
    """
    image = np.asarray(image)
    dtype = image.dtype if keep_type else np.float64
    max_voxels = max(1, int(max_voxels))
    if image.size <= max_voxels:
        return np.asarray(image, dtype=dtype).ravel()
    shape = [int(n) for n in image.shape]
    order = sorted(range(len(shape)), key=lambda a: shape[a])  # short axes first: the rest takes up the slack
    chosen = _grid_counts([shape[a] for a in order], max_voxels)
    counts = list(shape)
    for axis, count in zip(order, chosen):
        counts[axis] = count
    picks = [((2 * np.arange(c, dtype=np.intp) + 1) * n) // (2 * c) for c, n in zip(counts, shape)]
    if len(shape) == 3 and counts[0] > 1:
        # slice by slice, each slice's grid taken at once by its flat positions (the same for every
        # slice): no temporary, and each slice's part stays in the cache.  The positions lie inside
        # the slice, so mode="wrap" takes the same voxels as the default, without its bounds checks
        # (about 20 % faster)
        sample = np.empty((counts[0], counts[1] * counts[2]), dtype=image.dtype)
        flat = (picks[1][:, None] * shape[2] + picks[2][None, :]).ravel()
        for at, index in enumerate(picks[0].tolist()):
            plane = image[index]
            np.take(plane.reshape(-1) if plane.flags.c_contiguous else np.ravel(plane), flat, out=sample[at],
                    mode="wrap")
        return np.asarray(sample, dtype=dtype).ravel()
    if len(shape) > 3 and counts[0] > 1:
        # slice by slice: each slice's part stays in the cache (no image-sized temporary)
        sample = np.empty(counts, dtype=dtype)
        for at, index in enumerate(picks[0].tolist()):
            sample[at] = _grid_of(image[index], picks[1:])
        return sample.ravel()
    return np.asarray(_grid_of(image, picks), dtype=dtype).ravel()


def _grid_of(image: np.ndarray, picks: List[np.ndarray]) -> np.ndarray:
    """``image[np.ix_(*picks)]``, fast."""
    if len(picks) > 1 and image.shape[-1] <= 8 * picks[-1].size:
        # whole rows first, then the columns of the rows: the same voxels in the same order as
        # image[np.ix_(*picks)], in about half its time (a temporary of at most 8 x the sample)
        return np.take(image[np.ix_(*picks[:-1])], picks[-1], axis=-1)
    return image[np.ix_(*picks)]


def percentiles(values: np.ndarray, q: Sequence[float], *, no_nan: bool = False) -> List[float]:
    """``numpy.percentile`` (linear interpolation) of the values as float64, to the last bit, fast in the tails.

    The values may keep their own type (float32, int16): the order statistics are
    selected in it (its conversion to float64 is exact and keeps the order) and
    interpolated in float64.

    The order statistics that the percentiles interpolate are selected from the
    values beyond thresholds taken from an evenly strided pilot (1 in 64),
    gathered in one pass for both tails: for the 0.5th and 99.5th percentiles
    of 10**6 voxels about 2 % of the values are partitioned instead of all of
    them.  The selection is exact (the values below the low threshold are the
    smallest ones, those equal to it come next, and the same at the top; the
    whole array is partitioned when the pilot misjudged), and the
    interpolation is numpy's own formula (``a + (b - a) t``, or
    ``b - (b - a)(1 - t)`` for ``t >= 0.5``).

    Parameters
    ----------
    values : numpy.ndarray
        The values, any shape, any real type; no NaN (remove them first: a
        ValueError otherwise).
    q : sequence of float
        Percentiles, 0-100.
    no_nan : bool
        The caller has already removed every NaN: the check is skipped (a NaN
        left in would then give wrong percentiles).

    Returns
    -------
    list of float
        One percentile per ``q``.
    """
    values = np.asarray(values).ravel()
    n = int(values.size)
    if n == 0:
        raise ValueError("percentiles of an empty array")
    if not no_nan and values.dtype.kind in "fc" and np.isnan(values).any():
        raise ValueError("percentiles: remove the NaN values first")
    quantiles = np.true_divide(np.asarray(q, dtype=np.float64), 100)
    if np.any(quantiles < 0) or np.any(quantiles > 1):
        raise ValueError("percentiles must be in the range [0, 100]")
    virtual = (n - 1) * quantiles
    below = np.floor(virtual).astype(np.intp)
    above = np.minimum(below + 1, n - 1)
    gamma = virtual - below
    stats = _order_statistics(values, sorted(set(below.tolist()) | set(above.tolist())))
    out = []
    for k0, k1, t in zip(below.tolist(), above.tolist(), gamma.tolist()):
        a, b = stats[k0], stats[k1]
        diff = b - a
        out.append(b - diff * (1 - t) if t >= 0.5 else a + diff * t)
    return out


def _order_statistics(values: np.ndarray, ks: List[int]) -> Dict[int, float]:
    """``{k: sorted(values)[k]}`` as float64 for the sorted ranks ``ks`` (see :func:`percentiles`)."""
    n = int(values.size)
    found: Dict[int, float] = {}
    if n < 65_536:
        part = np.partition(values, ks)
        return {k: float(np.float64(part[k])) for k in ks}
    pilot = np.sort(values[::64])  # sorted, not partitioned: numpy's selection is slow on many equal values
    m = int(pilot.size)
    low = [k for k in ks if k < n // 2]
    high = [k for k in ks if k >= n // 2]
    t_low = pilot[min(m - 1, int(1.5 * (max(low) + 1) * m / n) + 64)] if low else None
    t_high = pilot[max(0, m - 1 - (int(1.5 * (n - min(high)) * m / n) + 64))] if high else None
    # np.compress: the same values as boolean indexing, in the same order, in about 3/4 of its time
    if low and high:  # one pass gathers both tails (every value < t_low and every value > t_high)
        tails = np.compress((values < t_low) | (values > t_high), values)
    else:
        tails = np.compress(values < t_low, values) if low else np.compress(values > t_high, values)
    if low:  # sorted: the values < t, then those == t (ties such as air in a CT cost nothing)
        smaller = tails[tails < t_low] if high else tails
        n_lt = int(smaller.size)
        inside = [k for k in low if k < n_lt]
        if inside:
            part = np.partition(smaller, inside)
            found.update((k, float(np.float64(part[k]))) for k in inside)
        tied = [k for k in low if k >= n_lt]
        if tied:
            n_le = n_lt + int(np.count_nonzero(values == t_low))
            found.update((k, float(np.float64(t_low))) for k in tied if k < n_le)
    if high:  # sorted: the values == t, then those > t, at the end
        larger = tails[tails > t_high] if low else tails
        n_gt = int(larger.size)
        inside = [k for k in high if k >= n - n_gt]
        if inside:
            part = np.partition(larger, [k - (n - n_gt) for k in inside])
            found.update((k, float(np.float64(part[k - (n - n_gt)]))) for k in inside)
        tied = [k for k in high if k < n - n_gt]
        if tied:
            n_ge = n_gt + int(np.count_nonzero(values == t_high))
            found.update((k, float(np.float64(t_high))) for k in tied if k >= n - n_ge)
    missing = [k for k in ks if k not in found]
    if missing:  # the pilot misjudged: the whole array
        part = np.partition(values, missing)
        found.update((k, float(np.float64(part[k]))) for k in missing)
    return found


def _grid_counts(sizes: List[int], budget: int) -> List[int]:
    """Counts ``1 <= c <= size`` per axis, about equal fractions of each axis, product <= ``budget`` and largest.

    The first axis takes the floor or the ceiling of its share (whichever lets the other axes fill the
    budget best, found the same way): at most 2**ndim products are compared, in integers (exact).
    """
    if not sizes:
        return []
    total = float(np.prod(sizes, dtype=np.float64))
    share = sizes[0] * (budget / total) ** (1.0 / len(sizes))
    best: List[int] = []
    best_product = 0
    for count in sorted({min(sizes[0], max(1, int(share))), min(sizes[0], max(1, int(share) + 1))}):
        if count > budget:
            continue
        counts = [count] + _grid_counts(sizes[1:], budget // count)
        product = int(np.prod(counts, dtype=np.int64))
        if best_product < product <= budget:
            best, best_product = counts, product
    return best


def _jsonable(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)
