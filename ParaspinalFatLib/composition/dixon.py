"""Dixon water and fat images: the voxel fat fraction FF = F / (F + W), in %.

Voxels whose F + W is below the noise floor (or not finite) are excluded from
the statistics and counted (``n_below_noise``).  Fat = FF >=
``fat_threshold_pct``; ``fat_fraction_pct`` is the mean voxel FF and
``ff_signal_weighted_pct`` the signal-weighted one, 100 x sum F / sum (F + W)
over the kept voxels (the two are not interchangeable).
"""

from __future__ import annotations

from typing import ClassVar, Dict, Optional, Tuple

import numpy as np

from ..errors import InputError
from .base import SPLIT_COLUMNS, VALUE_STATISTICS, FatFractionMethod, image_sample, percentiles

__all__ = ['DixonMethod']


class DixonMethod(FatFractionMethod):
    """Composition from Dixon fat and water images (map kind ``dixon``).

    Declares (class attributes): ``unit`` ``%``; ``columns``: the fat / lean
    split, ``fat_fraction_pct`` (mean voxel FF, %), ``ff_signal_weighted_pct``
    (%) and ``threshold_high`` (the fat threshold, %); ``needs_water``.
    ``params``: ``fat_threshold_pct``, ``noise_floor`` (absolute F + W) and
    ``noise_floor_rule``.
    """

    kinds: ClassVar[Tuple[str, ...]] = ("dixon",)
    columns: ClassVar[Tuple[str, ...]] = SPLIT_COLUMNS + ("fat_fraction_pct", "ff_signal_weighted_pct",
                                                          "threshold_high")
    value_columns: ClassVar[Tuple[str, ...]] = VALUE_STATISTICS + ("fat_fraction_pct", "ff_signal_weighted_pct",
                                                                   "threshold_high")
    needs_water: ClassVar[bool] = True

    @classmethod
    def from_options(cls, image: np.ndarray, water: Optional[np.ndarray], fat_threshold_pct: float = 50.0,
                     noise_floor: Optional[float] = None, noise_floor_fraction: float = 0.02) -> "DixonMethod":
        """Build the method, with the noise floor declared or derived from the images.

        Parameters
        ----------
        image : numpy.ndarray
            The fat image array.
        water : numpy.ndarray
            The water image array (required).
        fat_threshold_pct : float
            Fat threshold on the voxel FF, in %.
        noise_floor : float, optional
            Absolute F + W below which a voxel is excluded.  Default:
            ``noise_floor_fraction`` x the 99.5th percentile of F + W over the image.
        noise_floor_fraction : float
            See ``noise_floor``.

        Returns
        -------
        DixonMethod
        """
        if water is None:
            raise InputError("map 'dixon' needs a water image (--water) and a fat image (--fat)")
        how = "declared"
        if noise_floor is None:
            total = image_sample(image) + image_sample(water)
            total = total[np.isfinite(total)]
            noise_floor = float(noise_floor_fraction * percentiles(total, [99.5])[0]) if total.size else 0.0
            how = f"{noise_floor_fraction:g} x 99.5th percentile of F+W"
        return cls({"fat_threshold_pct": float(fat_threshold_pct), "noise_floor": float(noise_floor),
                    "noise_floor_rule": how})

    def voxel_values(self, raw: np.ndarray, water: Optional[np.ndarray] = None) -> np.ndarray:
        """Voxel fat fraction 100 F / (F + W) in %; NaN below the noise floor.

        Parameters
        ----------
        raw : numpy.ndarray
            Gathered fat-image values F.
        water : numpy.ndarray
            Gathered water-image values W.

        Returns
        -------
        numpy.ndarray of float64
        """
        raw = raw.astype(np.float64, copy=False)
        total = raw + water.astype(np.float64, copy=False)
        with np.errstate(invalid="ignore", divide="ignore"):
            ff = 100.0 * raw / total
        ff[self._below_floor(total)] = np.nan
        return ff

    def below_noise(self, raw: np.ndarray, water: Optional[np.ndarray]) -> np.ndarray:
        """Voxels whose F + W is below the noise floor (or not finite).

        Parameters
        ----------
        raw : numpy.ndarray
            Gathered fat-image values F.
        water : numpy.ndarray
            Gathered water-image values W.

        Returns
        -------
        numpy.ndarray of bool
        """
        return self._below_floor(raw.astype(np.float64) + water.astype(np.float64))

    def _below_floor(self, total: np.ndarray) -> np.ndarray:
        """F + W below the noise floor, not positive, or NaN/inf (the one rule of both voxel_values
        and below_noise): F + W <= 0 has no fat fraction, even with a noise floor of 0."""
        return ~((total >= self.params["noise_floor"]) & (total > 0))

    def _extra(self, groups, n_groups, values, raw, water, codes) -> Dict[str, np.ndarray]:
        keep = np.isfinite(values)
        g = groups[keep]
        f = raw[keep].astype(np.float64)
        t = f + water[keep].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            weighted = 100.0 * np.bincount(g, weights=f, minlength=n_groups) / np.bincount(
                g, weights=t, minlength=n_groups)
        return {"ff_signal_weighted_pct": weighted}
