"""Shared fixtures of the composition tests: the 2-D phantom and its ROI masks.

Each test writes known voxel values into the ROIs of the 2-D phantom's
segmentation (uncropped, on the image grid) and computes the expected numbers
with plain numpy on the written arrays.
"""
from __future__ import annotations

from typing import Callable, Dict

import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib.phantom import make_phantom


@pytest.fixture(scope="session")
def ph():
    """The 2-D phantom (one ROI per muscle x side x level), segmentation not cropped."""
    return make_phantom(mode="2d", crop_segmentation=False)


@pytest.fixture(scope="session")
def area() -> float:
    """In-plane voxel area of the phantom in mm^2."""
    return 1.25 * 1.3  # phantom default in-plane spacing


@pytest.fixture(scope="session")
def masks(ph) -> Dict[str, np.ndarray]:
    """Segment name -> boolean voxel mask on the image array (k, j, i)."""
    seg = ph.segmentation
    return {s.name: seg.layers[0] == s.label_value for s in seg.segments}


@pytest.fixture(scope="session")
def image_like(ph) -> Callable[[np.ndarray], sitk.Image]:
    """Function: a voxel array -> an image on the phantom's grid."""
    def make(arr: np.ndarray) -> sitk.Image:
        img = sitk.GetImageFromArray(arr)
        img.CopyInformation(ph.image)
        return img
    return make
