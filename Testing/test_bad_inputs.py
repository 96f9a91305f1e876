"""Catalogue of awkward inputs a clinic really produces, and what ParaspinalFat does with each.

Every case is generated here (several variants per class, no hand-picked file) and the
test asserts the exact outcome: the correct number, NaN with a row warning, or a refusal
whose message names the file, segment, option or row.  Read it top to bottom as the
specification behind the README table "What it refuses and why".

Sections (GitHub issue #9): CT units and PDFF scale; unmeasurable ROIs and options;
grids and labels; sides; outputs.
"""
from __future__ import annotations

import numpy as np
import pytest

# ============================================================================ composition
# (CT not in HU, PDFF scale off by 10x, classifiers asked for more classes than the data has)
# Every image is written here on the 2-D phantom's grid: a CT phantom with air (-1000), fat
# (-100), soft tissue (+40), bone and metal in HU; PDFF maps on each storage scale; T1 images
# with one, two or three intensity populations per ROI.  Expected numbers are computed with
# numpy from the written arrays.
import functools as _comp_functools
import re as _comp_re
import warnings as _comp_warnings

import SimpleITK as _comp_sitk

from ParaspinalFatLib import measure as _comp_measure
from ParaspinalFatLib.composition.factory import make_method as _comp_make_method
from ParaspinalFatLib.composition.hounsfield import check_hounsfield_units as _comp_check_hu
from ParaspinalFatLib.errors import MeasurementError as _CompMeasurementError
from ParaspinalFatLib.errors import ParaspinalFatWarning as _CompWarning
from ParaspinalFatLib.segmentation import Segment as _CompSegment

_COMP_PIXEL_AREA = 1.25 * 1.3  # the phantom's in-plane voxel area, mm^2


@_comp_functools.lru_cache(maxsize=None)
def _comp_phantom():
    from ParaspinalFatLib.phantom import make_phantom
    return make_phantom(mode="2d", crop_segmentation=False)


def _comp_masks():
    seg = _comp_phantom().segmentation
    return {s.name: seg.layers[0] == s.label_value for s in seg.segments}


def _comp_image(arr, like=None):
    img = _comp_sitk.GetImageFromArray(arr)
    img.CopyInformation(like if like is not None else _comp_phantom().image)
    return img


def _comp_uv():
    """In-plane patient coordinates (mm) of every voxel, as the phantom draws its ellipses."""
    nk, nj, ni = _comp_sitk.GetArrayFromImage(_comp_phantom().image).shape
    kk, jj, ii = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    return (ii - (ni - 1) / 2) * 1.25, (jj - (nj - 1) / 2) * 1.3


# ----------------------------------------------------------------------------- 1: CT not in HU
def _comp_ct_hu(seed=0, metal=False, body_only=False, padding=False):
    """A CT phantom in HU (int16): air, subcutaneous fat, soft tissue, vertebra, muscles of fat + lean.

    ``metal``: a saturated implant (3071 HU) with streaks of -500..+2500 HU; ``body_only``: the field
    of view inside the body (no air: the skin and air replaced by fat); ``padding``: -3024 outside a
    scan circle (as scanners write outside the reconstructed field of view).
    """
    rng = np.random.default_rng(seed)
    u, v = _comp_uv()
    r = np.hypot(u / 72.0, v / 62.0)
    hu = rng.normal(40.0, 12.0, u.shape)                               # soft tissue
    hu[(r >= 0.92) & (r <= 1.0)] = rng.normal(-100.0, 15.0, u.shape)[(r >= 0.92) & (r <= 1.0)]
    air = r > 1.0
    hu[air] = (rng.normal(-100.0, 15.0, u.shape) if body_only else rng.normal(-1000.0, 12.0, u.shape))[air]
    body = (np.abs(u) <= 18.0) & (np.abs(v) <= 14.0)                   # vertebral body: trabecular bone
    hu[body] = rng.normal(250.0, 60.0, u.shape)[body]
    post = (np.abs(u) <= 6.0) & (v > 14.0) & (v <= 30.0)               # posterior elements: cortical bone
    hu[post] = rng.normal(900.0, 150.0, u.shape)[post]
    if metal:
        implant = np.hypot(u, v + 40.0) <= 6.0
        streak = (np.abs(v + 40.0) <= 1.3) & (r < 0.9) & ~implant
        hu[streak] = rng.uniform(-500.0, 2500.0, u.shape)[streak]
        hu[implant] = 3071.0
    if padding:
        hu[np.hypot(u / 74.0, v / 64.0) > 1.0] = -3024.0
    for m in _comp_masks().values():                                   # muscles: fat or lean voxels
        n = int(m.sum())
        is_fat = rng.random(n) < rng.uniform(0.1, 0.35)
        hu[m] = np.where(is_fat, rng.normal(-100.0, 20.0, n), rng.normal(45.0, 15.0, n))
    return np.round(hu).astype(np.int16)


#: how a scanner's stored values relate to HU when the rescale is not applied
_COMP_RAW = {
    "HU+1024 int16": lambda hu: (hu.astype(np.int32) + 1024).astype(np.int16),
    "HU+1024 uint16": lambda hu: (hu.astype(np.int32) + 1024).astype(np.uint16),
    "raw 0-4095 (metal saturated)": lambda hu: np.clip(hu.astype(np.int32) + 1024, 0, 4095).astype(np.uint16),
    "RescaleSlope 2 not applied": lambda hu: np.round((hu + 1024.0) / 2.0).astype(np.int16),
    "RescaleSlope 0.5 not applied": lambda hu: ((hu.astype(np.int32) + 1024) * 2).astype(np.int16),
    "slope 2 missing, intercept applied": lambda hu: (np.round((hu + 1024.0) / 2.0) - 1024).astype(np.int16),
}
#: where air (-1000 HU) and soft tissue (+40 HU) land in each stored variant
_COMP_RAW_PEAKS = {
    "HU+1024 int16": (24, 1064), "HU+1024 uint16": (24, 1064), "raw 0-4095 (metal saturated)": (24, 1064),
    "RescaleSlope 2 not applied": (12, 532), "RescaleSlope 0.5 not applied": (48, 2128),
    "slope 2 missing, intercept applied": (-1012, -492),
}


def _comp_ct_expected(hu, masks):
    """Per segment: fat / lean / undefined CSA (mm^2), mean HU and muscle-window mean, from the written HU."""
    out = {}
    for name, m in masks.items():
        x = hu[m].astype(float)
        fat = (x >= -190) & (x < -29)
        lean = (x >= -29) & (x < 151)
        out[name] = (fat.sum() * _COMP_PIXEL_AREA, lean.sum() * _COMP_PIXEL_AREA,
                     (~fat & ~lean).sum() * _COMP_PIXEL_AREA, x.mean(), x[lean].mean())
    return out


def _comp_assert_ct_rows(levels, expected):
    assert len(levels) == len(expected)
    for _, row in levels.iterrows():
        fat, lean, undefined, mean, mean_lean = expected[row["segment"]]
        assert row["fat_csa_mm2"] == pytest.approx(fat, rel=1e-9)
        assert row["lean_csa_mm2"] == pytest.approx(lean, rel=1e-9)
        assert row["undefined_csa_mm2"] == pytest.approx(undefined, rel=1e-9, abs=1e-9)
        assert row["mean"] == pytest.approx(mean, rel=1e-9)
        assert row["mean_muscle_window"] == pytest.approx(mean_lean, rel=1e-9)
        assert row["fat_area_ratio"] == pytest.approx(fat / (fat + lean + undefined), rel=1e-9)


@pytest.mark.parametrize("variant", ["HU int16", "HU float32", "HU with metal implant and bone",
                                     "HU with -3024 padding", "HU body only (no air)",
                                     "HU body only, cropped grid"])
def test_comp_ct_in_hu_is_measured_exactly(variant, tmp_path):
    """Correct HU images pass the unit check, whatever their air, bone or metal, and give the exact numbers."""
    masks = _comp_masks()
    hu = _comp_ct_hu(seed=3, metal="metal" in variant, body_only="body only" in variant,
                     padding="padding" in variant)
    stored = hu.astype(np.float32) if "float32" in variant else hu
    img = _comp_image(stored)
    if "cropped" in variant:  # the field of view cut to the body: a smaller grid, the ROIs inside it
        img = img[4:116, 4:96, :]
        assert (_comp_sitk.GetArrayFromImage(img) > -900).all()
    path = tmp_path / "ct.nrrd"
    _comp_sitk.WriteImage(img, str(path))
    res = _comp_measure(path, _comp_phantom().segmentation, map_kind="ct")
    _comp_assert_ct_rows(res.levels, _comp_ct_expected(hu, masks))
    assert not any("Hounsfield" in w for w in res.warnings)


@pytest.mark.parametrize("variant", list(_COMP_RAW))
@pytest.mark.parametrize("field", ["with air", "body only"])
def test_comp_ct_not_in_hu_is_refused(variant, field, tmp_path):
    """A CT stored without its rescale is refused, with the peaks found and how to convert."""
    hu = _comp_ct_hu(seed=5, metal="metal" in variant, body_only=field == "body only")
    path = tmp_path / f"raw_{len(variant)}.nrrd"
    _comp_sitk.WriteImage(_comp_image(_COMP_RAW[variant](hu)), str(path))
    with pytest.raises(_CompMeasurementError) as err:
        _comp_measure(path, _comp_phantom().segmentation, map_kind="ct")
    msg = str(err.value)
    assert msg.startswith(f"image {path}: not a CT in Hounsfield units?")
    for needle in ("RescaleSlope", "subtract 1024", "--map scalar", "ct_units_check=False"):
        assert needle in msg
    air, soft = _COMP_RAW_PEAKS[variant]
    if field == "with air":  # the lowest and highest peaks, read as air and soft tissue
        found = _comp_re.search(r"are at ~([+-]\d+)/([+-]\d+), not at -1000/\+40 HU", msg)
        assert found, msg
        assert abs(int(found.group(1)) - air) <= 30 and abs(int(found.group(2)) - soft) <= 30, msg
    else:  # one main peak: the body
        found = _comp_re.search(r"the main peak \(the body's fat and soft tissue\?\) is at ~([+-]\d+)", msg)
        assert found, msg
        assert abs(int(found.group(1)) - soft) <= 60, msg


def test_comp_ct_normalised_to_0_1_is_refused(tmp_path):
    hu = _comp_ct_hu(seed=6)
    norm = ((hu + 1024.0) / 4095.0).astype(np.float32)
    lo, hi = np.percentile(norm.astype(float).ravel(), [0.5, 99.5])
    path = tmp_path / "ct_norm.nii.gz"
    _comp_sitk.WriteImage(_comp_image(norm), str(path))
    with pytest.raises(_CompMeasurementError) as err:
        _comp_measure(path, _comp_phantom().segmentation, map_kind="ct")
    assert str(err.value).startswith(
        f"image {path}: the values span only {lo:.4g}..{hi:.4g} (0.5-99.5 percentile); a CT of the body in "
        f"Hounsfield units spans air (-1000), fat (-100) and muscle (+40 HU)")
    assert "--map scalar" in str(err.value)


def test_comp_ct_units_check_can_be_switched_off_by_a_user_who_knows():
    """The escape: ct_units_check=False measures the values as given and says so in method_params."""
    hu = _comp_ct_hu(seed=7)
    raw = _COMP_RAW["HU+1024 int16"](hu)
    with pytest.raises(_CompMeasurementError, match="not a CT in Hounsfield units"):
        _comp_make_method("ct", raw, source="image raw.nrrd")
    method = _comp_make_method("ct", raw, ct_units_check=False)
    assert method.params["ct_units_check"] is False and '"ct_units_check": false' in method.params_json()
    with pytest.raises(_CompMeasurementError, match="not a CT in Hounsfield units"):
        _comp_measure(_comp_image(raw), _comp_phantom().segmentation, map_kind="ct")
    res = _comp_measure(_comp_image(raw), _comp_phantom().segmentation, map_kind="ct", ct_units_check=False)
    masks = _comp_masks()
    row = res.levels.set_index("segment").loc["MF_L_L4/5"]
    assert row["mean"] == pytest.approx(raw[masks["MF_L_L4/5"]].astype(float).mean(), rel=1e-9)


def test_comp_real_cts_pass_and_their_raw_versions_are_refused(realdata):
    files = ["totalsegmentator/example_ct.nii.gz", "totalsegmentator/example_ct_sm.nii.gz",
             "tptbox/sub-ct_label-22_ct.nii.gz", "slicerio/CTChest4.nrrd"]
    for name in files:
        arr = _comp_sitk.GetArrayFromImage(_comp_sitk.ReadImage(str(realdata / name))).astype(np.int32)
        peaks = _comp_check_hu(arr, name)
        assert peaks and all(-1100 <= p.position < -600 or -200 <= p.position < 300 for p in peaks), name
        with pytest.raises(_CompMeasurementError, match=_comp_re.escape(name) + ": not a CT in Hounsfield units"):
            _comp_check_hu(arr + 1024, name)
    d = realdata / "totalsegmentator"
    levels = _comp_measure(d / "example_ct.nii.gz", d / "example_seg_fast_force_split.nii.gz", map_kind="ct").levels
    assert len(levels) and levels["lean_csa_mm2"].gt(0).all()


# ----------------------------------------------------------------------------- 2: PDFF scale off by 10x
def _comp_pdff(kind, seed=0):
    """(PDFF array in %, whether it has subcutaneous fat) for a kind of map content."""
    rng = np.random.default_rng(seed)
    u, v = _comp_uv()
    pct = np.zeros(u.shape)
    ring = (np.hypot(u / 72.0, v / 62.0) >= 0.92) & (np.hypot(u / 72.0, v / 62.0) <= 1.0)
    low, high = {"fat-poor 24-45 %": (24.0, 45.0), "fat-poor 10-14 %": (10.0, 14.0),
                 "fat-poor 6-13 %": (6.0, 13.0), "fat-poor 1.0-1.4 %": (1.0, 1.4),
                 "fat-poor 2-12 %": (2.0, 12.0),
                 "fat-poor 1.5-4.5 %": (1.5, 4.5)}.get(kind, (None, None))
    for m in _comp_masks().values():
        n = int(m.sum())
        if low is not None:
            pct[m] = rng.uniform(low, high, n)
        elif kind == "near 100 % with noise":
            pct[m] = 100.0 + rng.normal(0.0, 4.0, n)
        elif kind == "near 0 % with noise":
            pct[m] = 1.0 + rng.normal(0.0, 3.0, n)
        else:  # "muscle with fat" -- 30 % fat voxels of 60-95 %, lean 4-8 %
            is_fat = rng.random(n) < 0.3
            pct[m] = np.where(is_fat, rng.uniform(60.0, 95.0, n), rng.uniform(4.0, 8.0, n))
    if low is None:
        pct[ring] = 92.0
    return pct


_COMP_FULL = {"0-1": 1.0, "0-100": 100.0, "0-1000": 1000.0}


@pytest.mark.parametrize("stored,declared,content,looks", [
    ("0-100", "0-1000", "fat-poor 24-45 %", "0-100"),   # 34.5 % would read 3.45 %
    ("0-1", "0-100", "muscle with fat", "0-1"),
    ("0-1", "0-1000", "muscle with fat", "0-1"),
    ("0-100", "0-1000", "fat-poor 2-12 %", "0-100"),
    ("0-100", "0-100", "fat-poor 1.5-4.5 %", ""),       # no smaller scale fits: not a PDFF map?
])
def test_comp_declared_scale_that_puts_the_whole_map_below_5_percent_is_refused(stored, declared, content, looks,
                                                                              tmp_path):
    pct = _comp_pdff(content, seed=1)
    arr = (pct * _COMP_FULL[stored] / 100.0).astype(np.float32)
    path = tmp_path / "pdff.nrrd"
    _comp_sitk.WriteImage(_comp_image(arr), str(path))
    p995 = float(np.percentile(arr.astype(float).ravel(), 99.5))
    with pytest.raises(_CompMeasurementError) as err:
        _comp_measure(path, _comp_phantom().segmentation, pdff_scale=declared)
    msg = str(err.value)
    assert msg.startswith(f"image {path}: under the declared PDFF scale {declared} the whole map is below 5 %")
    assert f"(99.5th percentile {p995:.4g} = {p995 * 100.0 / _COMP_FULL[declared]:.3g} %)" in msg
    if looks:
        assert f"the values look like scale {looks}" in msg and f"declare --pdff-scale {looks}" in msg
    else:
        assert "is this really a fat-fraction map?" in msg


@pytest.mark.parametrize("stored,declared,content,target", [
    ("0-1000", None, "fat-poor 10-14 %", "0-1000"),     # detected 0-100: muscle reads 100-140 %
    ("0-1000", "0-100", "fat-poor 10-14 %", "0-1000"),  # declared 0-100: the same
    ("0-1000", None, "fat-poor 6-13 %", "0-1000"),      # mean ~95 %, but > 25 % of the voxels above 110 %
    ("0-100", None, "fat-poor 1.0-1.4 %", "0-100"),     # detected 0-1: muscle reads 100-140 %
])
def test_comp_roi_fat_fraction_above_100_percent_is_refused(stored, declared, content, target, tmp_path):
    pct = _comp_pdff(content, seed=2)
    arr = (pct * _COMP_FULL[stored] / 100.0).astype(np.float32)
    path = tmp_path / "pdff.nrrd"
    _comp_sitk.WriteImage(_comp_image(arr), str(path))
    read_as = declared or {"0-1000": "0-100", "0-100": "0-1"}[stored]
    with _comp_warnings.catch_warnings():
        _comp_warnings.simplefilter("ignore", _CompWarning)  # the detected scale is warned about
        with pytest.raises(_CompMeasurementError) as err:
            _comp_measure(path, _comp_phantom().segmentation, pdff_scale=declared)
    msg = str(err.value)
    found = _comp_re.search(r"mean voxel fat fraction ([\d.]+) % with (\d+) % of the voxels above 110 % under the "
                            r"(declared|detected) PDFF scale (\S+?)[ :]", msg)
    assert found, msg
    assert found.group(3) == ("declared" if declared else "detected") and found.group(4) == read_as
    means = {}
    for name, m in _comp_masks().items():  # the ROI named first is one of the offending ROIs
        x = arr[m].astype(float) * 100.0 / _COMP_FULL[read_as]
        if x.mean() > 105.0 or (x > 110.0).mean() >= 0.25:
            means[f"{x.mean():.4g}"] = name
    assert found.group(1) in means, (msg, means)
    assert any(w in msg for w in list(means.values()) + ["multifidus", "erector_spinae", "psoas"])  # the ROI
    assert "a fat fraction cannot exceed 100 %" in msg
    assert f"the map looks stored as {target}" in msg and f"declare --pdff-scale {target}" in msg


@pytest.mark.parametrize("content,declared", [
    ("near 100 % with noise", "0-100"), ("near 100 % with noise", None),
    ("near 0 % with noise", "0-100"), ("near 0 % with noise", None),
    ("fat-poor 2-12 %", "0-100"), ("fat-poor 2-12 %", None),   # a genuine fat-poor 0-100 crop
    ("muscle with fat", "0-1000"), ("muscle with fat", "0-1"),
])
def test_comp_genuine_pdff_maps_pass_with_exact_means(content, declared):
    """Noise around 0 and 100 %, fat-poor 0-100 crops and correctly declared scales are measured exactly."""
    stored = declared or "0-100"
    pct = _comp_pdff(content, seed=3)
    arr = (pct * _COMP_FULL[stored] / 100.0).astype(np.float32)
    with _comp_warnings.catch_warnings(record=True) as caught:
        _comp_warnings.simplefilter("always")
        levels = _comp_measure(_comp_image(arr), _comp_phantom().segmentation, pdff_scale=declared).levels
    masks = _comp_masks()
    for _, row in levels.iterrows():
        x = arr[masks[row["segment"]]].astype(float) * 100.0 / _COMP_FULL[stored]
        assert row["fat_fraction_pct"] == pytest.approx(x.mean(), rel=1e-6, abs=1e-9)
        assert row["pdff_scale"] == stored
    texts = [str(w.message) for w in caught]
    assert any("PDFF scale detected as 0-100" in t for t in texts) == (declared is None)
    assert not any("no part of the map reaches" in t for t in texts)


def test_comp_0_100_map_with_fat_declared_0_1000_is_warned_about():
    """The ambiguous band: subcutaneous fat at 92 stored reads 9.2 %, which a fat-poor 0-1000 crop could also
    give -- measured as declared, with a warning naming the scale the data may be stored in."""
    pct = _comp_pdff("muscle with fat", seed=4)
    arr = pct.astype(np.float32)  # stored 0-100
    with pytest.warns(_CompWarning, match=r"under the declared PDFF scale 0-1000 no part of the map reaches 20 % "
                                          r"\(99\.5th percentile 9\.2 %\).*declare --pdff-scale 0-100"):
        levels = _comp_measure(_comp_image(arr), _comp_phantom().segmentation, pdff_scale="0-1000").levels
    masks = _comp_masks()
    for _, row in levels.iterrows():
        assert row["fat_fraction_pct"] == pytest.approx(arr[masks[row["segment"]]].astype(float).mean() / 10.0,
                                                        rel=1e-6)


# ----------------------------------------------------------------------------- 6: classes the data do not show
#: T1 intensity populations of every ROI: (share, mean, SD) per population
_COMP_POPULATIONS = {
    1: [(1.0, 300.0, 25.0)],
    2: [(0.5, 300.0, 20.0), (0.5, 1000.0, 60.0)],                       # k-means 3 classes halves this fat
    3: [(0.55, 300.0, 20.0), (0.15, 650.0, 25.0), (0.30, 1000.0, 30.0)],  # lean, partial volume, fat
}


def _comp_t1(n_populations, seed=0, reference=False):
    """(image, segmentation, true fat voxels per segment) with ``n_populations`` in every ROI."""
    rng = np.random.default_rng(seed)
    ph = _comp_phantom()
    arr = rng.normal(150.0, 10.0, _comp_sitk.GetArrayFromImage(ph.image).shape)
    pops = _COMP_POPULATIONS[n_populations]
    truth = {}
    for name, m in _comp_masks().items():
        n = int(m.sum())
        which = rng.choice(len(pops), size=n, p=[p[0] for p in pops])
        arr[m] = rng.normal(np.take([p[1] for p in pops], which), np.take([p[2] for p in pops], which))
        truth[name] = int((which == len(pops) - 1).sum()) if n_populations > 1 else 0
    seg = ph.segmentation
    if reference:  # a subcutaneous fat ROI on each level slice
        layers = seg.layers.copy()
        for k in (10, 18, 26):
            layers[0, k, 2:6, 40:80] = 99
            ref = (pops[-1][1], pops[-1][2]) if n_populations > 1 else (1000.0, 30.0)  # like the ROIs' fat
            arr[k, 2:6, 40:80] = rng.normal(ref[0], ref[1], (4, 40))
        seg = seg.with_layers(layers, seg.geometry)
        seg.segments = list(ph.segmentation.segments) + [_CompSegment("subcutaneous_fat", 0, 99)]
    return _comp_image(arr.astype(np.float32)), seg, truth


_COMP_CASES = [(c, p, k) for c in ("gmm", "kmeans", "fcm") for p in (1, 2, 3) for k in (2, 3)]
_COMP_CASES += [(c, p, 2) for c in ("otsu", "reference") for p in (1, 2, 3)]


@pytest.mark.parametrize("classifier,n_populations,n_classes", _COMP_CASES)
def test_comp_every_classifier_flags_classes_the_data_do_not_show(classifier, n_populations, n_classes):
    img, seg, truth = _comp_t1(n_populations, seed=10 + n_populations, reference=classifier == "reference")
    extra = {"reference_segment": "subcutaneous_fat", "classifier_params": {"k": 3}} if classifier == "reference" \
        else {}
    with _comp_warnings.catch_warnings():
        _comp_warnings.simplefilter("ignore", _CompWarning)
        levels = _comp_measure(img, seg, map_kind="t1", classifier=classifier, n_classes=n_classes, **extra).levels
    assert len(levels) == 18
    one = "the intensities show no clearly separate fat population (2-Gaussian mixture vs fewer: BIC gain"
    two = f"the intensities show 2 populations, not the 3 classes asked for (3-Gaussian mixture vs fewer"
    for _, row in levels.iterrows():
        w = row["warnings"]
        if n_populations == 1:
            assert f"{classifier}: {one}" in w, (row["segment"], w)
        elif n_populations == 2 and n_classes == 3:
            assert f"{classifier}: {two}" in w and "use n_classes=2" in w, (row["segment"], w)
        else:
            assert "the intensities show" not in w, (row["segment"], w)
            if n_populations == 2:  # supported: the true fat area
                assert row["fat_csa_mm2"] == pytest.approx(truth[row["segment"]] * _COMP_PIXEL_AREA, rel=0.03)
        if classifier == "gmm":  # the overlap is said once, by the shared rule
            assert "overlap (Ashman's D" not in w


def test_comp_cli_refuses_raw_ct_and_no_ct_units_check_measures_it(tmp_path, capsys):
    """The CLI: one line naming the file and the escape flag (exit 2); the flag measures the values as given."""
    from ParaspinalFatLib.cli import main
    from ParaspinalFatLib.io.slicer_seg import write_seg_nrrd

    ph = _comp_phantom()
    for name, shift in (("raw_a.nrrd", 1024), ("raw_b.nrrd", 2048)):
        raw = _COMP_RAW["HU+1024 int16"](_comp_ct_hu(seed=3)) + (shift - 1024)
        image = tmp_path / name
        _comp_sitk.WriteImage(_comp_image(raw.astype(np.int16)), str(image))
        seg = tmp_path / "seg.seg.nrrd"
        write_seg_nrrd(ph.segmentation, seg)
        capsys.readouterr()
        code = main(["measure", "--image", str(image), "--segmentation", str(seg), "--map", "ct",
                     "--output", str(tmp_path / "a.csv")])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err
        assert f"{image}: not a CT in Hounsfield units" in err and "--no-ct-units-check" in err
        assert not (tmp_path / "a.csv").exists()
        code = main(["measure", "--image", str(image), "--segmentation", str(seg), "--map", "ct",
                     "--no-ct-units-check", "--output", str(tmp_path / "b.csv")])
        assert code == 0
        import pandas as pd
        table = pd.read_csv(tmp_path / "b.csv").set_index("segment")
        masks = _comp_masks()
        assert table.loc["MF_L_L4/5", "mean"] == pytest.approx(raw[masks["MF_L_L4/5"]].astype(float).mean(),
                                                                rel=1e-9)
        assert '"ct_units_check": false' in table.loc["MF_L_L4/5", "method_params"]


# --- end composition ---

# ============================================================================ measurement
# (unmeasurable ROI -> NaN, option ranges, grades file options, nothing measurable, warnings on error)
# Not measurable = NaN + row warning, options checked against their meaning before any file
# is read, grades file made with the run's grading options, an empty per-level result is an
# error, and warnings are shown as they happen (also when the run then fails).  Expected
# numbers are computed here with numpy from the written voxel arrays.
import functools as _meas_functools
import json as _meas_json
import re as _meas_re
import warnings as _meas_warnings

import pandas as _meas_pd
import SimpleITK as _meas_sitk

from ParaspinalFatLib import measure as _meas_measure
from ParaspinalFatLib.cli import main as _meas_cli
from ParaspinalFatLib.errors import (InputError as _MeasInputError, LevelError as _MeasLevelError,
                                     LevelWarning as _MeasLevelWarning,
                                     ParaspinalFatWarning as _MeasWarning)
from ParaspinalFatLib.geometry import Geometry as _MeasGeometry

_MEAS_AREA = 1.25 * 1.3  # in-plane voxel area of the default phantom (mm^2)
_MEAS_UNMEASURABLE = "fat/lean composition not measurable (NaN)"


@_meas_functools.lru_cache(maxsize=None)
def _meas_phantom(mode="2d", crop=False):
    from ParaspinalFatLib.phantom import make_phantom

    return make_phantom(mode=mode, crop_segmentation=crop)


def _meas_masks(ph):
    seg = ph.segmentation
    return {s.name: seg.layers[0] == s.label_value for s in seg.segments}


def _meas_like(ph, arr):
    img = _meas_sitk.GetImageFromArray(arr)
    img.CopyInformation(ph.image)
    return img


def _meas_quiet(*args, **kwargs):
    """measure() with its (expected) warnings silenced, e.g. the detected PDFF scale."""
    with _meas_warnings.catch_warnings():
        _meas_warnings.simplefilter("ignore")
        return _meas_measure(*args, **kwargs)


def _meas_dixon_arrays(ph, seed):
    rng = np.random.default_rng(seed)
    shape = _meas_sitk.GetArrayFromImage(ph.image).shape
    fat = rng.uniform(20, 400, shape).astype(np.float32)
    water = rng.uniform(50, 900, shape).astype(np.float32)
    return fat, water


def _meas_row(table, segment, level=None):
    rows = table[table["segment"] == segment]
    if level is not None:
        rows = rows[rows["level"] == level]
    assert len(rows) == 1, (segment, level, len(rows))
    return rows.iloc[0]


def _meas_assert_unmeasurable(row, n_voxels, area_per_voxel=_MEAS_AREA, csa="csa_mm2",
                              split=("fat_csa_mm2", "lean_csa_mm2", "undefined_csa_mm2", "fat_area_ratio")):
    assert row["n_voxels"] == n_voxels
    assert row[csa] == pytest.approx(n_voxels * area_per_voxel, rel=1e-12)  # the area stays measured
    for col in split:
        assert np.isnan(row[col]), col  # NaN, never 0
    assert _MEAS_UNMEASURABLE in row["warnings"]


# ----------------------------------------------------------------------------- 3: unmeasurable ROI
@pytest.mark.parametrize("segment", ["MF_L_L4/5", "PS_R_L3/4", "ES_L_L5/S1"])
@pytest.mark.parametrize("padding, noise_floor", [(0.0, None), (0.0, 10.0), (2.0, 10.0)])
def test_meas_dixon_roi_on_zero_padding_is_nan_everywhere(segment, padding, noise_floor):
    ph = _meas_phantom()
    masks = _meas_masks(ph)
    fat, water = _meas_dixon_arrays(ph, seed=len(segment))
    m = masks[segment]
    fat[m], water[m] = padding, padding  # F + W = 0 or 4: below the noise floor (default 2 % of p99.5 = ~22)
    total = fat.astype(float) + water.astype(float)
    floor = noise_floor if noise_floor is not None else 0.02 * np.percentile(total, 99.5)
    res = _meas_quiet(None, ph.segmentation, map_kind="dixon", fat=_meas_like(ph, fat),
                      water=_meas_like(ph, water), noise_floor=noise_floor, per_slice=True, whole_roi=True)
    n = int(m.sum())
    row = _meas_row(res.levels, segment)
    _meas_assert_unmeasurable(row, n)
    assert row["n_below_noise"] == n and row["n_nan"] == 0
    for col in ("mean", "median", "fat_fraction_pct", "ff_signal_weighted_pct", "grade_fat_pct"):
        assert np.isnan(row[col]), col
    assert _meas_pd.isna(row["goutallier"]) and _meas_pd.isna(row["kjaer"])
    assert f"all {n} voxels are excluded ({n} below the noise floor F+W < {floor:g})" in row["warnings"]
    others = res.levels[res.levels["segment"] != segment]
    assert (others["warnings"] == "").all() and np.isfinite(others["fat_csa_mm2"]).all()
    # per-slice table (the ROI's one slice) and whole-ROI table
    _meas_assert_unmeasurable(_meas_row(res.slices, segment), n)
    roi = _meas_row(res.rois, segment)
    vox_ml = _MEAS_AREA * 4.0 / 1000.0
    _meas_assert_unmeasurable(roi, n, vox_ml, csa="volume_ml",
                              split=("fat_volume_ml", "lean_volume_ml", "undefined_volume_ml", "fat_volume_ratio"))
    assert res.slices.loc[res.slices["segment"] != segment, "warnings"].eq("").all()
    # the grades of that side are NaN and carry the reason
    grades = res.grades()
    side = row["side"]
    g = grades[(grades["muscle"] == row["muscle"]) & (grades["level"] == row["level"])].set_index("side")
    assert np.isnan(g.loc[side, "goutallier"]) and np.isnan(g.loc["combined", "goutallier"])
    assert f"{segment} ({row['level']}): {_MEAS_UNMEASURABLE}" in g.loc[side, "warnings"]
    assert f"{segment} ({row['level']}): {_MEAS_UNMEASURABLE}" in g.loc["combined", "warnings"]
    assert g.loc[_MEAS_OPPOSITE[side], "warnings"] == ""


_MEAS_OPPOSITE = {"left": "right", "right": "left"}


@pytest.mark.parametrize("segment, fraction", [("MF_R_L4/5", 0.25), ("ES_L_L3/4", 0.5), ("PS_L_L5/S1", 0.9)])
def test_meas_dixon_roi_partly_below_noise_is_measured_on_the_classified_part(segment, fraction):
    ph = _meas_phantom()
    masks = _meas_masks(ph)
    fat, water = _meas_dixon_arrays(ph, seed=7)
    m = masks[segment]
    idx = np.argwhere(m)
    gone = idx[: int(round(fraction * len(idx)))]
    fat[tuple(gone.T)] = 0.0
    water[tuple(gone.T)] = 0.0
    res = _meas_quiet(None, ph.segmentation, map_kind="dixon", fat=_meas_like(ph, fat),
                      water=_meas_like(ph, water), noise_floor=10.0)
    row = _meas_row(res.levels, segment)
    f, w = fat[m].astype(float), water[m].astype(float)
    keep = f + w >= 10.0
    ff = 100.0 * f[keep] / (f[keep] + w[keep])
    assert row["n_below_noise"] == len(gone) == (~keep).sum()
    assert row["csa_mm2"] == pytest.approx(m.sum() * _MEAS_AREA, rel=1e-12)
    assert row["fat_csa_mm2"] == pytest.approx((ff >= 50).sum() * _MEAS_AREA, rel=1e-12)
    assert row["lean_csa_mm2"] == pytest.approx((ff < 50).sum() * _MEAS_AREA, rel=1e-12)
    assert row["fat_area_ratio"] == pytest.approx((ff >= 50).mean(), rel=1e-12)
    assert row["fat_fraction_pct"] == pytest.approx(ff.mean(), rel=1e-9)
    assert row["warnings"] == ""


@pytest.mark.parametrize("classifier, n_classes, value", [("gmm", 3, 400.0), ("gmm", 2, 0.0), ("kmeans", 2, 123.5),
                                                          ("otsu", 2, 400.0), ("fcm", 3, 77.0)])
def test_meas_t1_roi_of_one_constant_intensity_is_nan_with_row_warning(classifier, n_classes, value):
    ph = _meas_phantom()
    masks = _meas_masks(ph)
    rng = np.random.default_rng(5)
    img = rng.normal(150, 10, _meas_sitk.GetArrayFromImage(ph.image).shape)
    for m in masks.values():  # two clear populations in every ROI ...
        n = int(m.sum())
        img[m] = np.where(rng.random(n) < 0.3, rng.normal(1000, 30, n), rng.normal(300, 20, n))
    segment = "ES_R_L3/4"
    img[masks[segment]] = value  # ... but one ROI is a single intensity
    res = _meas_quiet(_meas_like(ph, img.astype(np.float32)), ph.segmentation, map_kind="t1",
                      classifier=classifier, n_classes=n_classes, per_slice=True)
    n = int(masks[segment].sum())
    for table in (res.levels, res.slices):
        row = _meas_row(table, segment)
        _meas_assert_unmeasurable(row, n)
        assert row["mean"] == pytest.approx(value) and row["sd"] == 0.0  # the intensities are measured
        assert f"none of the {n} voxels could be classified" in row["warnings"]
    other = _meas_row(res.levels, "ES_L_L3/4")
    assert np.isfinite(other["fat_csa_mm2"]) and _MEAS_UNMEASURABLE not in other["warnings"]


@pytest.mark.parametrize("level, k", [("L3/4", 26), ("L4/5", 18), ("L5/S1", 10)])
def test_meas_3d_dixon_level_slice_on_zero_padding_per_slice_and_whole_roi(level, k):
    """A 3-D muscle whose level slice is zero padding (a slice missing from the Dixon series)."""
    ph = _meas_phantom("3d")
    masks = _meas_masks(ph)
    fat, water = _meas_dixon_arrays(ph, seed=k)
    fat[k], water[k] = 0.0, 0.0
    res = _meas_quiet(None, ph.segmentation, map_kind="dixon", fat=_meas_like(ph, fat),
                      water=_meas_like(ph, water), noise_floor=10.0, per_slice=True, whole_roi=True)
    for name in ("multifidus_left", "psoas_right"):
        m = masks[name]
        _meas_assert_unmeasurable(_meas_row(res.levels, name, level), int(m[k].sum()))
        per = res.slices[res.slices["segment"] == name].set_index("slice_index")
        _meas_assert_unmeasurable(per.loc[k], int(m[k].sum()))
        for kk in (k - 1, k + 1):  # the neighbouring slices are measured
            f, w = fat[kk][m[kk]].astype(float), water[kk][m[kk]].astype(float)
            ff = 100 * f / (f + w)
            assert per.loc[kk, "fat_csa_mm2"] == pytest.approx((ff >= 50).sum() * _MEAS_AREA, rel=1e-12)
            assert per.loc[kk, "warnings"] == ""
        # whole ROI: the classified voxels of all other slices
        f, w = fat[m].astype(float), water[m].astype(float)
        keep = f + w >= 10.0
        ff = 100 * f[keep] / (f[keep] + w[keep])
        roi = _meas_row(res.rois, name)
        assert roi["n_below_noise"] == int(m[k].sum())
        assert roi["fat_volume_ml"] == pytest.approx((ff >= 50).sum() * _MEAS_AREA * 4.0 / 1000, rel=1e-12)
        assert roi["fat_volume_ratio"] == pytest.approx((ff >= 50).mean(), rel=1e-12)
    other = [lv for lv in ("L3/4", "L4/5", "L5/S1") if lv != level]
    assert (res.levels.loc[res.levels["level"].isin(other), "warnings"] == "").all()


@pytest.mark.parametrize("segment", ["MF_L_L4/5", "MF_R_L4/5", "PS_L_L3/4", "ES_R_L5/S1"])
def test_meas_summary_asymmetry_with_one_side_unmeasurable_is_nan_not_200_pct(segment):
    ph = _meas_phantom()
    masks = _meas_masks(ph)
    fat, water = _meas_dixon_arrays(ph, seed=11)
    m = masks[segment]
    fat[m], water[m] = 0.0, 0.0
    res = _meas_quiet(None, ph.segmentation, map_kind="dixon", fat=_meas_like(ph, fat),
                      water=_meas_like(ph, water), noise_floor=10.0)
    row = _meas_row(res.levels, segment)
    muscle, level, side = row["muscle"], row["level"], row["side"]
    lv = res.levels
    partner = lv.loc[(lv["muscle"] == muscle) & (lv["level"] == level) & (lv["side"] != side), "segment"]
    assert len(partner) == 1
    s = res.summary()
    here = s[(s["muscle"] == muscle) & (s["level"] == level)].set_index("metric")
    reason = f"{segment} ({level}): {_MEAS_UNMEASURABLE}"
    for metric in ("lean_csa_mm2", "fat_csa_mm2", "fat_area_ratio", "fat_fraction_pct"):
        r = here.loc[metric]
        assert np.isnan(r[side]) and np.isfinite(r[_MEAS_OPPOSITE[side]])
        assert np.isnan(r["asymmetry_pct"]) and np.isnan(r["lr_mean"])  # not 200 %
        assert reason in r["warnings"]
    # the total CSA is measurable on both sides: its asymmetry is the hand value
    a, b = m.sum() * _MEAS_AREA, masks[partner.iloc[0]].sum() * _MEAS_AREA
    assert here.loc["csa_mm2", "asymmetry_pct"] == pytest.approx(abs(a - b) / ((a + b) / 2) * 100, rel=1e-12)
    # the lower-lumbar mean of that side is NaN (one of its three levels is not measurable)
    prof = s[(s["muscle"] == muscle) & (s["level"] == "mean L3/4-L5/S1")].set_index("metric")
    assert np.isnan(prof.loc["lean_csa_mm2", side]) and np.isfinite(prof.loc["lean_csa_mm2", _MEAS_OPPOSITE[side]])
    assert reason in prof.loc["lean_csa_mm2", "warnings"]
    wide = res.summary(wide=True)
    assert np.isnan(wide.loc[0, f"{muscle} {level} asymmetry_pct lean_csa_mm2"])
    assert reason in wide.loc[0, "warnings"]
    # other muscles' summary rows carry no warning
    assert (s.loc[s["muscle"] != muscle, "warnings"] == "").all()


def _meas_t1_case(seed=3):
    ph = _meas_phantom()
    masks = _meas_masks(ph)
    rng = np.random.default_rng(seed)
    img = rng.normal(150, 10, _meas_sitk.GetArrayFromImage(ph.image).shape)
    for m in masks.values():
        n = int(m.sum())
        img[m] = np.where(rng.random(n) < 0.3, rng.normal(1000, 30, n), rng.normal(300, 20, n))
    return ph, _meas_like(ph, img.astype(np.float32))


@pytest.mark.parametrize("level", ["L3/4", "L4/5", "L5/S1"])
def test_meas_row_warnings_are_carried_into_summary_and_grades(level, tmp_path):
    """T1 psoas rows always carry a composition warning: summary and grades must keep it."""
    ph, img = _meas_t1_case()
    res = _meas_quiet(img, ph.segmentation, map_kind="t1", n_classes=2, classifier="kmeans")
    ps = res.levels[(res.levels["muscle"] == "psoas") & (res.levels["level"] == level)]
    assert len(ps) == 2 and ps["warnings"].str.contains("psoas on T1").all()
    expected = [f"{seg} ({level}): {w}" for seg, w in zip(ps["segment"], ps["warnings"])]
    s = res.summary()
    for _, r in s[(s["muscle"] == "psoas") & (s["level"] == level)].iterrows():
        for text in expected:
            assert text in r["warnings"]
    prof = s[(s["muscle"] == "psoas") & (s["level"] == "mean L3/4-L5/S1")]
    assert prof["warnings"].map(lambda t: all(x in t for x in expected)).all()
    assert (s.loc[s["muscle"] == "multifidus", "warnings"] == "").all()
    g = res.grades()
    rows = g[(g["muscle"] == "psoas") & (g["level"] == level)].set_index("side")
    for side, text in zip(ps["side"], expected):
        assert text in rows.loc[side, "warnings"] and text in rows.loc["combined", "warnings"]
    assert (g.loc[g["muscle"] == "erector_spinae", "warnings"] == "").all()
    # ... and through the CSV files of the CLI
    from ParaspinalFatLib.phantom import write_phantom

    paths = write_phantom(ph, tmp_path / "in")
    _meas_sitk.WriteImage(img, str(tmp_path / "in" / "t1.nrrd"))
    out = tmp_path / "case.csv"
    with _meas_warnings.catch_warnings():
        _meas_warnings.simplefilter("ignore")
        rc = _meas_cli(["measure", "--image", str(tmp_path / "in" / "t1.nrrd"), "--segmentation",
                        str(paths["segmentation"]), "--map", "t1", "--classifier", "kmeans", "--n-classes", "2",
                        "--output", str(out)])
    assert rc == 0
    for suffix in ("_summary", "_grades"):
        table = _meas_pd.read_csv(tmp_path / f"case{suffix}.csv", keep_default_na=False)
        hit = table[(table["muscle"] == "psoas") & (table["level"] == level)]
        assert len(hit) and hit["warnings"].str.contains(f"\\({_meas_re.escape(level)}\\): psoas on T1").all()
    wide = _meas_pd.read_csv(tmp_path / "case_summary_wide.csv")
    assert "psoas on T1" in wide.loc[0, "warnings"]


# ----------------------------------------------------------------------------- 4: option ranges
_MEAS_BAD_OPTIONS = [
    ("fat_threshold_pct", 150, "fat_threshold_pct (--fat-threshold) must be between 0 and 100 %, got 150"),
    ("fat_threshold_pct", -10, "fat_threshold_pct (--fat-threshold) must be between 0 and 100 %, got -10"),
    ("fat_threshold_pct", 100.5, "fat_threshold_pct (--fat-threshold) must be between 0 and 100 %, got 100.5"),
    ("fat_threshold_pct", float("nan"), "fat_threshold_pct (--fat-threshold) must be a finite number, got nan"),
    ("fat_threshold_pct", float("inf"), "fat_threshold_pct (--fat-threshold) must be a finite number, got inf"),
    ("fat_threshold_pct", "50", "fat_threshold_pct (--fat-threshold) must be a number, got '50'"),
    ("noise_floor", -1.0, "noise_floor (--noise-floor) must be >= 0 (a signal level of F+W"),
    ("noise_floor", float("nan"), "noise_floor (--noise-floor) must be a finite number, got nan"),
    ("noise_floor", float("inf"), "noise_floor (--noise-floor) must be a finite number, got inf"),
    ("noise_floor_fraction", 2.0, "noise_floor_fraction must be a fraction in [0, 1) of the 99.5th percentile"),
    ("noise_floor_fraction", 1.0, "noise_floor_fraction must be a fraction in [0, 1)"),
    ("noise_floor_fraction", -0.01, "noise_floor_fraction must be a fraction in [0, 1)"),
    ("noise_floor_fraction", float("nan"), "noise_floor_fraction must be a finite number, got nan"),
    ("fat_window", (float("nan"), -29.0), "fat_window (--fat-window) must be two finite numbers LOW,HIGH in HU"),
    ("fat_window", (-190.0, float("-inf")), "fat_window (--fat-window) must be two finite numbers LOW,HIGH in HU"),
    ("fat_window", (-190.0, -29.0, 5.0), "fat_window (--fat-window) must be two numbers LOW,HIGH in HU"),
    ("muscle_window", ("low", "high"), "muscle_window (--muscle-window) must be two numbers LOW,HIGH in HU"),
    ("muscle_window", (-29.0, float("inf")), "muscle_window (--muscle-window) must be two finite numbers"),
    ("myosteatosis_cutoff_hu", float("nan"), "myosteatosis_cutoff_hu (--myosteatosis-cutoff) must be a finite"),
    ("myosteatosis_cutoff_hu", float("-inf"), "myosteatosis_cutoff_hu (--myosteatosis-cutoff) must be a finite"),
    ("n_classes", 4, "n_classes (--n-classes) must be 2 (lean/fat) or 3 (lean/undefined/fat), got 4"),
    ("n_classes", 1, "n_classes (--n-classes) must be 2 (lean/fat) or 3 (lean/undefined/fat), got 1"),
    ("n_classes", 2.5, "n_classes (--n-classes) must be a whole number, got 2.5"),
    ("n_classes", True, "n_classes (--n-classes) must be a number, got True"),
    ("n_slices", 2, "n_slices (--n-slices) must be an odd number >= 1"),
    ("n_slices", 0, "n_slices (--n-slices) must be an odd number >= 1"),
    ("n_slices", -3, "n_slices (--n-slices) must be an odd number >= 1"),
    ("n_slices", 3.5, "n_slices (--n-slices) must be a whole number, got 3.5"),
    ("goutallier_cutoffs", (10, 25, 40, 160),
     "Goutallier cut-offs (goutallier_cutoffs, --goutallier-cutoffs) must lie between 0 and 100 %"),
    ("goutallier_cutoffs", (-5, 25, 40, 60),
     "Goutallier cut-offs (goutallier_cutoffs, --goutallier-cutoffs) must lie between 0 and 100 %"),
    ("goutallier_cutoffs", (10, 40, 25, 60),
     "Goutallier cut-offs (goutallier_cutoffs, --goutallier-cutoffs) must be strictly increasing"),
    ("goutallier_cutoffs", (10, 25, 40),
     "Goutallier cut-offs (goutallier_cutoffs, --goutallier-cutoffs): expected 4 values"),
    ("goutallier_cutoffs", (10, float("nan"), 40, 60),
     "Goutallier cut-offs (goutallier_cutoffs, --goutallier-cutoffs) must be finite numbers"),
    ("kjaer_cutoffs", (50, 10), "Kjaer cut-offs (kjaer_cutoffs, --kjaer-cutoffs) must be strictly increasing"),
    ("kjaer_cutoffs", (10, 150), "Kjaer cut-offs (kjaer_cutoffs, --kjaer-cutoffs) must lie between 0 and 100 %"),
    ("kjaer_cutoffs", (10, float("inf")), "Kjaer cut-offs (kjaer_cutoffs, --kjaer-cutoffs) must be finite"),
    ("grade_source", "fat_ratio",
     "grade_source (--grade-source) must be one of auto, fat_fraction_pct, fat_area_pct; got 'fat_ratio'"),
    ("on_empty", "skip", "on_empty (--on-empty) must be one of error, keep; got 'skip'"),
    ("muscles", None, "muscles (--muscles) must be 'auto', 'all' or a list of muscle names"),
    ("muscles", [], "muscles (--muscles) must be 'auto', 'all' or a list of muscle names"),
    ("segments", "multifidus_left", "segments (--segments) must be a list of segment names as in the file"),
    ("segments", [""], "segments (--segments) must be a list of segment names as in the file"),
    ("levels", None, "levels (--levels) must be a list of disc levels (e.g. ['L4/5', 'L5/S1']) or 'all'"),
    ("levels", [45], "levels (--levels) must be a list of disc levels"),
    ("classifier_params", "k=3", "classifier_params must be a dict of classifier parameters"),
    ("cranio_caudal", (0, 0, 0), "cranio_caudal must be 3 finite numbers, not all 0"),
    ("cranio_caudal", (0, 0, float("nan")), "cranio_caudal must be 3 finite numbers, not all 0"),
]


@pytest.mark.parametrize("option, value, message", _MEAS_BAD_OPTIONS,
                         ids=[f"{o}={v!r}" for o, v, _ in _MEAS_BAD_OPTIONS])
def test_meas_option_outside_its_meaning_is_refused_before_any_file_is_read(option, value, message, tmp_path):
    # the files do not exist: the option must be refused first, naming itself
    with pytest.raises(_MeasInputError) as exc:
        _meas_measure(tmp_path / "absent.nrrd", tmp_path / "absent.seg.nrrd", **{option: value})
    assert message in str(exc.value)
    assert "absent" not in str(exc.value)


@pytest.mark.parametrize("flags, message", [
    (["--fat-threshold", "150"], "fat_threshold_pct (--fat-threshold) must be between 0 and 100 %, got 150"),
    (["--fat-threshold", "-10"], "fat_threshold_pct (--fat-threshold) must be between 0 and 100 %, got -10"),
    (["--fat-threshold", "nan"], "fat_threshold_pct (--fat-threshold) must be a finite number, got nan"),
    (["--noise-floor", "-5"], "noise_floor (--noise-floor) must be >= 0"),
    (["--fat-window=-190,inf"], "fat_window (--fat-window) must be two finite numbers LOW,HIGH in HU"),
    (["--n-slices", "4"], "n_slices (--n-slices) must be an odd number >= 1"),
    (["--goutallier-cutoffs", "10,25,40,600"], "(goutallier_cutoffs, --goutallier-cutoffs) must lie between 0"),
    (["--kjaer-cutoffs", "50,10"], "(kjaer_cutoffs, --kjaer-cutoffs) must be strictly increasing"),
])
def test_meas_cli_option_outside_its_meaning_exits_2_with_one_line(flags, message, tmp_path, capsys):
    rc = _meas_cli(["measure", "--image", str(tmp_path / "absent.nrrd"), "--segmentation",
                    str(tmp_path / "absent.seg.nrrd")] + flags)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("paraspinalfat: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("options, match", [
    ({"map_kind": "fa"}, "unknown map kind 'fa'; use one of pdff, dixon, ct, t1, t2, scalar"),
    ({"map_kind": "t1", "classifier": "watershed"}, "unknown classifier 'watershed'"),
    ({"pdff_scale": "0-10"}, "unknown PDFF scale '0-10'; use one of 0-1, 0-100, 0-1000"),
    ({"map_kind": "ct", "fat_window": (-29.0, -190.0)}, r"fat_window must have low < high"),
    ({"map_kind": "ct", "muscle_window": (151.0, -29.0)}, r"muscle_window must have low < high"),
    ({"map_kind": "ct", "fat_window": (-190.0, 0.0)}, "overlap"),
    ({"levels": "L4/5"}, "levels must be a list of levels \\(discs such as L4/5, vertebrae such as L3\\) or 'all', got 'L4/5'"),
    ({"levels": ["L4/5", "disc 7"]}, "cannot read level 'disc 7' \\(--levels\\); write disc levels like L4/5 or L5/S1"),
])
def test_meas_options_refused_by_the_composition_and_level_readers(options, match):
    """Checked where the method or the levels are made (one message per option, not two)."""
    from ParaspinalFatLib.errors import ParaspinalFatError

    ph = _meas_phantom()
    with pytest.raises(ParaspinalFatError, match=match) as exc:  # pdff_scale: MeasurementError (composition)
        _meas_quiet(ph.image, ph.segmentation, **options)
    assert isinstance(exc.value, _MeasInputError) or "pdff_scale" in options


@pytest.mark.parametrize("threshold", [0.0, 100.0, 37.5])
def test_meas_fat_threshold_at_the_ends_of_its_range_is_measured(threshold):
    ph = _meas_phantom()
    masks = _meas_masks(ph)
    pdff = _meas_sitk.GetArrayFromImage(ph.image).astype(float)  # stored 0-100
    res = _meas_quiet(ph.image, ph.segmentation, pdff_scale="0-100", fat_threshold_pct=threshold)
    for _, row in res.levels.iterrows():
        v = pdff[masks[row["segment"]]]
        assert row["fat_csa_mm2"] == pytest.approx((v >= threshold).sum() * _MEAS_AREA, rel=1e-12)
        assert row["fat_area_ratio"] == pytest.approx((v >= threshold).mean(), rel=1e-12)


# ----------------------------------------------------------------------------- 5: grades file options
def _meas_hand_grades(x, goutallier, kjaer):
    x = np.asarray(x, dtype=float)
    g = sum((x >= c).astype(float) for c in goutallier)
    k = (x >= kjaer[0]).astype(float) + (x > kjaer[1]).astype(float)
    return g, k


_MEAS_GRADING = [
    ({"goutallier_cutoffs": (5, 15, 20, 30)}, "fat_fraction_pct"),
    ({"kjaer_cutoffs": (12, 20)}, "fat_fraction_pct"),
    ({"grade_source": "fat_area_pct", "goutallier_cutoffs": (5, 15, 20, 30), "kjaer_cutoffs": (15, 25)},
     "fat_area_pct"),
    ({"grade_source": "fat_area_pct"}, "fat_area_pct"),
]


@pytest.mark.parametrize("grading, source", _MEAS_GRADING)
def test_meas_grades_table_uses_the_runs_grading_options(grading, source):
    from ParaspinalFatLib.measurement.grading import GOUTALLIER_CUTOFFS, KJAER_CUTOFFS

    ph = _meas_phantom()
    res = _meas_quiet(ph.image, ph.segmentation, pdff_scale="0-100", **grading)
    gout = grading.get("goutallier_cutoffs", GOUTALLIER_CUTOFFS)
    kj = grading.get("kjaer_cutoffs", KJAER_CUTOFFS)
    truth = ph.truth.set_index("segment")
    pct = (truth["mean_pdff_pct"] if source == "fat_fraction_pct"
           else 100.0 * truth["n_fat"] / truth["n_voxels"])
    g_hand, k_hand = _meas_hand_grades(pct.to_numpy(), gout, kj)
    hand = _meas_pd.DataFrame({"goutallier": g_hand, "kjaer": k_hand}, index=truth.index)
    levels = res.levels.set_index("segment")
    grades = res.grades()
    sided = grades[grades["side"].isin(["left", "right"]) & grades["level"].isin(["L3/4", "L4/5", "L5/S1"])]
    assert len(sided) == len(truth) == 18
    for _, r in sided.iterrows():
        seg = levels[(levels["muscle"] == r["muscle"]) & (levels["side"] == r["side"])
                     & (levels["level"] == r["level"])].index[0]
        assert (r["goutallier"], r["kjaer"]) == (hand.loc[seg, "goutallier"], hand.loc[seg, "kjaer"])
        assert (levels.loc[seg, "goutallier"], levels.loc[seg, "kjaer"]) == (r["goutallier"], r["kjaer"])
        assert r["grade_source"] == source == levels.loc[seg, "grade_source"]
    # the options matter: with the defaults some grade differs (the test would be void otherwise)
    g_def, k_def = _meas_hand_grades(pct.to_numpy(), GOUTALLIER_CUTOFFS, KJAER_CUTOFFS)
    if source == "fat_fraction_pct":
        assert (g_def != g_hand).any() or (k_def != k_hand).any()
    # the combined rows: left + right pooled by area, graded with the same cut-offs
    comb = grades[grades["side"] == "combined"].iloc[0]
    pair = truth[(truth["muscle"] == comb["muscle"]) & (truth["level"] == comb["level"])]
    pooled = ((pair["mean_pdff_pct"] * pair["n_voxels"]).sum() / pair["n_voxels"].sum()
              if source == "fat_fraction_pct" else 100.0 * pair["n_fat"].sum() / pair["n_voxels"].sum())
    assert comb["grade_fat_pct"] == pytest.approx(pooled, rel=1e-9)
    g1, k1 = _meas_hand_grades([pooled], gout, kj)
    assert (comb["goutallier"], comb["kjaer"]) == (g1[0], k1[0])


@pytest.mark.parametrize("flags, gout, kj, source", [
    (["--goutallier-cutoffs", "5,15,20,30"], (5, 15, 20, 30), (10, 50), "fat_fraction_pct"),
    (["--kjaer-cutoffs", "12,20", "--grade-source", "fat_fraction_pct"], (10, 25, 40, 60), (12, 20),
     "fat_fraction_pct"),
    (["--grade-source", "fat_area_pct", "--goutallier-cutoffs", "2,8,16,30", "--kjaer-cutoffs", "15,25"],
     (2, 8, 16, 30), (15, 25), "fat_area_pct"),
])
def test_meas_cli_grades_file_matches_the_per_level_file(flags, gout, kj, source, tmp_path):
    from ParaspinalFatLib.phantom import make_phantom, write_phantom

    ph = make_phantom(mode="3d", pdff_scale="0-1")
    paths = write_phantom(ph, tmp_path / "in")
    out = tmp_path / "out" / "case.csv"
    with _meas_warnings.catch_warnings():
        _meas_warnings.simplefilter("ignore")
        rc = _meas_cli(["measure", "--image", str(paths["image"]), "--segmentation", str(paths["segmentation"]),
                        "--pdff-scale", "0-1", "--output", str(out)] + flags)
    assert rc == 0
    levels = _meas_pd.read_csv(out, keep_default_na=False)
    grades = _meas_pd.read_csv(out.parent / "case_grades.csv", keep_default_na=False)
    truth = ph.truth.set_index(["segment", "level"])
    n = 0
    for _, r in levels.iterrows():
        t = truth.loc[(r["segment"], r["level"])]
        pct = t["mean_pdff_pct"] if source == "fat_fraction_pct" else 100.0 * t["n_fat"] / t["n_voxels"]
        g, k = _meas_hand_grades([pct], gout, kj)
        assert (float(r["goutallier"]), float(r["kjaer"])) == (g[0], k[0])
        row = grades[(grades["muscle"] == r["muscle"]) & (grades["side"] == r["side"])
                     & (grades["level"] == r["level"])]
        assert len(row) == 1
        assert (float(row["goutallier"].iloc[0]), float(row["kjaer"].iloc[0])) == (g[0], k[0])
        assert row["grade_source"].iloc[0] == source
        n += 1
    assert n == 18


# ----------------------------------------------------------------------------- 9: nothing measurable
def _meas_slab(ph, k0, k1):
    """The image restricted to slices k0..k1-1 (a partial stack; the segmentation is the full one)."""
    return ph.image[:, :, k0:k1]


@pytest.mark.parametrize("k0, k1, levels", [(0, 8, None), (28, 36, None), (11, 18, None), (11, 18, "all"),
                                            (0, 8, ["L4/5"])])
def test_meas_every_level_outside_the_image_is_an_error_not_an_empty_table(k0, k1, levels):
    ph = _meas_phantom("3d")
    img = _meas_slab(ph, k0, k1)
    n = k1 - k0
    options = {} if levels is None else {"levels": levels}
    with pytest.warns(_MeasLevelWarning, match="lies outside the image"):
        with pytest.raises(_MeasLevelError) as exc:
            _meas_measure(img, ph.segmentation, pdff_scale="0-100", **options)
    msg = str(exc.value)
    asked = ("all (every disc level found)" if levels == "all"
             else ", ".join(levels or ["L3/4", "L4/5", "L5/S1"]))
    assert f"nothing to measure per level: levels asked {asked} (--levels)" in msg
    for lv, k in (("L3/4", 26), ("L4/5", 18), ("L5/S1", 10)):
        # every level found is listed with its source and where it lies
        assert f"{lv} (vertebra_masks, outside the image: slice {k - k0} of 0..{n - 1})" in msg
    assert "the image does not cover the levels found: check that image and segmentation belong together" in msg


@pytest.mark.parametrize("levels", [["T12/L1"], ["L1/2", "L2/3"], ["L2/3"]])
def test_meas_levels_asked_not_found_is_an_error_naming_the_levels_found(levels):
    ph = _meas_phantom("3d")
    with pytest.warns(_MeasLevelWarning, match=r"not found by any level source"):
        with pytest.raises(_MeasLevelError) as exc:
            _meas_measure(ph.image, ph.segmentation, pdff_scale="0-100", levels=levels)
    msg = str(exc.value)
    assert f"levels asked {', '.join(levels)} (--levels)" in msg
    assert ("levels found: L3/4 (vertebra_masks), L4/5 (vertebra_masks), L5/S1 (vertebra_masks)") in msg
    assert "--levels L3/4,L4/5,L5/S1 or --levels all" in msg


@pytest.mark.parametrize("options", [{"per_slice": True}, {"whole_roi": True},
                                     {"per_slice": True, "whole_roi": True}])
def test_meas_per_slice_or_whole_roi_only_without_level_source_is_not_an_error(options):
    """MyoSegmenTUM-like: 3-D muscles, no vertebrae, no markups: the per-slice / whole-ROI tables."""
    ph = _meas_phantom("3d")
    seg = ph.segmentation.with_layers(ph.segmentation.layers, ph.segmentation.geometry)
    seg.segments = [s for s in ph.segmentation.segments if not s.name.startswith("vertebrae")]
    with pytest.warns(_MeasLevelWarning, match="no per-level rows"):
        res = _meas_measure(ph.image, seg, pdff_scale="0-100", **options)
    assert len(res.levels) == 0
    table = res.slices if options.get("per_slice") else res.rois
    assert set(table["segment"]) == {s.name for s in seg.segments}
    # and with a level source but levels=[] (explicitly no level): also the side tables only
    res2 = _meas_quiet(ph.image, ph.segmentation, pdff_scale="0-100", levels=[], **options)
    assert len(res2.levels) == 0


def test_meas_levels_empty_without_side_tables_is_an_error():
    ph = _meas_phantom("3d")
    with pytest.raises(_MeasLevelError, match=r"levels asked none \(--levels\)"):
        _meas_quiet(ph.image, ph.segmentation, pdff_scale="0-100", levels=[])


@pytest.mark.parametrize("k0, k1", [(0, 8), (28, 36)])
def test_meas_cli_nothing_measurable_exits_2_and_writes_nothing(k0, k1, tmp_path, capsys):
    ph = _meas_phantom("3d")
    from ParaspinalFatLib.phantom import write_phantom

    paths = write_phantom(ph, tmp_path / "in")
    img = tmp_path / "in" / "slab.nrrd"
    _meas_sitk.WriteImage(_meas_slab(ph, k0, k1), str(img))
    out = tmp_path / "out" / "case.csv"
    rc = _meas_cli(["measure", "--image", str(img), "--segmentation", str(paths["segmentation"]),
                    "--pdff-scale", "0-100", "--output", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert rc == 2
    assert err[-1].startswith("paraspinalfat: error: ") and "nothing to measure per level" in err[-1]
    # the warnings that explain it come first
    assert any("lies outside the image" in line and line.startswith("paraspinalfat: warning:") for line in err[:-1])
    assert not out.exists() and not (out.parent / "case_grades.csv").exists()


# ----------------------------------------------------------------------------- 13: warnings on error
def _meas_muscles_only(ph):
    seg = ph.segmentation.with_layers(ph.segmentation.layers, ph.segmentation.geometry)
    seg.segments = [s for s in ph.segmentation.segments if not s.name.startswith("vertebrae")]
    return seg


def _meas_markups(path, labels, points):
    cps = [{"id": str(i), "label": lab, "position": [-float(p[0]), -float(p[1]), float(p[2])],
            "positionStatus": "defined"} for i, (lab, p) in enumerate(zip(labels, points))]
    doc = {"@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
                      "Resources/Schema/markups-schema-v1.0.3.json#",
           "markups": [{"type": "Fiducial", "coordinateSystem": "RAS", "coordinateUnits": "mm",
                        "controlPoints": cps}]}
    path.write_text(_meas_json.dumps(doc))
    return path


@pytest.mark.parametrize("labels", [("A", "B", "C"), ("Point 1", "Point 2", "Point 3"), ("disc", "disc 2", "x")])
@pytest.mark.parametrize("levels", [None, "all"])
def test_meas_markups_whose_labels_are_not_levels_warn_first_and_are_named(labels, levels, tmp_path):
    ph = _meas_phantom("3d")
    mrk = _meas_markups(tmp_path / "points.mrk.json", labels, list(ph.disc_points.values()))
    options = {} if levels is None else {"levels": levels}
    with pytest.warns(_MeasLevelWarning) as record:
        with pytest.raises(_MeasLevelError) as exc:
            _meas_measure(ph.image, _meas_muscles_only(ph), pdff_scale="0-100", markups=mrk, **options)
    texts = [str(r.message) for r in record]
    for lab in labels:
        assert any(f"control point label '{lab}' is not a vertebra or disc level" in t for t in texts), texts
    msg = str(exc.value)
    assert f"the markups file {mrk} gave no disc level" in msg
    assert "no markups file" not in msg
    if levels == "all":
        assert "L3/4, L4/5, L5/S1" not in msg and "points labelled with their levels" in msg
    else:
        assert "points labelled L3/4, L4/5, L5/S1 or a line along each disc (--markups)" in msg


def test_meas_markups_with_one_vertebra_point_is_named(tmp_path):
    ph = _meas_phantom("3d")
    mrk = _meas_markups(tmp_path / "one.mrk.json", ["L4"], [ph.disc_points["L4/5"]])
    with pytest.raises(_MeasLevelError, match=_meas_re.escape(f"the markups file {mrk} gave no disc level")):
        _meas_quiet(ph.image, _meas_muscles_only(ph), pdff_scale="0-100", markups=mrk, levels=["L2/3", "L3/4"])


def _meas_cropped(seg, k0, k1, drop):
    """The segmentation on its grid's slices k0..k1-1 (a field of view that cuts a vertebra), minus ``drop``."""
    g = seg.geometry
    layers = seg.layers[:, k0:k1].copy()
    for s in seg.segments:
        if s.name in drop:
            layers[s.layer][layers[s.layer] == s.label_value] = 0
    geom = _MeasGeometry((g.size[0], g.size[1], k1 - k0), g.spacing,
                         tuple(float(x) for x in g.index_to_physical(np.array([0.0, 0.0, k0]))), g.direction)
    out = seg.with_layers(layers, geom)
    out.segments = [s for s in seg.segments if s.name not in drop]
    return out


# vertebra boxes of the 3-D phantom: L3 slices 27-33, L4 19-25, L5 11-17, S1 3-9
@pytest.mark.parametrize("k0, k1, drop, cut", [
    (15, 36, ("vertebrae_L3", "vertebrae_S1"), "vertebrae_L5"),   # L5 cut below: 3 of 7 slices
    (0, 21, ("vertebrae_L3", "vertebrae_S1"), "vertebrae_L4"),    # L4 cut above: 2 of 7 slices
    (0, 29, ("vertebrae_L5", "vertebrae_S1"), "vertebrae_L3"),    # L3 cut above: 2 of 7 slices
])
def test_meas_cut_off_vertebra_warning_comes_before_the_level_error(k0, k1, drop, cut, capsys, tmp_path):
    ph = _meas_phantom("3d", crop=False)
    seg = _meas_cropped(ph.segmentation, k0, k1, drop)
    with pytest.warns(_MeasLevelWarning, match=f"vertebra segment '{cut}' touches the edge of the voxel grid"):
        with pytest.raises(_MeasLevelError) as exc:
            _meas_measure(ph.image, seg, pdff_scale="0-100")
    msg = str(exc.value)
    assert "no disc or vertebra segments" not in msg
    assert f"'{cut}'" in msg and "gave no disc level" in msg and "no markups file (--markups)" in msg
    assert "points labelled L3/4, L4/5, L5/S1 or a line along each disc (--markups)" in msg
    # the command line prints the warning before the error line
    from ParaspinalFatLib.io.slicer_seg import write_seg_nrrd

    seg_path = tmp_path / "cut.seg.nrrd"
    write_seg_nrrd(seg, seg_path)
    img = tmp_path / "img.nrrd"
    _meas_sitk.WriteImage(ph.image, str(img))
    rc = _meas_cli(["measure", "--image", str(img), "--segmentation", str(seg_path), "--pdff-scale", "0-100"])
    err = capsys.readouterr().err.splitlines()
    assert rc == 2
    warn = [i for i, line in enumerate(err) if "touches the edge of the voxel grid" in line]
    assert warn and err[-1].startswith("paraspinalfat: error: ") and warn[0] < len(err) - 1


def test_meas_warnings_are_kept_in_the_result_even_when_the_caller_ignores_them():
    ph = _meas_phantom()
    with _meas_warnings.catch_warnings(record=True) as record:
        _meas_warnings.simplefilter("ignore")
        res = _meas_measure(ph.image, ph.segmentation)
    assert not record  # the caller's filter is obeyed ...
    assert any("PDFF scale detected as 0-100" in w for w in res.warnings)  # ... and the text is kept
    with pytest.warns(_MeasWarning, match="PDFF scale detected as 0-100"):
        res = _meas_measure(ph.image, ph.segmentation)
    assert sum("PDFF scale detected" in w for w in res.warnings) == 1
    with _meas_warnings.catch_warnings():
        _meas_warnings.simplefilter("error", _MeasWarning)
        with pytest.raises(_MeasWarning, match="PDFF scale detected"):  # "error" filter: raised at once
            _meas_measure(ph.image, ph.segmentation)
# --- end measurement ---

# ============================================================================ io
# (sheared NIfTI grids, label values near 2**31)
# Item 7 -- sheared NIfTI grids.  SimpleITK/ITK cannot hold a sheared (non-orthogonal) NIfTI
# sform: it silently uses the qform (an orthogonal grid) or refuses the file.  ParaspinalFat reads
# the header itself and measures on the sform's true grid (the same grid the NRRD of the same
# data gives), or refuses when the sform and the qform disagree about where the voxels are.
# Expected areas are analytic: n voxels x |s_i d_i x s_j d_j|.
# Item 11 -- label values near 2**31 (int32) and above (uint32/uint64): numbers identical to
# small labels, no lookup table sized by the largest label value; uint64 labels above the int64
# range are refused; the caller's arrays are never modified.
import functools as _io_functools
import gzip as _io_gzip
import math as _io_math
import struct as _io_struct
import warnings as _io_warnings
from pathlib import Path as _io_Path

_IO_SPACING = (1.25, 1.3, 4.0)
_IO_ORIGIN = (-70.0, -60.0, -60.0)


def _io_sheared_direction(axes, deg):
    """Unit-column direction matrix (LPS) whose axis ``axes[1]`` leans ``deg`` degrees
    towards axis ``axes[0]`` (identity otherwise): a shear of ``deg`` between them."""
    t = _io_math.radians(deg)
    d = np.eye(3)
    a, b = axes
    d[:, b] = 0.0
    d[b, b] = _io_math.cos(t)
    d[a, b] = _io_math.sin(t)
    return d


def _io_rotation(ax_deg, ay_deg, az_deg):
    rx, ry, rz = (_io_math.radians(v) for v in (ax_deg, ay_deg, az_deg))
    x = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
    y = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
    z = np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
    return z @ y @ x


def _io_matrix(direction, spacing=_IO_SPACING, origin=_IO_ORIGIN):
    """4x4 IJK -> LPS matrix."""
    m = np.eye(4)
    m[:3, :3] = np.asarray(direction, float) * np.asarray(spacing, float)
    m[:3, 3] = origin
    return m


def _io_nearest_rotation(direction):
    """Orthogonal matrix nearest to ``direction`` (polar decomposition, as SPM/nibabel do)."""
    u, _, vt = np.linalg.svd(np.asarray(direction, float))
    return u @ vt


def _io_quaternion(r):
    """NIfTI (quatern_b, c, d) and qfac of an orthogonal 3x3 matrix (nifti_mat44_to_quatern)."""
    r = np.array(r, float)
    qfac = 1.0
    if np.linalg.det(r) < 0:
        r[:, 2] *= -1.0
        qfac = -1.0
    (r11, r12, r13), (r21, r22, r23), (r31, r32, r33) = r
    a = r11 + r22 + r33 + 1.0
    if a > 0.5:
        a = 0.5 * _io_math.sqrt(a)
        b, c, d = 0.25 * (r32 - r23) / a, 0.25 * (r13 - r31) / a, 0.25 * (r21 - r12) / a
    else:
        xd, yd, zd = 1 + r11 - (r22 + r33), 1 + r22 - (r11 + r33), 1 + r33 - (r11 + r22)
        if xd > 1.0:
            b = 0.5 * _io_math.sqrt(xd)
            c, d, a = 0.25 * (r12 + r21) / b, 0.25 * (r13 + r31) / b, 0.25 * (r32 - r23) / b
        elif yd > 1.0:
            c = 0.5 * _io_math.sqrt(yd)
            b, d, a = 0.25 * (r12 + r21) / c, 0.25 * (r23 + r32) / c, 0.25 * (r13 - r31) / c
        else:
            d = 0.5 * _io_math.sqrt(zd)
            b, c, a = 0.25 * (r13 + r31) / d, 0.25 * (r23 + r32) / d, 0.25 * (r21 - r12) / d
        if a < 0:
            b, c, d = -b, -c, -d
    return (b, c, d), qfac


_IO_DATATYPES = {np.dtype(np.uint8): (2, 8), np.dtype(np.int16): (4, 16),
                 np.dtype(np.int32): (8, 32), np.dtype(np.float32): (16, 32),
                 np.dtype(np.uint16): (512, 16), np.dtype(np.uint32): (768, 32)}


def _io_write_nifti(path, array, sform_lps, *, sform_code=1, qform=None, qform_code=1,
                    version=1, endian="<", gz=False, pair=False):
    """Write a NIfTI file byte by byte (struct-packed header + raw voxels).

    ``array`` is numpy ``[k, j, i]``; ``sform_lps`` a 4x4 IJK -> LPS matrix (stored as the
    RAS srow rows); ``qform`` ``(rotation 3x3 LPS, origin LPS)`` or None (qform_code 0).
    The pixdim spacing is the length of the sform's columns.  ``pair``: ``.hdr``/``.img``.
    """
    array = np.asarray(array)
    code, bitpix = _IO_DATATYPES[array.dtype]
    ras = np.asarray(sform_lps, float).copy()
    ras[:2, :] *= -1.0
    pixdim = [1.0] + [float(v) for v in np.linalg.norm(ras[:3, :3], axis=0)] + [1.0] * 4
    quat, qoff, qcode = (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0
    if qform is not None:
        rot = np.asarray(qform[0], float).copy()
        rot[:2, :] *= -1.0
        quat, pixdim[0] = _io_quaternion(rot)
        org = np.asarray(qform[1], float).copy()
        org[:2] *= -1.0
        qoff, qcode = tuple(float(v) for v in org), qform_code
    nk, nj, ni = array.shape
    dims = (3, ni, nj, nk, 1, 1, 1, 1)
    e = endian
    if version == 1:
        head = bytearray(348)
        offset = 0 if pair else 352
        _io_struct.pack_into(e + "i", head, 0, 348)
        _io_struct.pack_into(e + "8h", head, 40, *dims)
        _io_struct.pack_into(e + "2h", head, 70, code, bitpix)
        _io_struct.pack_into(e + "8f", head, 76, *pixdim)
        _io_struct.pack_into(e + "2f", head, 108, float(offset), 1.0)  # vox_offset, scl_slope
        _io_struct.pack_into(e + "2h", head, 252, qcode, sform_code)
        _io_struct.pack_into(e + "6f", head, 256, *quat, *qoff)
        _io_struct.pack_into(e + "12f", head, 280, *ras[:3].ravel())
        head[344:348] = b"ni1\0" if pair else b"n+1\0"
    else:
        head = bytearray(540)
        offset = 0 if pair else 544
        _io_struct.pack_into(e + "i", head, 0, 540)
        head[4:12] = (b"ni2\0" if pair else b"n+2\0") + b"\r\n\x1a\n"
        _io_struct.pack_into(e + "2h", head, 12, code, bitpix)
        _io_struct.pack_into(e + "8q", head, 16, *dims)
        _io_struct.pack_into(e + "8d", head, 104, *pixdim)
        _io_struct.pack_into(e + "q", head, 168, offset)
        _io_struct.pack_into(e + "d", head, 176, 1.0)
        _io_struct.pack_into(e + "2i", head, 344, qcode, sform_code)
        _io_struct.pack_into(e + "6d", head, 352, *quat, *qoff)
        _io_struct.pack_into(e + "12d", head, 400, *ras[:3].ravel())
    voxels = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder(e)).tobytes()
    pack = _io_gzip.compress if gz else (lambda b: b)
    path = _io_Path(path)
    if pair:
        path.write_bytes(pack(bytes(head)))
        stem = path.name[: -len(".hdr.gz")] if gz else path.name[: -len(".hdr")]
        path.with_name(stem + (".img.gz" if gz else ".img")).write_bytes(pack(voxels))
    else:
        path.write_bytes(pack(bytes(head) + bytes(offset - len(head)) + voxels))
    return path


@_io_functools.lru_cache(maxsize=None)
def _io_phantom():
    from ParaspinalFatLib.phantom import make_phantom

    # 2-D ROIs named with their level; a small grid keeps the runs fast
    return make_phantom(size=(60, 50, 12), spacing=(2.5, 2.6, 4.0), level_slices=(9, 6, 3),
                        crop_segmentation=False)


def _io_measure(image, labels, names, **options):
    from ParaspinalFatLib.measurement.pipeline import measure_case

    with _io_warnings.catch_warnings():
        _io_warnings.simplefilter("ignore")
        return measure_case(str(image), str(labels), label_names=names, **options)


# (axes, degrees): shear between the in-plane axes changes the pixel area by cos(shear);
# a leaning slice axis (gantry tilt) keeps it but moves every slice
_IO_SHEARS = [((0, 1), 20.0), ((0, 1), 5.0), ((1, 2), 20.0), ((0, 2), 20.0), ((1, 0), 12.5)]


@pytest.mark.parametrize("axes, deg", _IO_SHEARS)
@pytest.mark.parametrize("qform", ["nearest rotation", "none"])
def test_io_sheared_nifti_measures_the_nrrd_and_analytic_csa(tmp_path, axes, deg, qform):
    import SimpleITK as sitk

    from ParaspinalFatLib.geometry import Geometry

    ph = _io_phantom()
    image = sitk.GetArrayFromImage(ph.image)
    labels = ph.segmentation.layers[0]
    names = {s.label_value: s.name for s in ph.segmentation.segments}
    spacing = (2.5, 2.6, 4.0)
    d = _io_sheared_direction(axes, deg)
    m = _io_matrix(d, spacing)
    q = None if qform == "none" else (_io_nearest_rotation(d), m[:3, 3])
    img_nii = _io_write_nifti(tmp_path / "pdff.nii.gz", image, m, qform=q, gz=True)
    lab_nii = _io_write_nifti(tmp_path / "labels.nii", labels.astype(np.uint16), m, qform=q)
    g = Geometry.from_ijk_to_lps(ph.segmentation.geometry.size, m)
    for arr, name in ((image, "pdff.nrrd"), (labels, "labels.nrrd")):
        im = sitk.GetImageFromArray(arr)
        g.apply_to_sitk(im)
        sitk.WriteImage(im, str(tmp_path / name))
    from_nifti = _io_measure(img_nii, lab_nii, names)
    from_nrrd = _io_measure(tmp_path / "pdff.nrrd", tmp_path / "labels.nrrd", names)
    # analytic: |s_i d_i x s_j d_j| = s_i s_j sin(angle between i and j)
    sin_ij = np.linalg.norm(np.cross(d[:, 0], d[:, 1]))
    expected_area = spacing[0] * spacing[1] * sin_ij
    if axes in ((0, 1), (1, 0)):
        assert sin_ij == pytest.approx(_io_math.cos(_io_math.radians(deg)), rel=1e-12)
    truth = ph.truth.set_index("segment")
    n = truth.loc[from_nifti["segment"], "n_voxels"].to_numpy()
    assert len(from_nifti) == len(truth) == 18
    np.testing.assert_allclose(from_nifti["csa_mm2"].to_numpy(), n * expected_area, rtol=1e-6)
    np.testing.assert_allclose(from_nifti["csa_mm2"].to_numpy(), from_nrrd["csa_mm2"].to_numpy(),
                               rtol=1e-6)
    np.testing.assert_array_equal(from_nifti["n_voxels"].to_numpy(), n)
    np.testing.assert_allclose(from_nifti["mean"].to_numpy(),  # PDFF in % (phantom scale 0-100)
                               truth.loc[from_nifti["segment"], "mean_pdff_pct"].to_numpy(),
                               rtol=1e-9)


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("axes, deg", _IO_SHEARS[:3])
@pytest.mark.parametrize("sform_code, qform", [(1, "nearest rotation"), (1, "none"),
                                               (2, "nearest rotation"), (2, "none")])
def test_io_sheared_nifti_image_and_labelmap_get_the_sform_grid(tmp_path, endian, gz, axes, deg,
                                                                 sform_code, qform):
    from ParaspinalFatLib.errors import ParaspinalFatWarning
    from ParaspinalFatLib.geometry import Geometry
    from ParaspinalFatLib.io.images import read_image
    from ParaspinalFatLib.io.segmentation_files import read_segmentation

    d = _io_rotation(8, -5, 15) @ _io_sheared_direction(axes, deg)  # oblique and sheared
    m = _io_matrix(d)
    q = None if qform == "none" else (_io_nearest_rotation(d), m[:3, 3])
    rng = np.random.default_rng(3)
    values = rng.integers(0, 5, size=(6, 7, 8)).astype(np.int16)
    path = _io_write_nifti(tmp_path / ("x.nii.gz" if gz else "x.nii"), values, m,
                           sform_code=sform_code, qform=q, endian=endian, gz=gz)
    expected = Geometry.from_ijk_to_lps((8, 7, 6), m)
    with pytest.warns(ParaspinalFatWarning) as caught:
        img = read_image(path)
        seg = read_segmentation(path, names={1: "a", 2: "b", 3: "c", 4: "d"})
    shear = [str(w.message) for w in caught if "sheared" in str(w.message)]
    assert len(shear) == 2
    for text in shear:
        assert str(path) in text and f"({deg:.2f} degree shear between the" in text
        assert "assume-same-grid" in text
    got = Geometry.from_sitk(img)
    assert got.same_grid(expected, tol_mm=1e-4, tol_dir=1e-6)
    assert seg.geometry.same_grid(expected, tol_mm=1e-4, tol_dir=1e-6)
    assert got.pixel_area_mm2(2) == pytest.approx(expected.pixel_area_mm2(2), rel=1e-6)
    np.testing.assert_array_equal(_io_sitk_array(img), values)
    np.testing.assert_array_equal(seg.layers[0], values)


def _io_sitk_array(img):
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(img)


@pytest.mark.parametrize("rotation", [(0, 0, 0), (12, 0, 0), (8, -5, 15), (0, 0, 90), (180, 0, 7)])
@pytest.mark.parametrize("noise", [0.0, 1e-6, -3e-6])
@pytest.mark.parametrize("transforms", ["sform and qform", "sform only", "qform only"])
def test_io_orthogonal_oblique_nifti_is_read_unchanged(tmp_path, rotation, noise, transforms):
    # rotation only (and float noise in an orthogonal sform): exactly what SimpleITK reads
    import SimpleITK as sitk

    from ParaspinalFatLib.errors import ParaspinalFatWarning
    from ParaspinalFatLib.geometry import Geometry
    from ParaspinalFatLib.io.images import read_image
    from ParaspinalFatLib.io.nifti import nifti_true_geometry

    r = _io_rotation(*rotation)
    m = _io_matrix(r)
    noisy = m.copy()
    noisy[:3, :3] += noise * np.array([[0.3, -1.0, 0.2], [0.5, 0.1, -0.7], [-0.4, 0.9, 0.6]])
    sform_code = 0 if transforms == "qform only" else 1
    q = None if transforms == "sform only" else (r, m[:3, 3])
    path = _io_write_nifti(tmp_path / "o.nii", np.ones((4, 5, 6), np.int16), noisy,
                           sform_code=sform_code, qform=q)
    assert nifti_true_geometry(path) is None
    with _io_warnings.catch_warnings():
        _io_warnings.simplefilter("error", ParaspinalFatWarning)
        img = read_image(path)
    plain = sitk.ReadImage(str(path))
    assert img.GetDirection() == plain.GetDirection()
    assert img.GetOrigin() == plain.GetOrigin() and img.GetSpacing() == plain.GetSpacing()
    expected = Geometry.from_ijk_to_lps((6, 5, 4), m)
    assert Geometry.from_sitk(img).same_grid(expected, tol_mm=1e-3, tol_dir=1e-4)


@pytest.mark.parametrize("sform_code", [2, 3, 4])
@pytest.mark.parametrize("where", ["origin", "axes"])
@pytest.mark.parametrize("deg", [5.0, 20.0])
def test_io_sheared_sform_disagreeing_with_qform_is_refused(tmp_path, sform_code, where, deg):
    # an 'aligned'/template sform with a shear, and a qform elsewhere: which one holds?
    from ParaspinalFatLib.errors import InputError
    from ParaspinalFatLib.io.images import read_image
    from ParaspinalFatLib.io.segmentation_files import read_segmentation

    d = _io_sheared_direction((0, 1), deg)
    m = _io_matrix(d)
    if where == "origin":
        q = (_io_nearest_rotation(d), m[:3, 3] + np.array([0.0, 40.0, -25.0]))
    else:
        q = (_io_rotation(0, 0, 35) @ _io_nearest_rotation(d), m[:3, 3])
    path = _io_write_nifti(tmp_path / "reg.nii.gz", np.ones((4, 5, 6), np.uint8), m,
                           sform_code=sform_code, qform=q, gz=True)
    for read in (read_image, lambda p: read_segmentation(p, names={1: "a"})):
        with pytest.raises(InputError) as info:
            read(path)
        text = str(info.value)
        assert str(path) in text
        assert f"sform_code {sform_code}" in text and f"({deg:.2f} degree shear between the i and j" in text
        assert "qform (qform_code 1) places the voxels elsewhere" in text
        assert "Resample the image to an orthogonal grid, or save it as NRRD" in text


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("qform", ["nearest rotation", "none"])
def test_io_nifti2_sheared_header_is_parsed_and_the_file_refused_by_name(tmp_path, endian, gz, qform):
    # NIfTI-2: the header is read (both byte orders, gzip or not); SimpleITK cannot read the
    # voxels of a NIfTI-2 file, so the file is refused with its name, never misread
    from ParaspinalFatLib.errors import InputError
    from ParaspinalFatLib.geometry import Geometry
    from ParaspinalFatLib.io.images import read_image
    from ParaspinalFatLib.io.nifti import nifti_true_geometry

    d = _io_rotation(-6, 4, 0) @ _io_sheared_direction((1, 2), 20.0)
    m = _io_matrix(d)
    q = None if qform == "none" else (_io_nearest_rotation(d), m[:3, 3])
    path = _io_write_nifti(tmp_path / ("v2.nii.gz" if gz else "v2.nii"), np.ones((4, 5, 6), np.int16),
                           m, qform=q, version=2, endian=endian, gz=gz)
    found = nifti_true_geometry(path)
    assert found.shear_deg == pytest.approx(20.0, abs=1e-9)
    assert found.axes == "j and k" and found.header.version == 2
    assert found.geometry.same_grid(Geometry.from_ijk_to_lps((6, 5, 4), m), tol_mm=1e-9, tol_dir=1e-12)
    with pytest.raises(InputError, match="could not be read as an image") as info:
        read_image(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("given", ["hdr", "img"])
def test_io_sheared_hdr_img_pair_gets_the_sform_grid(tmp_path, gz, given):
    from ParaspinalFatLib.errors import ParaspinalFatWarning
    from ParaspinalFatLib.geometry import Geometry
    from ParaspinalFatLib.io.images import read_image

    d = _io_sheared_direction((0, 1), 20.0)
    m = _io_matrix(d)
    values = np.arange(120, dtype=np.int16).reshape(4, 5, 6)
    hdr = _io_write_nifti(tmp_path / ("pair.hdr.gz" if gz else "pair.hdr"), values, m, pair=True, gz=gz)
    path = hdr if given == "hdr" else tmp_path / ("pair.img.gz" if gz else "pair.img")
    with pytest.warns(ParaspinalFatWarning, match=r"20\.00 degree shear between the i and j axes"):
        img = read_image(path)
    assert Geometry.from_sitk(img).same_grid(Geometry.from_ijk_to_lps((6, 5, 4), m), tol_mm=1e-4,
                                             tol_dir=1e-6)
    np.testing.assert_array_equal(_io_sitk_array(img), values)


def test_io_sheared_grid_measured_as_before_is_6_percent_too_large(tmp_path):
    # the defect itself: the qform SimpleITK falls back to gives 1/cos(20 deg) = 1.064 x the area
    import SimpleITK as sitk

    from ParaspinalFatLib.geometry import Geometry
    from ParaspinalFatLib.io.images import read_image

    d = _io_sheared_direction((0, 1), 20.0)
    m = _io_matrix(d)
    path = _io_write_nifti(tmp_path / "s.nii", np.ones((4, 5, 6), np.int16), m,
                           qform=(_io_nearest_rotation(d), m[:3, 3]))
    with _io_warnings.catch_warnings():
        _io_warnings.simplefilter("ignore")
        ours = Geometry.from_sitk(read_image(path)).pixel_area_mm2(2)
    plain = Geometry.from_sitk(sitk.ReadImage(str(path))).pixel_area_mm2(2)
    assert ours == pytest.approx(1.25 * 1.3 * _io_math.cos(_io_math.radians(20.0)), rel=1e-6)
    assert plain / ours == pytest.approx(1.0 / _io_math.cos(_io_math.radians(20.0)), rel=1e-6)


# ----------------------------------------------------------------------------- 11: huge label values
_IO_BIG_LABELS = [
    ("int32", (1, 2, 2 ** 31 - 2)),
    ("int32", (2 ** 31 - 1, 40, 2 ** 31 - 2)),
    ("uint32", (3, 2 ** 31 + 5, 2 ** 32 - 1)),
    ("uint32", (3_000_000_000, 1, 4_000_000_000)),
]


@pytest.mark.parametrize("dtype, values", _IO_BIG_LABELS)
def test_io_map_label_values_is_sized_to_the_labels_present(dtype, values):
    import tracemalloc

    from ParaspinalFatLib.segmentation import LabelledVoxels, map_label_values

    rng = np.random.default_rng(5)
    pool = np.array((0,) + tuple(values), dtype=np.int64)
    labels = pool[rng.integers(0, len(pool), size=(9, 10, 11))].astype(dtype)
    mapping = {values[0]: 4, values[2]: 0, 99: 7, 2 ** 40: 9}  # values[1] unmapped; 99, 2**40 absent
    tracemalloc.start()
    got = map_label_values(labels, mapping)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    expected = np.vectorize(lambda v: mapping.get(int(v), -1), otypes=[np.intp])(labels)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.intp and peak < 1 << 20  # never a table indexed by label value
    found = LabelledVoxels.from_layer(labels)
    np.testing.assert_array_equal(found.map_labels(mapping, missing=-3),
                                  [mapping.get(int(v), -3) for v in found.labels])


def test_io_map_label_values_small_labels_and_edge_cases():
    from ParaspinalFatLib.segmentation import map_label_values

    labels = np.array([[0, 1, 5], [5, 300, 1]], np.uint16)
    np.testing.assert_array_equal(map_label_values(labels, {1: 0, 300: 2}), [[-1, 0, -1], [-1, 2, 0]])
    np.testing.assert_array_equal(map_label_values(labels, {}), np.full((2, 3), -1))
    # keys beyond int64, negative or numpy-typed keys: ignored or used as the ints they are
    for mapping in ({2 ** 64 - 1: 3, 1: 0}, {np.uint64(2 ** 64 - 1): 3, 1: 0}, {-5: 7, 1: 0}, {np.int16(1): 0}):
        np.testing.assert_array_equal(map_label_values(labels, mapping), [[-1, 0, -1], [-1, -1, 0]])
    assert map_label_values(np.zeros((0, 3), np.uint32), {1: 1}).shape == (0, 3)
    big = np.array([2 ** 63 - 1, 0, 2 ** 62], np.int64)
    np.testing.assert_array_equal(map_label_values(big, {2 ** 63 - 1: 5, 2 ** 62: 6}), [5, -1, 6])
    u64 = np.array([2 ** 63 - 1, 2 ** 63 - 2], np.uint64)
    np.testing.assert_array_equal(map_label_values(u64, {2 ** 63 - 2: 1}), [-1, 1])


def _io_refuse_huge_arrays(monkeypatch, max_elements=1 << 27):
    """Make numpy refuse (MemoryError) any new array of more than ``max_elements`` elements,
    so that a table indexed by a 2**31 label value fails at once instead of taking 16 GiB."""
    for name in ("full", "zeros", "empty", "ones"):
        original = getattr(np, name)

        def guarded(shape, *args, _original=original, _name=name, **kwargs):
            n = int(np.prod(shape, dtype=np.float64))
            if n > max_elements:
                raise MemoryError(f"np.{_name} of {n} elements (a table sized by a label value?)")
            return _original(shape, *args, **kwargs)

        monkeypatch.setattr(np, name, guarded)


@pytest.mark.parametrize("dtype, values", _IO_BIG_LABELS)
def test_io_huge_label_values_measure_exactly_like_small_ones(tmp_path, monkeypatch, dtype, values):
    import SimpleITK as sitk

    import tracemalloc

    ph = _io_phantom()
    small = ph.segmentation.layers[0].astype(np.int64)
    segments = ph.segmentation.segments
    # relabel three ROIs with the huge values; every other ROI keeps its small label
    relabel = {s.label_value: v for s, v in zip(segments[:3], values)}
    big = small.copy()
    for old, new in relabel.items():
        big[small == old] = new
    names_small = {s.label_value: s.name for s in segments}
    names_big = {relabel.get(s.label_value, s.label_value): s.name for s in segments}
    image = tmp_path / "pdff.nrrd"
    sitk.WriteImage(ph.image, str(image))
    for name, arr in (("small.nii.gz", small.astype(np.int32)), ("big.nii.gz", big.astype(dtype))):
        lab = sitk.GetImageFromArray(arr)
        ph.segmentation.geometry.apply_to_sitk(lab)
        sitk.WriteImage(lab, str(tmp_path / name))
    reference = _io_measure(image, tmp_path / "small.nii.gz", names_small)
    tracemalloc.start()
    with monkeypatch.context() as guard:
        _io_refuse_huge_arrays(guard)
        result = _io_measure(image, tmp_path / "big.nii.gz", names_big)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 256 << 20  # a table indexed by a 2**31 label value would be 16 GiB
    assert list(result.columns) == list(reference.columns)
    import pandas as pd

    pd.testing.assert_frame_equal(result, reference)


@pytest.mark.parametrize("fmt", ["nrrd", "nii.gz"])
def test_io_negative_labels_are_background_in_files_and_refused_in_memory(tmp_path, fmt):
    import SimpleITK as sitk

    from ParaspinalFatLib.errors import InputError, SegmentationWarning
    from ParaspinalFatLib.geometry import Geometry
    from ParaspinalFatLib.io.segmentation_files import read_segmentation
    from ParaspinalFatLib.segmentation import Segment, Segmentation

    arr = np.zeros((3, 4, 5), np.int32)
    arr[1, 1:3, 1:4] = 2
    arr[0, 0, :2] = -7
    given = arr.copy()
    img = sitk.GetImageFromArray(arr)
    path = tmp_path / f"neg.{fmt}"
    sitk.WriteImage(img, str(path))
    with pytest.warns(SegmentationWarning, match=r"2 voxel\(s\) have negative values \(e\.g\. -7\); "
                                                 "they are treated as background"):
        seg = read_segmentation(path, names={2: "MF_L"})
    assert seg.layers.min() == 0 and int((seg.layers == 2).sum()) == 6
    np.testing.assert_array_equal(arr, given)
    geometry = Geometry((5, 4, 3), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    with pytest.raises(InputError, match=r"<memory>: segmentation has negative label values \(-7\)"):
        Segmentation(arr[np.newaxis], geometry, [Segment("MF_L", 0, 2)])


@pytest.mark.parametrize("values", [(2 ** 63, 1), (2 ** 64 - 1, 2 ** 63 + 17), (2 ** 63 + 1, 0)])
def test_io_uint64_labels_above_int64_are_refused(tmp_path, values):
    import SimpleITK as sitk

    from ParaspinalFatLib.errors import InputError
    from ParaspinalFatLib.io.file_notes import FileNotes
    from ParaspinalFatLib.io.label_layers import MAX_LABEL_VALUE, dtype_for_max, to_label_layers
    from ParaspinalFatLib.io.segmentation_files import read_segmentation

    arr = np.zeros((2, 3, 4), np.uint64)
    arr[0, 0, 0], arr[1, 2, 3] = values
    n_big = sum(v > MAX_LABEL_VALUE for v in values)
    path = tmp_path / "u64.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(path))
    with pytest.raises(InputError) as info:
        read_segmentation(path, names={1: "a"})
    text = str(info.value)
    assert text.startswith(f"{path}: {n_big} voxel(s) hold label values above 9223372036854775807")
    assert f"e.g. {max(values)}" in text and "Relabel the segmentation" in text
    with pytest.raises(InputError, match="src: "):
        to_label_layers(arr[np.newaxis], "src", FileNotes("src"))
    with pytest.raises(ValueError, match="above the largest supported label value"):
        dtype_for_max(max(values))
    assert dtype_for_max(MAX_LABEL_VALUE) is np.int64 and dtype_for_max(2 ** 32 - 1) is np.uint32
    ok = np.array([[[MAX_LABEL_VALUE, 3]]], np.uint64)
    out = to_label_layers(ok[np.newaxis], "src", FileNotes("src"))
    assert out.dtype == np.int64 and int(out.max()) == MAX_LABEL_VALUE


def test_io_label_table_value_above_int64_is_refused(tmp_path):
    from ParaspinalFatLib.errors import InputError
    from ParaspinalFatLib.io.label_names import read_label_table

    table = tmp_path / "names.json"
    table.write_text('{"1": "MF_L", "18446744073709551615": "MF_R"}')
    with pytest.raises(InputError, match=r"label value 18446744073709551615 \('MF_R'\) is above "
                                         r"the largest supported label value"):
        read_label_table(table)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_io_seg_nrrd_layers_never_modify_the_callers_array(dtype):
    from ParaspinalFatLib.geometry import Geometry
    from ParaspinalFatLib.io.file_notes import FileNotes
    from ParaspinalFatLib.io.slicer_seg import segmentation_from_seg_nrrd

    layers = np.zeros((1, 4, 5, 6), dtype)
    layers[0, 1:3, 1:3, 1:3] = 1
    layers[0, 3, 4, 5] = 1  # outside the segment's extent: belongs to no segment
    given = layers.copy()
    kv = {"Segment0_ID": "s", "Segment0_Name": "MF_L", "Segment0_LabelValue": "1",
          "Segment0_Layer": "0", "Segment0_Extent": "1 2 1 2 1 2"}
    geometry = Geometry((6, 5, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    with pytest.warns(UserWarning, match="lie outside the segments' extents"):
        seg = segmentation_from_seg_nrrd(layers, geometry, kv, "x.seg.nrrd", FileNotes("x.seg.nrrd"),
                                         fmt="slicer-seg-nrrd")
    np.testing.assert_array_equal(layers, given)  # the caller's voxels are untouched
    assert seg.layers[0, 3, 4, 5] == 0 and int(seg.layers.sum()) == 8
    assert not np.shares_memory(seg.layers, layers)
    # nothing to remove: an array already compact (uint8) is used as it is, without a copy
    inside = given.copy()
    inside[0, 3, 4, 5] = 0
    seg2 = segmentation_from_seg_nrrd(inside, geometry, kv, "y.seg.nrrd", FileNotes("y.seg.nrrd"),
                                      fmt="slicer-seg-nrrd")
    assert np.shares_memory(seg2.layers, inside) == (dtype == np.uint8)
    np.testing.assert_array_equal(seg2.layers, inside)


@pytest.mark.parametrize("qform", ["nearest rotation", "none"])
def test_io_sheared_4d_labelmap_with_one_volume_gets_the_sform_grid(tmp_path, qform):
    # a 4-D labelmap of one volume (dim[0] = 4, dim[4] = 1), as some tools save them
    from ParaspinalFatLib.errors import ParaspinalFatWarning
    from ParaspinalFatLib.geometry import Geometry
    from ParaspinalFatLib.io.segmentation_files import read_segmentation

    d = _io_sheared_direction((0, 1), 20.0)
    m = _io_matrix(d)
    q = None if qform == "none" else (_io_nearest_rotation(d), m[:3, 3])
    values = np.zeros((4, 5, 6), np.uint8)
    values[1:3, 1:3, 1:4] = 1
    path = _io_write_nifti(tmp_path / "four.nii", values, m, qform=q)
    data = bytearray(path.read_bytes())
    _io_struct.pack_into("<8h", data, 40, 4, 6, 5, 4, 1, 1, 1, 1)
    path.write_bytes(bytes(data))
    with pytest.warns(ParaspinalFatWarning, match=r"20\.00 degree shear between the i and j axes"):
        seg = read_segmentation(path, names={1: "MF_L"})
    expected = Geometry.from_ijk_to_lps((6, 5, 4), m)
    assert seg.geometry.same_grid(expected, tol_mm=1e-4, tol_dir=1e-6)
    assert seg.geometry.pixel_area_mm2(2) == pytest.approx(
        1.25 * 1.3 * _io_math.cos(_io_math.radians(20.0)), rel=1e-6)
    np.testing.assert_array_equal(seg.layers[0], values)


# --- end io ---

# ============================================================================ sides
# (segments named left that lie on the patient's right)
# Segments named left that lie on the patient's right are flagged by
# ParaspinalFatLib.anatomy.sides.check_sides (row warning, never silently measured).
# Expected offsets are computed here from the voxels with numpy (LPS x of the voxel
# centres, origin + direction @ (spacing * ijk)), on the untransformed phantom where
# the patient's left is +x and the spine midline is x = 0 (checked, not assumed).
import dataclasses as _sides_dataclasses
import functools as _sides_functools
import re as _sides_re
import warnings as _sides_warnings

from ParaspinalFatLib.anatomy.sides import add_side_warnings as _sides_add, check_sides as _sides_check
from ParaspinalFatLib.errors import InputError as _SidesInputError, NameWarning as _SidesNameWarning
from ParaspinalFatLib.geometry import Geometry as _SidesGeometry
from ParaspinalFatLib.segmentation import Segmentation as _SidesSegmentation

_SIDES_OPP = {"left": "right", "right": "left"}
_SIDES_PAIRS_DETAIL = "from the midpoints of the left/right pairs of the same muscle"
_SIDES_MASKS_DETAIL = "from vertebra masks"


@_sides_functools.lru_cache(maxsize=None)
def _sides_phantom(mode, tilt_deg=0.0):
    from ParaspinalFatLib.phantom import make_phantom

    return make_phantom(mode=mode, tilt_deg=tilt_deg)


def _sides_true_side(phantom, name):
    return str(phantom.truth.loc[phantom.truth["segment"] == name, "side"].iloc[0])


def _sides_true_key(phantom, name):
    row = phantom.truth.loc[phantom.truth["segment"] == name].iloc[0]
    return row["muscle"], (row["level"] if "_L_" in name or "_R_" in name else None)


def _sides_x(seg, value):
    """LPS x (mm) of the centroid of the voxels of a label, by hand."""
    g = seg.geometry
    m = np.asarray(g.direction, dtype=float).reshape(3, 3) * np.asarray(g.spacing, dtype=float)
    kji = np.argwhere(seg.layers[0] == value).astype(float)
    return float((np.asarray(g.origin) + kji[:, ::-1] @ m.T)[:, 0].mean())


@_sides_functools.lru_cache(maxsize=None)
def _sides_expected_offsets(mode):
    """Segment (original name) -> lateral offset from the midline, + = patient's left."""
    seg = _sides_phantom(mode).segmentation
    xs = {s.name: _sides_x(seg, s.label_value) for s in seg.segments}
    if mode == "3d":
        mids = [x for n, x in xs.items() if n.startswith("vertebrae_")]
    else:  # midpoint of each left/right pair
        mids = [(xs[n] + xs[n.replace("_L_", "_R_")]) / 2 for n in xs if "_L_" in n]
    assert max(mids) - min(mids) < 1e-9  # one midline x for every level: offsets are unambiguous
    return {n: x - mids[0] for n, x in xs.items() if not n.startswith("vertebrae_")}


def _sides_rot(axis, deg):
    a = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    t = np.radians(deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def _sides_transformed(mode, how):
    """The phantom's segmentation moved rigidly (the patient moves with it) or re-gridded."""
    if how == "tilt_deg=20":
        return _sides_phantom(mode, 20.0).segmentation
    seg = _sides_phantom(mode).segmentation
    g = seg.geometry
    d = np.asarray(g.direction, dtype=float).reshape(3, 3)
    if how == "as is":
        return seg
    if how == "flipped i and k axes":  # same voxels in space, stored the other way round
        ni, _nj, nk = g.size
        d2 = d.copy()
        d2[:, 0] *= -1
        d2[:, 2] *= -1
        origin = np.asarray(g.origin) + d @ (np.asarray(g.spacing) * np.array([ni - 1, 0, nk - 1]))
        return seg.with_layers(np.ascontiguousarray(seg.layers[:, ::-1, :, ::-1]),
                               _SidesGeometry(g.size, g.spacing, tuple(origin), tuple(d2.ravel())))
    r = {"coronal tilt 15 deg": _sides_rot((0, 1, 0), 15), "axial rotation 25 deg": _sides_rot((0, 0, 1), 25),
         "oblique 20 deg": _sides_rot((1, 2, 3), 20)}[how]
    return seg.with_layers(seg.layers, _SidesGeometry(g.size, g.spacing, tuple(r @ np.asarray(g.origin)),
                                                      tuple((r @ d).ravel())))


def _sides_renamed(seg, mapping):
    segs = [_sides_dataclasses.replace(s, name=mapping.get(s.name, s.name)) for s in seg.segments]
    return _SidesSegmentation(seg.layers, seg.geometry, segs, source="renamed.seg.nrrd")


def _sides_message(name, claimed, offset, detail, partner=None):
    opp = _SIDES_OPP[claimed]
    extra = f"; it lies to the patient's {opp} of '{partner}'" if partner else ""
    return (f"segment '{name}' is named {claimed} but its centroid lies {abs(offset):.1f} mm to the "
            f"patient's {opp.upper()} of the spine midline ({detail}{extra}); check the label names "
            "(left/right swapped?)")


def _sides_swap(name):
    for a, b in (("_left", "_right"), ("_L_", "_R_")):
        if a in name:
            return name.replace(a, b)
        if b in name:
            return name.replace(b, a)
    raise AssertionError(name)


# variant -> (mode, {original name: (new name, side the new name claims)})
_SIDES_VARIANTS = {
    "3d every name swapped": ("3d", {n: (_sides_swap(n), "right" if n.endswith("left") else "left") for n in (
        "multifidus_left", "multifidus_right", "erector_spinae_left", "erector_spinae_right", "psoas_left",
        "psoas_right")}),
    "3d multifidus swapped": ("3d", {"multifidus_left": ("multifidus_right", "right"),
                                     "multifidus_right": ("multifidus_left", "left")}),
    "3d right psoas named PS_L": ("3d", {"psoas_right": ("PS_L", "left")}),
    "2d MF at L4/5 swapped": ("2d", {"MF_L_L4/5": ("MF_R_L4/5", "right"), "MF_R_L4/5": ("MF_L_L4/5", "left")}),
    "2d every ROI swapped": ("2d", {f"{m}_{s}_{lv}": (f"{m}_{'R' if s == 'L' else 'L'}_{lv}",
                                                      "right" if s == "L" else "left")
                                    for m in ("MF", "ES", "PS") for s in "LR" for lv in ("L3/4", "L4/5", "L5/S1")}),
    "2d ES L5/S1 and PS L3/4 swapped": ("2d", {"ES_L_L5/S1": ("ES_R_L5/S1", "right"),
                                               "ES_R_L5/S1": ("ES_L_L5/S1", "left"),
                                               "PS_L_L3/4": ("PS_R_L3/4", "right"),
                                               "PS_R_L3/4": ("PS_L_L3/4", "left")}),
    "2d right ES at L3/4 named left": ("2d", {"ES_R_L3/4": ("ES_L_L3/4", "left"),
                                              "ES_L_L3/4": ("ESL_L3/4", "left")}),
}
_SIDES_MOVES = ("as is", "tilt_deg=20", "coronal tilt 15 deg", "axial rotation 25 deg", "oblique 20 deg",
                "flipped i and k axes")


def _sides_expected(mode, renames):
    """(flagged new name -> message, new name -> offset) computed from the voxels."""
    ph = _sides_phantom(mode)
    offsets = _sides_expected_offsets(mode)
    new_of = {n: renames.get(n, (n, _sides_true_side(ph, n)))[0] for n in offsets}
    claimed = {n: renames.get(n, (n, _sides_true_side(ph, n)))[1] for n in offsets}
    groups = {}
    for n in offsets:
        groups.setdefault(_sides_true_key(ph, n), {"left": [], "right": []})[claimed[n]].append(n)
    partner = {}
    for g in groups.values():
        if len(g["left"]) == 1 and len(g["right"]) == 1:
            partner[g["left"][0]], partner[g["right"][0]] = new_of[g["right"][0]], new_of[g["left"][0]]
    detail = _SIDES_MASKS_DETAIL if mode == "3d" else _SIDES_PAIRS_DETAIL
    messages = {}
    for n, off in offsets.items():
        if claimed[n] != _sides_true_side(ph, n):
            messages[new_of[n]] = _sides_message(new_of[n], claimed[n], off, detail, partner.get(n))
    return messages, {new_of[n]: off for n, off in offsets.items()}


@pytest.mark.parametrize("move", _SIDES_MOVES)
@pytest.mark.parametrize("variant", sorted(_SIDES_VARIANTS))
def test_sides_swapped_names_are_flagged_by_segment(variant, move):
    mode, renames = _SIDES_VARIANTS[variant]
    seg = _sides_renamed(_sides_transformed(mode, move), {k: v[0] for k, v in renames.items()})
    messages, offsets = _sides_expected(mode, renames)
    assert messages  # every variant has at least one wrong name
    with pytest.warns(_SidesNameWarning) as rec:
        res = _sides_check(seg)
    assert res.warnings == messages
    assert set(res.offsets_mm) == set(offsets)
    for name, off in offsets.items():
        assert res.offsets_mm[name] == pytest.approx(off, abs=1e-6), name
    issued = [str(w.message) for w in rec]
    assert all(m in issued for m in messages.values())
    every = len(messages) == len(offsets)
    assert (res.note == f"renamed.seg.nrrd: every sided segment ({len(offsets)}) lies on the side opposite to its "
            "name: either all left/right names are swapped or the file's left-right orientation (its header) "
            "is wrong") if every else (res.note == "")


@pytest.mark.parametrize("move", _SIDES_MOVES)
@pytest.mark.parametrize("mode", ["3d", "2d"])
def test_sides_correct_names_give_no_warning(mode, move):
    seg = _sides_transformed(mode, move)
    with _sides_warnings.catch_warnings():
        _sides_warnings.simplefilter("error", _SidesNameWarning)
        res = _sides_check(seg)
    assert res.warnings == {} and res.note == "" and res.near_midline == []
    assert res.midline_source == ("spine_masks" if mode == "3d" else "pairs")
    for name, off in _sides_expected_offsets(mode).items():
        assert res.offsets_mm[name] == pytest.approx(off, abs=1e-6)
    mf = [v for k, v in res.offsets_mm.items() if k.startswith(("multifidus", "MF"))]
    assert sorted(abs(v) for v in mf) == pytest.approx([15.0] * len(mf), abs=1e-6)  # analytic: MF 15 mm off


def _sides_ras_seg_nrrd(seg, path):
    """Write a Slicer .seg.nrrd and turn its header into RAS space (x and y negated)."""
    from ParaspinalFatLib.io.slicer_seg import write_seg_nrrd

    write_seg_nrrd(seg, path)
    data = path.read_bytes()
    cut = data.index(b"\n\n")
    header = data[:cut].decode("latin-1")

    def neg(match):
        x, y, z = (float(v) for v in match.group(1).split(","))
        return f"({-x!r},{-y!r},{z!r})"

    lines = []
    for line in header.split("\n"):
        if line.startswith("space:"):
            line = "space: right-anterior-superior"
        elif line.startswith(("space directions:", "space origin:")):
            key, rest = line.split(":", 1)
            line = key + ": " + _sides_re.sub(r"\(([^)]*)\)", neg, rest.strip())
        lines.append(line)
    path.write_bytes("\n".join(lines).encode("latin-1") + data[cut:])
    return path


@pytest.mark.parametrize("stored", ["nifti (RAS on disk)", "seg.nrrd in RAS space"])
@pytest.mark.parametrize("swapped", [False, True])
def test_sides_files_stored_in_ras(tmp_path, stored, swapped):
    import SimpleITK as sitk

    from ParaspinalFatLib.io.segmentation_files import read_segmentation

    ph = _sides_phantom("3d")
    renames = dict(_SIDES_VARIANTS["3d multifidus swapped"][1]) if swapped else {}
    seg = _sides_renamed(ph.segmentation, {k: v[0] for k, v in renames.items()})
    if stored.startswith("nifti"):
        img = sitk.GetImageFromArray(seg.layers[0])
        seg.geometry.apply_to_sitk(img)
        path = tmp_path / "muscles.nii.gz"
        sitk.WriteImage(img, str(path))
        back = read_segmentation(path, names={s.label_value: s.name for s in seg.segments})
    else:
        back = read_segmentation(_sides_ras_seg_nrrd(seg, tmp_path / "muscles.seg.nrrd"))
        assert "right-anterior-superior" in (tmp_path / "muscles.seg.nrrd").read_bytes()[:400].decode("latin-1")
    messages, offsets = _sides_expected("3d", renames)
    with _sides_warnings.catch_warnings():
        _sides_warnings.simplefilter("ignore", _SidesNameWarning)
        res = _sides_check(back)
    assert res.warnings == messages
    for name, off in offsets.items():
        assert res.offsets_mm[name] == pytest.approx(off, abs=1e-6)


@pytest.mark.parametrize("mode", ["3d", "2d"])
def test_sides_unsided_segment_straddling_the_midline_is_skipped(mode):
    """Left and right psoas painted as one unsided 'psoas' label: not sided, not checked."""
    seg = _sides_phantom(mode).segmentation
    layers = seg.layers.copy()
    keep = []
    for s in seg.segments:
        if s.name.startswith(("psoas", "PS_")):
            if "right" in s.name or "_R_" in s.name:
                layers[layers == s.label_value] = [t for t in seg.segments if t.name == _sides_swap(s.name)][0].label_value
                continue
            s = _sides_dataclasses.replace(s, name=("psoas" if mode == "3d" else f"psoas {s.name.split('_', 2)[2]}"))
        keep.append(s)
    merged = _SidesSegmentation(layers, seg.geometry, keep, source="merged")
    res = _sides_check(merged)
    assert res.warnings == {} and not any(n.startswith("psoas") for n in res.offsets_mm)
    assert len(res.offsets_mm) == (4 if mode == "3d" else 12)


@pytest.mark.parametrize("margin, flagged", [(5.0, {"multifidus_left", "multifidus_right"}), (15.5, set())])
def test_sides_margin_decides_what_is_a_disagreement(margin, flagged):
    """Multifidus centroids lie 15.0 mm from the midline: swapped, they are flagged at the default
    5 mm margin, and only reported as near the midline with a 15.5 mm margin."""
    renames = _SIDES_VARIANTS["3d multifidus swapped"][1]
    seg = _sides_renamed(_sides_phantom("3d").segmentation, {k: v[0] for k, v in renames.items()})
    res = _sides_check(seg, margin_mm=margin, warn=False)
    assert set(res.warnings) == flagged
    assert sorted(res.near_midline) == ([] if flagged else ["multifidus_left", "multifidus_right"])
    with pytest.raises(_SidesInputError, match="margin_mm must be a finite number >= 0"):
        _sides_check(seg, margin_mm=-1)


def _sides_one_side(ph, side, claim):
    """2-D phantom with only the ROIs of one true side, named as `claim` (no pairs, no spine masks)."""
    seg = ph.segmentation
    keep = []
    for s in seg.segments:
        if _sides_true_side(ph, s.name) != side:
            continue
        name = s.name if side == claim else _sides_swap(s.name)
        keep.append(_sides_dataclasses.replace(s, name=name))
    return _SidesSegmentation(seg.layers, seg.geometry, keep, source="one_side.nii.gz")


@pytest.mark.parametrize("tilt", [0.0, 20.0])
@pytest.mark.parametrize("side, claim", [("left", "left"), ("right", "right"), ("right", "left"), ("left", "right")])
def test_sides_level_points_give_the_midline_when_nothing_else_does(tilt, side, claim):
    from ParaspinalFatLib.anatomy.landmarks import LevelLandmark

    ph = _sides_phantom("2d", tilt)
    seg = _sides_one_side(ph, side, claim)
    marks = {lv: LevelLandmark(lv, p, "markups", f"point {lv}") for lv, p in ph.disc_points.items()}
    offsets = _sides_expected_offsets("2d")
    with _sides_warnings.catch_warnings():
        _sides_warnings.simplefilter("ignore", _SidesNameWarning)
        res = _sides_check(seg, landmarks=marks)
    assert res.midline_source == "landmarks"
    expected = {}
    for orig, off in offsets.items():
        if _sides_true_side(ph, orig) == side and side != claim:
            new = _sides_swap(orig)
            expected[new] = _sides_message(new, claim, off, "from the level points (markups)")
    assert res.warnings == expected
    assert len(res.offsets_mm) == 9


def test_sides_no_midline_source_is_said_not_guessed():
    ph = _sides_phantom("2d")
    seg = _sides_one_side(ph, "right", "left")  # every ROI wrongly named, but nothing to compare with
    with pytest.warns(_SidesNameWarning, match="could not be checked") as rec:
        res = _sides_check(seg)
    assert res.warnings == {} and res.offsets_mm == {} and res.midline_source is None
    names = sorted(s.name for s in seg.segments)
    assert res.unchecked == {n: "no spine midline found" for n in names}
    assert res.note == (
        "one_side.nii.gz: the left/right names of 9 segment(s) ("
        + ", ".join(repr(n) for n in names[:6]) + " and 3 more) could not be checked against where they lie: no "
        "vertebra, disc or sacrum masks, no left/right pair of the same muscle, and no level points (the image "
        "centre is not used as the midline: the field of view need not be centred on the spine)")
    assert [str(w.message) for w in rec] == [res.note]


# MyoSegmenTUM: 1 = right ES, 2 = right MF, 3 = left MF, 4 = left ES (by geometry; the
# repository's own list was wrong). No vertebra labels: the midline comes from the pairs.
_SIDES_MYO_TRUE = {1: ("erector_spinae", "right"), 2: ("multifidus", "right"), 3: ("multifidus", "left"),
                   4: ("erector_spinae", "left")}
_SIDES_MYO_NAMINGS = {
    "as published (correct)": {1: "right", 2: "right", 3: "left", 4: "left"},
    "every side swapped": {1: "left", 2: "left", 3: "right", 4: "right"},
    "multifidus swapped": {1: "right", 2: "left", 3: "right", 4: "left"},
    "erector spinae swapped": {1: "left", 2: "right", 3: "left", 4: "right"},
}


@pytest.mark.parametrize("naming", sorted(_SIDES_MYO_NAMINGS))
@pytest.mark.parametrize("subject", ["TUM01", "TUM02"])
def test_sides_myosegmentum_labels(realdata, subject, naming):
    import SimpleITK as sitk

    from ParaspinalFatLib.io.segmentation_files import read_segmentation

    path = realdata / "myosegmentum" / f"{subject}_label_L2-L5.nii.gz"
    claims = _SIDES_MYO_NAMINGS[naming]
    names = {v: f"{_SIDES_MYO_TRUE[v][0]}_{claims[v]}" for v in claims}
    seg = read_segmentation(path, names=names)
    with _sides_warnings.catch_warnings():
        _sides_warnings.simplefilter("ignore", _SidesNameWarning)
        res = _sides_check(seg)
    assert res.midline_source == "pairs"
    wrong = {names[v] for v in claims if claims[v] != _SIDES_MYO_TRUE[v][1]}
    assert set(res.warnings) == wrong
    # independent: centroid x of each label by SimpleITK; half the left-right distance of the pair
    img = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(img)
    x = {}
    for v in claims:
        kji = np.argwhere(arr == v).mean(axis=0)
        x[v] = img.TransformContinuousIndexToPhysicalPoint([float(c) for c in kji[::-1]])[0]
    for v, (muscle, true_side) in _SIDES_MYO_TRUE.items():
        other = [w for w, (m, s) in _SIDES_MYO_TRUE.items() if m == muscle and w != v][0]
        half = abs(x[v] - x[other]) / 2
        off = res.offsets_mm[names[v]]
        assert (off > 0) == (true_side == "left")  # LPS +x = patient's left, whatever the names say
        assert abs(off) == pytest.approx(half, abs=1.0)
        if names[v] in wrong:
            assert res.warnings[names[v]].startswith(
                f"segment '{names[v]}' is named {claims[v]} but its centroid lies {abs(off):.1f} mm to the "
                f"patient's {true_side.upper()} of the spine midline ({_SIDES_PAIRS_DETAIL}; it lies to the "
                f"patient's {true_side} of '{names[other]}')")


def _sides_measured(renames):
    from ParaspinalFatLib.measurement.pipeline import measure

    ph = _sides_phantom("3d")
    seg = _sides_renamed(ph.segmentation, {k: v[0] for k, v in renames.items()})
    with _sides_warnings.catch_warnings():
        _sides_warnings.simplefilter("ignore")
        res = measure(ph.image, seg, map_kind="pdff", whole_roi=True)
    return seg, res


@pytest.mark.parametrize("variant", ["3d multifidus swapped", "3d right psoas named PS_L"])
def test_sides_row_warnings_in_the_result_tables(variant):
    """The table rows of a wrongly named segment carry its message; every other row is unchanged."""
    renames = _SIDES_VARIANTS[variant][1]
    seg, res = _sides_measured(renames)
    messages, _ = _sides_expected("3d", renames)
    check = _sides_check(seg, warn=False)
    assert check.warnings == messages
    for table in (res.levels, res.rois):
        before = dict(zip(zip(table["segment"], range(len(table))), table["warnings"]))
        out = _sides_add(table, check)
        for i, (seg_name, text) in enumerate(zip(out["segment"], out["warnings"])):
            old = before[(seg_name, i)] or ""
            if seg_name in messages:
                assert text == (f"{old}; {messages[seg_name]}" if old else messages[seg_name])
            else:
                assert text == old
        assert set(out.loc[out["warnings"].str.contains("left/right swapped"), "segment"]) == set(messages)


def test_sides_measure_flags_swapped_rows_itself():
    renames = _SIDES_VARIANTS["3d multifidus swapped"][1]
    _seg, res = _sides_measured(renames)
    messages, _ = _sides_expected("3d", renames)
    for table in (res.levels, res.rois):
        for seg_name, text in zip(table["segment"], table["warnings"]):
            assert (messages[seg_name] in text) if seg_name in messages else ("swapped" not in text)
    assert all(m in res.warnings for m in messages.values())
# --- end sides ---

# ============================================================================ outputs
# (CSV formula injection, bad output paths, outputs written as a set)
# Item 10 -- formula injection: every text cell of every CSV that starts with = + - @ TAB CR
# gets a visible leading "'" (OWASP); numbers stay numbers.  Item 11 -- an unusable output
# path is one clean refusal naming it, before anything is measured.  Item 12 -- the CSVs of
# a run are one set: a failed write or move leaves the previous run's files byte-identical.
import csv as _out_csv
import errno as _out_errno
import os as _out_os
import re as _out_re
from pathlib import Path as _OutPath

_OUT_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: muscle names as a clinic's file could carry them (a .seg.nrrd keeps them verbatim)
_OUT_SEGMENT_NAMES = ('=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "=cmd|' /C calc'!A0", "-@x")
#: subject ids (from --subject; a tab or CR survives the command line)
_OUT_SUBJECTS = ('=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd")
#: the CSVs of `measure --output <folder>/case.csv --per-slice --whole-roi`, in the order written
_OUT_FILES = ("case.csv", "case_summary.csv", "case_summary_wide.csv", "case_levels.csv", "case_grades.csv",
              "case_slices.csv", "case_rois.csv")


def _out_plain_number(text):
    return _out_re.fullmatch(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", text) is not None


def _out_rows(path):
    """Every row of a CSV as the csv module reads it (header included)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(_out_csv.reader(fh))


def _out_formula_cells(folder):
    """(file, cell) of every cell a spreadsheet would run as a formula, in every CSV of ``folder``."""
    bad = []
    for path in sorted(_OutPath(folder).glob("*.csv")):
        for row in _out_rows(path):
            bad += [(path.name, c) for c in row if c[:1] in _OUT_TRIGGERS and not _out_plain_number(c)]
    return bad


def _out_snapshot(folder):
    """{name: bytes} of every entry of ``folder`` (hidden ones too: temporary files must not remain)."""
    folder = _OutPath(folder)
    return {p.name: (p.read_bytes() if p.is_file() else "<dir>") for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def _out_case(tmp_path_factory):
    """3-D phantom (vertebra masks give the levels) whose six muscles are renamed to formula
    payloads, and a scalar map equal to -(label + 0.5) inside each muscle: every statistic of a
    row is that negative number exactly (mean = median = p05 = p95, sd = 0), the CSA is the
    phantom's truth."""
    import dataclasses

    import SimpleITK as sitk

    from ParaspinalFatLib.io.slicer_seg import write_seg_nrrd
    from ParaspinalFatLib.phantom import make_phantom

    folder = tmp_path_factory.mktemp("outputs_case")
    ph = make_phantom(mode="3d", crop_segmentation=False)
    seg = ph.segmentation
    muscles = [s for s in seg.segments if not s.name.startswith("vertebrae")]
    assert len(muscles) == len(_OUT_SEGMENT_NAMES) == 6
    values = np.zeros(seg.layers[0].shape, np.float32)
    for s in muscles:
        values[seg.layers[0] == s.label_value] = -(s.label_value + 0.5)
    image = sitk.GetImageFromArray(values)
    image.CopyInformation(ph.image)
    renamed = {s.name: new for s, new in zip(muscles, _OUT_SEGMENT_NAMES)}
    value = {new: -(s.label_value + 0.5) for s, new in zip(muscles, _OUT_SEGMENT_NAMES)}
    segments = [dataclasses.replace(s, name=renamed.get(s.name, s.name)) for s in seg.segments]
    sitk.WriteImage(image, str(folder / "map.nrrd"), useCompression=True)
    write_seg_nrrd(dataclasses.replace(seg, segments=segments), folder / "muscles.seg.nrrd")
    truth = ph.truth[["segment", "level", "csa_mm2", "n_voxels"]].copy()
    truth["segment"] = truth["segment"].map(renamed)
    truth["value"] = truth["segment"].map(value)
    truth["segment"] = "'" + truth["segment"]  # as written to the CSV
    assert len(truth) == 18 and truth["segment"].notna().all()
    return {"folder": folder, "truth": truth, "image": image, "segmentation": dataclasses.replace(seg, segments=segments)}


def _out_measure_cli(case, out, *extra):
    from ParaspinalFatLib.cli import main

    folder = case["folder"]
    return main(["measure", "--image", str(folder / "map.nrrd"), "--segmentation", str(folder / "muscles.seg.nrrd"),
                 "--map", "scalar", "--unit", "a.u.", "--muscles", "all", "--output", str(out), *extra])


@pytest.mark.parametrize("subject", _OUT_SUBJECTS, ids=["hyperlink", "plus", "minus", "at", "tab", "cr"])
def test_outputs_formula_text_is_defused_in_every_csv_of_the_cli(_out_case, tmp_path, capsys, subject):
    import pandas as pd

    out = tmp_path / "res" / "case.csv"
    assert _out_measure_cli(_out_case, out, f"--subject={subject}", "--per-slice", "--whole-roi") == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(_OUT_FILES)
    # csv module: the segment and subject cells carry the visible quote
    rows = _out_rows(out)
    header, body = rows[0], rows[1:]
    col = {name: header.index(name) for name in ("subject", "segment", "mean", "p05", "csa_mm2")}
    assert len(body) == 18
    assert {r[col["segment"]] for r in body} == {"'" + n for n in _OUT_SEGMENT_NAMES}
    assert {r[col["subject"]] for r in body} == {"'" + subject}
    # numbers are numbers: negative statistics written as plain numbers, no quote
    assert all(_out_plain_number(r[col["mean"]]) and float(r[col["mean"]]) < 0 for r in body)
    # pandas reads the same cells back; the values are the phantom's
    table = pd.read_csv(out)
    assert table["mean"].dtype == np.float64 and table["csa_mm2"].dtype == np.float64
    merged = table.merge(_out_case["truth"], on=["segment", "level"], suffixes=("", "_truth"))
    assert len(merged) == 18
    np.testing.assert_array_equal(merged["csa_mm2"], merged["csa_mm2_truth"])
    np.testing.assert_array_equal(merged["n_voxels"], merged["n_voxels_truth"])
    for stat in ("mean", "median", "p05", "p95"):
        np.testing.assert_array_equal(merged[stat], merged["value"])  # -1.5 ... -6.5, exactly
    assert (merged["sd"] == 0).all()
    assert (table["subject"] == "'" + subject).all()
    # the other tables: subject cells quoted, negative landmark coordinates still numbers
    for name in ("case_summary.csv", "case_summary_wide.csv", "case_grades.csv", "case_slices.csv", "case_rois.csv"):
        side = pd.read_csv(out.parent / name)
        assert len(side) > 0 and (side["subject"] == "'" + subject).all(), name
    rois = pd.read_csv(out.parent / "case_rois.csv")
    assert set(rois["segment"]) == {"'" + n for n in _OUT_SEGMENT_NAMES}
    levels = pd.read_csv(out.parent / "case_levels.csv")
    assert levels["z_lps_mm"].dtype == np.float64 and (levels["z_lps_mm"] < 0).any()
    # and no cell anywhere that a spreadsheet would execute
    assert _out_formula_cells(out.parent) == []


@pytest.mark.parametrize("payload", ["\tcmd", "\rcmd", "=1+1", "+A1", "-A1*2", "@SUM(A1:A3)"])
def test_outputs_formula_segment_names_from_memory_are_defused(_out_case, tmp_path, payload):
    """Segment names with a leading tab/CR cannot come from a file (the readers strip them);
    an in-memory Segmentation can carry them to the tables."""
    import dataclasses

    import pandas as pd

    from ParaspinalFatLib import measure
    from ParaspinalFatLib.report.case_files import OutputSet

    seg = _out_case["segmentation"]
    names = {s.name: f"{payload}{k}x" for k, s in enumerate(seg.segments) if s.name in _OUT_SEGMENT_NAMES}
    renamed = dataclasses.replace(seg, segments=[dataclasses.replace(s, name=names.get(s.name, s.name))
                                                 for s in seg.segments])
    res = measure(_out_case["image"], renamed, map_kind="scalar", muscles="all", subject=payload, whole_roi=True)
    with OutputSet(tmp_path) as files:
        files.write_csv(res.levels, "case.csv")
        files.write_csv(res.rois, "case_rois.csv")
    rows = _out_rows(tmp_path / "case.csv")
    seg_col, subj_col = rows[0].index("segment"), rows[0].index("subject")
    assert len(rows) == 19  # header + 18: a CR inside a cell does not split the row
    assert {r[seg_col] for r in rows[1:]} == {"'" + n for n in names.values()}
    assert {r[subj_col] for r in rows[1:]} == {"'" + payload}
    table = pd.read_csv(tmp_path / "case.csv")
    assert set(table["segment"]) == {"'" + n for n in names.values()}
    expected = {"'" + names[old[1:]]: v for old, v in zip(_out_case["truth"]["segment"], _out_case["truth"]["value"])}
    np.testing.assert_array_equal(table["mean"], table["segment"].map(expected))
    assert (table["mean"] < 0).all()
    assert _out_formula_cells(tmp_path) == []


def _out_no_measure(monkeypatch):
    import ParaspinalFatLib.measurement.pipeline as pipeline

    def refuse(*args, **kwargs):
        raise AssertionError("measure() ran although an output path is unusable")

    monkeypatch.setattr(pipeline, "measure", refuse)


def _out_bad_path(tmp_path, case, kind):
    """(extra CLI arguments, path the message must name, phrase) for one unusable output."""
    t = tmp_path
    (t / "notes.txt").write_text("a file\n")
    if kind == "output-is-folder":
        (t / "results").mkdir()
        return ["--output", str(t / "results")], t / "results", "this is a folder"
    if kind == "output-folder-named-csv":
        (t / "case.csv").mkdir()
        return ["--output", str(t / "case.csv")], t / "case.csv", "this is a folder"
    if kind == "output-side-file-is-folder":
        (t / "case_summary.csv").mkdir()
        return ["--output", str(t / "case.csv")], t / "case_summary.csv", "written beside it, is a folder"
    if kind == "output-under-a-file":
        return ["--output", str(t / "notes.txt" / "case.csv")], t / "notes.txt", "is a file, not a folder"
    if kind == "qc-dir-is-file":
        (t / "qc.png").write_bytes(b"\x89PNG")
        return ["--qc-dir", str(t / "qc.png")], t / "qc.png", "this is a file, not a folder"
    if kind == "qc-dir-is-csv":
        return ["--qc-dir", str(t / "notes.txt")], t / "notes.txt", "this is a file, not a folder"
    if kind == "qc-dir-under-a-file":
        return ["--qc-dir", str(t / "notes.txt" / "qc")], t / "notes.txt", "is a file, not a folder"
    if kind.startswith("labelmap-ext-"):
        name = {"png": "classes.png", "tif": "classes.tif", "xyz": "classes.xyz", "mhd": "classes.mhd",
                "none": "classes", "csv": "classes.csv"}[kind[len("labelmap-ext-"):]]
        return ["--fat-labelmap", str(t / name)], t / name, "cannot write a labelmap with"
    if kind == "labelmap-upper-nifti":
        return ["--fat-labelmap", str(t / "classes.NII.GZ")], t / "classes.NII.GZ", "lower case"
    if kind == "labelmap-is-folder":
        (t / "labels").mkdir()
        return ["--fat-labelmap", str(t / "labels")], t / "labels", "this is a folder"
    if kind == "labelmap-is-the-segmentation":
        seg = case["folder"] / "muscles.seg.nrrd"
        return ["--fat-labelmap", str(seg)], seg, "this is the input file of --segmentation"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", [
    "output-is-folder", "output-folder-named-csv", "output-side-file-is-folder", "output-under-a-file",
    "qc-dir-is-file", "qc-dir-is-csv", "qc-dir-under-a-file",
    "labelmap-ext-png", "labelmap-ext-tif", "labelmap-ext-xyz", "labelmap-ext-mhd", "labelmap-ext-none",
    "labelmap-ext-csv", "labelmap-upper-nifti", "labelmap-is-folder", "labelmap-is-the-segmentation",
])
def test_outputs_unusable_path_is_one_clean_refusal_before_measuring(_out_case, tmp_path, capsys, monkeypatch,
                                                                     kind):
    from ParaspinalFatLib.cli import main

    _out_no_measure(monkeypatch)
    extra, named, phrase = _out_bad_path(tmp_path, _out_case, kind)
    if "--output" not in extra:
        extra = extra + ["--output", str(tmp_path / "ok" / "case.csv")]
    before = _out_snapshot(tmp_path)
    folder = _out_case["folder"]
    rc = main(["measure", "--image", str(folder / "map.nrrd"), "--segmentation", str(folder / "muscles.seg.nrrd"),
               "--map", "scalar", *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("paraspinalfat: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert str(named) in err and phrase in err, err
    assert _out_snapshot(tmp_path) == before  # nothing written, no folder created


@pytest.mark.parametrize("option, name, phrase", [
    ("fat_labelmap", "classes.png", "cannot write a labelmap with '.png'"),
    ("fat_labelmap", "classes.vtk", "cannot write a labelmap with '.vtk'"),
    ("fat_labelmap", "classes", "cannot write a labelmap with no extension"),
    ("qc_dir", "notes.txt", "this is a file, not a folder"),
])
def test_outputs_unusable_path_from_the_api_is_an_input_error(_out_case, tmp_path, option, name, phrase):
    from ParaspinalFatLib import measure
    from ParaspinalFatLib.errors import InputError

    (tmp_path / "notes.txt").write_text("a file\n")
    with pytest.raises(InputError) as info:
        measure(_out_case["image"], _out_case["segmentation"], map_kind="scalar", muscles="all",
                **{option: tmp_path / name})
    assert str(tmp_path / name) in str(info.value) and phrase in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def _out_fail_on_call(k, exc, real):
    """A stand-in for ``real`` that raises ``exc`` on its k-th call (1-based) and works otherwise."""
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(args)
        if len(calls) == k:
            raise exc
        return real(*args, **kwargs)

    wrapper.calls = calls
    return wrapper


@pytest.mark.parametrize("k", range(1, 8))
def test_outputs_failed_write_keeps_the_previous_set(_out_case, tmp_path, capsys, monkeypatch, k):
    import ParaspinalFatLib.report.case_files as case_files

    out = tmp_path / "case.csv"
    assert _out_measure_cli(_out_case, out, "--subject=A", "--per-slice", "--whole-roi") == 0
    before = _out_snapshot(tmp_path)
    assert sorted(before) == sorted(_OUT_FILES)
    full = OSError(_out_errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(case_files, "write_csv_atomic", _out_fail_on_call(k, full, case_files.write_csv_atomic))
    capsys.readouterr()
    rc = _out_measure_cli(_out_case, out, "--subject=B", "--per-slice", "--whole-roi")
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("paraspinalfat: error: --output ")
    assert str(tmp_path / _OUT_FILES[k - 1]) in err and "No space left on device" in err
    assert "nothing was changed" in err
    assert _out_snapshot(tmp_path) == before  # previous run intact, byte for byte; no temporary file left


@pytest.mark.parametrize("k, previous_extra", [(1, True), (3, True), (5, True), (7, True),
                                               (2, False), (6, False), (7, False)])
def test_outputs_failed_move_restores_the_previous_set(_out_case, tmp_path, capsys, monkeypatch, k, previous_extra):
    import ParaspinalFatLib.report.case_files as case_files

    out = tmp_path / "case.csv"
    extra = ["--per-slice", "--whole-roi"] if previous_extra else []
    assert _out_measure_cli(_out_case, out, "--subject=A", *extra) == 0
    before = _out_snapshot(tmp_path)
    assert len(before) == (7 if previous_extra else 5)
    locked = PermissionError(_out_errno.EACCES, "Permission denied (file locked by another program)")
    fake = _out_fail_on_call(k, locked, case_files._move)
    monkeypatch.setattr(case_files, "_move", fake)
    capsys.readouterr()
    rc = _out_measure_cli(_out_case, out, "--subject=B", "--per-slice", "--whole-roi")
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert str(tmp_path / _OUT_FILES[k - 1]) in err and "file locked" in err and "nothing was changed" in err
    # k moves tried, then each file already moved that replaced an older one is moved back
    # (files the previous run did not have are deleted instead)
    assert len(fake.calls) == k + min(k - 1, len(before))
    assert _out_snapshot(tmp_path) == before


def test_outputs_successful_run_replaces_the_whole_set(_out_case, tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "case.csv"
    assert _out_measure_cli(_out_case, out, "--subject=A", "--per-slice", "--whole-roi") == 0
    capsys.readouterr()
    assert _out_measure_cli(_out_case, out, "--subject=B") == 0
    printed = capsys.readouterr().out
    # the earlier run's per-slice and ROI tables are not left beside the new ones
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(_OUT_FILES[:5])
    assert f"removed {tmp_path / 'case_slices.csv'}" in printed and f"removed {tmp_path / 'case_rois.csv'}" in printed
    for name in ("case.csv", "case_summary.csv", "case_summary_wide.csv", "case_grades.csv"):
        assert set(pd.read_csv(tmp_path / name)["subject"]) == {"B"}, name


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o027, 0o077], ids=["022", "002", "027", "077"])
def test_outputs_files_get_the_umask_permissions(_out_case, tmp_path, capsys, umask):
    old = _out_os.umask(umask)
    try:
        assert _out_measure_cli(_out_case, tmp_path / "case.csv", "--per-slice", "--whole-roi") == 0
        again = _out_measure_cli(_out_case, tmp_path / "case.csv", "--per-slice", "--whole-roi")  # replacing
    finally:
        _out_os.umask(old)
    assert again == 0
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {name: 0o666 & ~umask for name in _OUT_FILES}
# --- end outputs ---
