"""T1/T2 per-row intensity classification through measure() (ParaspinalFatLib.composition.intensity)."""
import json
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from ParaspinalFatLib import measure_case
from ParaspinalFatLib.composition.base import EXCLUDED, GroupContext
from ParaspinalFatLib.composition.intensity import BIC_MIN_GAIN, IntensityMethod, overlap_note
from ParaspinalFatLib.errors import InputError
from ParaspinalFatLib.segmentation import Segment


@pytest.fixture(scope="module")
def t1_case(ph, masks, image_like):
    """Function: muscle N(300, 20), fat N(1000, 30) inside every ROI; returns the image and the true fat counts."""
    def make(fat_share=0.3, seed=11):
        rng = np.random.default_rng(seed)
        shape = sitk.GetArrayFromImage(ph.image).shape
        img = rng.normal(150, 10, shape)
        truth = {}
        for name, m in masks.items():
            n = int(m.sum())
            is_fat = rng.random(n) < fat_share
            vals = np.where(is_fat, rng.normal(1000, 30, n), rng.normal(300, 20, n))
            img[m] = vals
            truth[name] = int(is_fat.sum())
        return image_like(img.astype(np.float32)), truth
    return make


@pytest.mark.parametrize("classifier,n_classes", [("gmm", 2), ("kmeans", 2), ("otsu", 2), ("fcm", 2)])
def test_t1_classifiers_find_the_true_fat_area(ph, t1_case, area, classifier, n_classes):
    img, truth = t1_case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = measure_case(img, ph.segmentation, map_kind="t1", classifier=classifier, n_classes=n_classes)
    for _, row in table.iterrows():
        true_fat_csa = truth[row["segment"]] * area
        assert row["fat_csa_mm2"] == pytest.approx(true_fat_csa, rel=0.02), row["segment"]
        assert row["fat_csa_mm2"] + row["lean_csa_mm2"] + row["undefined_csa_mm2"] == pytest.approx(row["csa_mm2"])
        assert row["fat_area_ratio"] * row["csa_mm2"] == pytest.approx(row["fat_csa_mm2"])
        assert np.isfinite(row["threshold_high"])
        assert json.loads(row["method_params"])["classifier"] == classifier
    psoas = table[table["muscle"] == "psoas"]
    assert psoas["warnings"].str.contains("psoas").all()
    assert not table.loc[table["muscle"] != "psoas", "warnings"].str.contains("psoas").any()


def test_t1_gmm_three_classes_partial_volume(ph, masks, image_like, area):
    """Default GMM with 3 classes: fat, a partial-volume middle class ("undefined") and lean."""
    rng = np.random.default_rng(21)
    shape = sitk.GetArrayFromImage(ph.image).shape
    img = rng.normal(150, 10, shape)
    truth = {}
    for name, m in masks.items():
        n = int(m.sum())
        cls = rng.choice(3, size=n, p=[0.55, 0.15, 0.30])  # lean, partial volume, fat
        img[m] = np.choose(cls, [rng.normal(300, 20, n), rng.normal(650, 25, n), rng.normal(1000, 30, n)])
        truth[name] = ((cls == 2).sum(), (cls == 1).sum())
    table = measure_case(image_like(img.astype(np.float32)), ph.segmentation, map_kind="t1")
    for _, row in table.iterrows():
        n_fat, n_mid = truth[row["segment"]]
        assert row["fat_csa_mm2"] == pytest.approx(n_fat * area, rel=0.02)
        assert row["undefined_csa_mm2"] == pytest.approx(n_mid * area, rel=0.10)
        assert row["threshold_low"] < row["threshold_high"]


def test_t1_kmeans_on_a_fat_free_roi_is_flagged(ph, t1_case, image_like):
    """k-means always splits; a muscle-only ROI must carry an overlap warning."""
    rng = np.random.default_rng(4)
    arr = rng.normal(300, 25, sitk.GetArrayFromImage(ph.image).shape).astype(np.float32)
    table = measure_case(image_like(arr), ph.segmentation, map_kind="t1", classifier="kmeans", n_classes=2)
    assert table["warnings"].str.contains("no clearly separate fat population").all()
    img, _ = t1_case()  # with a real fat population: no such warning
    table = measure_case(img, ph.segmentation, map_kind="t1", classifier="kmeans", n_classes=2)
    assert not table["warnings"].str.contains("no clearly separate").any()


def test_t1_single_intensity_roi_is_a_row_message_not_a_crash(ph, t1_case, masks, image_like, area):
    img, _ = t1_case()
    arr = sitk.GetArrayFromImage(img)
    arr[masks["MF_R_L5/S1"]] = 400.0
    table = measure_case(image_like(arr), ph.segmentation, map_kind="t1", n_classes=2).set_index("segment")
    row = table.loc["MF_R_L5/S1"]
    assert "not classified" in row["warnings"]
    assert np.isnan(row["fat_csa_mm2"]) or row["fat_csa_mm2"] == 0
    assert row["csa_mm2"] == pytest.approx(masks["MF_R_L5/S1"].sum() * area)
    assert table.loc["MF_L_L5/S1", "warnings"] == ""


def test_t1_reference_fat_segment(ph, t1_case, image_like, area):
    img, truth = t1_case()
    arr = sitk.GetArrayFromImage(img)
    seg = ph.segmentation
    layers = seg.layers.copy()
    rng = np.random.default_rng(2)
    # a subcutaneous fat ROI on each level slice, brighter than nothing else
    for k in (10, 18, 26):
        layers[0, k, 2:6, 40:80] = 99
        arr[k, 2:6, 40:80] = rng.normal(1000, 30, (4, 40))
    seg2 = seg.with_layers(layers, seg.geometry)
    seg2.segments = list(seg.segments) + [Segment("subcutaneous_fat", 0, 99)]
    # fat in the ROIs has the reference's distribution: mean - 3 SD keeps 99.9 % of it
    table = measure_case(image_like(arr), seg2, map_kind="t1", classifier="reference",
                         reference_segment="subcutaneous_fat", classifier_params={"k": 3})
    assert "subcutaneous_fat" not in set(table["segment"])
    for _, row in table.iterrows():
        assert row["fat_csa_mm2"] == pytest.approx(truth[row["segment"]] * area, rel=0.02)
    with pytest.raises(InputError, match="subcutaneous"):
        measure_case(image_like(arr), ph.segmentation, map_kind="t1", classifier="reference",
                     reference_segment="subcutaneous_fat")


# ----------------------------------------------------------------------------- the class itself
def test_options_are_checked_and_recorded():
    with pytest.raises(InputError, match="unknown classifier"):
        IntensityMethod.from_options("t1", classifier="watershed")
    with pytest.raises(InputError, match="reference fat segment"):
        IntensityMethod.from_options("t2", classifier="reference")
    m = IntensityMethod.from_options("T2".lower(), classifier="OTSU", n_classes=3, classifier_params={"bins": 64})
    assert (m.kind, m.unit) == ("t2", "a.u.")
    assert m.params == {"classifier": "otsu", "n_classes": 2, "bins": 64}  # otsu: two classes
    assert IntensityMethod.from_options("t1", unit="counts").unit == "counts"


def test_reference_rows_without_reference_voxels_are_not_classified():
    rng = np.random.default_rng(9)
    values = np.concatenate([rng.normal(300, 20, 200), rng.normal(1000, 30, 100)] * 2)
    groups = np.repeat([0, 1], 300)
    method = IntensityMethod.from_options("t1", classifier="reference", reference_segment="sc_fat")
    ref = rng.normal(1000, 30, 50)
    codes, thresholds, notes = method.classify(values, groups, 2, GroupContext(["multifidus", "psoas"], [ref, None]))
    assert (codes[groups == 1] == EXCLUDED).all() and np.isnan(thresholds["threshold_high"][1])
    assert "reference fat segment 'sc_fat' has no voxel" in notes[1][0]
    assert "psoas on T1" in notes[1][1]  # the psoas note comes after the classification notes
    assert np.isfinite(thresholds["threshold_high"][0]) and notes[0] == []
    assert (codes[groups == 0] != EXCLUDED).all()


def test_overlap_note_needs_both_bic_gain_and_separation():
    rng = np.random.default_rng(12)
    one = rng.normal(300, 25, 2000)
    two = np.concatenate([rng.normal(300, 25, 1400), rng.normal(900, 40, 600)])
    note = overlap_note(one, "otsu")
    assert note.startswith("otsu: the intensities show no clearly separate fat population")
    assert f"needs >= {BIC_MIN_GAIN:g}" in note
    assert overlap_note(two, "otsu") == ""
    assert overlap_note(np.array([1.0, np.nan]), "kmeans") == ""  # too few voxels for a mixture: no verdict


def test_class_support_note_wording_for_each_situation():
    from ParaspinalFatLib.composition.intensity import class_support_note
    rng = np.random.default_rng(13)
    one = rng.normal(300, 25, 1500)
    two = np.concatenate([rng.normal(300, 20, 750), rng.normal(1000, 60, 750)])
    three = np.concatenate([rng.normal(300, 20, 825), rng.normal(650, 25, 225), rng.normal(1000, 30, 450)])
    assert class_support_note(one, 2, "reference").startswith(
        "reference: the intensities show no clearly separate fat population (2-Gaussian mixture vs fewer: BIC gain")
    assert class_support_note(one, 2, "reference").endswith(
        "the fat area rests on the reference ROI's threshold alone: check that this ROI really holds no fat "
        "(or only fat)")
    assert "the 3 classes split a single tissue" in class_support_note(one, 3, "fcm")
    note = class_support_note(two, 3, "kmeans")
    assert note.startswith("kmeans: the intensities show 2 populations, not the 3 classes asked for (3-Gaussian "
                           "mixture vs fewer: BIC gain") and note.endswith("use n_classes=2")
    assert class_support_note(two, 2, "kmeans") == "" and class_support_note(three, 3, "gmm") == ""
    assert class_support_note(three, 2, "otsu") == ""
