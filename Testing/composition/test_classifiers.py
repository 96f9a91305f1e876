"""Fat/lean intensity classification of one ROI (ParaspinalFatLib.composition.classifiers).

Truth comes from phantoms with known populations (muscle N(300, 25), fat
N(900, 40), optionally a partial-volume population N(600, 50)), from
scikit-learn as a test-only oracle (GaussianMixture, KMeans), and from
brute-force computations written here independently of the library.
"""
import json
import math

import numpy as np
import pytest

from ParaspinalFatLib.errors import InputError, MeasurementError
from ParaspinalFatLib.composition.base import EXCLUDED, FAT, LEAN, UNDEFINED
from ParaspinalFatLib.composition.classifiers import MIN_VOXELS, TissueThresholds, classify, fit_thresholds
from ParaspinalFatLib.composition import classifiers as tc

FITTED = ["gmm", "kmeans", "otsu", "fcm"]


def two_class(seed=0, n_lean=7000, n_fat=3000):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(300, 25, n_lean), rng.normal(900, 40, n_fat)])
    return rng.permutation(x), n_fat


def three_class(seed=0, n_lean=6000, n_pv=800, n_fat=3000):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(300, 25, n_lean), rng.normal(600, 50, n_pv), rng.normal(900, 40, n_fat)])
    return rng.permutation(x), n_fat


def n_fat(x, res):
    return int(np.count_nonzero(classify(x, res) == FAT))


# --------------------------------------------------------------------------- phantoms
@pytest.mark.parametrize("method,params", [
    ("gmm", {}), ("kmeans", {}), ("fcm", {}), ("otsu", {}), ("otsu", {"bins": 256}),
])
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("quantise", [False, True])
def test_phantom_fat_count_within_2_percent(method, params, k, quantise):
    x, true_fat = two_class(1) if k == 2 else three_class(2)
    if quantise:  # integer-valued image (uint16-like): many repeated values
        x = np.round(x)
    res = fit_thresholds(x, method, n_classes=k, **params)
    assert res.n_classes == k and len(res.thresholds) == k - 1
    assert res.n_voxels == x.size
    assert res.converged and res.message == ""
    assert abs(n_fat(x, res) - true_fat) <= 0.02 * true_fat
    codes = classify(x, res)
    assert set(np.unique(codes)) <= ({LEAN, FAT} if k == 2 else {LEAN, UNDEFINED, FAT})
    if k == 3:  # the partial-volume population ends up in the middle class
        assert abs(np.count_nonzero(codes == UNDEFINED) - 800) <= 0.05 * 800
    json.dumps(res.to_dict())  # JSON-serialisable record


def test_phantom_reference_rule():
    rng = np.random.default_rng(3)
    x, true_fat = two_class(3)
    ref = rng.normal(900, 40, 400)  # subcutaneous fat of the same image
    res = fit_thresholds(x, "reference", reference=ref)
    assert res.thresholds[0] == pytest.approx(ref.mean() - 2.0 * ref.std(ddof=1), rel=1e-12)
    assert res.params["rule"] == "mean_minus_k_sd" and res.params["k"] == 2.0
    assert res.params["reference_n"] == 400
    # mean - 2 SD keeps ~97.7 % of the fat population
    assert abs(n_fat(x, res) - 0.977 * true_fat) <= 0.02 * true_fat
    res_f = fit_thresholds(x, "reference", reference=ref, rule="fraction_of_mean", fraction=0.6)
    assert res_f.thresholds[0] == pytest.approx(0.6 * ref.mean(), rel=1e-12)
    assert abs(n_fat(x, res_f) - true_fat) <= 0.02 * true_fat
    # NaN voxels in the reference are ignored and counted
    ref_nan = np.concatenate([ref, [np.nan, np.nan]])
    res_n = fit_thresholds(x, "reference", reference=ref_nan)
    assert res_n.thresholds == res.thresholds and res_n.params["reference_nonfinite_ignored"] == 2


def test_reference_darker_than_roi_is_flagged():
    x, _ = two_class(4)
    res = fit_thresholds(x, "reference", reference=np.linspace(100, 200, 50))
    assert "not brighter" in res.message and "all classified fat" in res.message


# --------------------------------------------------------------------------- oracles
@pytest.mark.parametrize("k", [2, 3])
def test_gmm_matches_sklearn(k):
    GaussianMixture = pytest.importorskip("sklearn.mixture").GaussianMixture
    x, _ = three_class(5, 3000, 500, 1500)
    res = fit_thresholds(x, "gmm", n_classes=k)
    assert res.converged
    gm = GaussianMixture(k, tol=1e-12, max_iter=10000, n_init=10, reg_covar=1e-6 * x.var(),
                         random_state=0).fit(x[:, None])
    order = np.argsort(gm.means_[:, 0])
    sd_total = x.std()
    np.testing.assert_allclose(res.class_means, gm.means_[order, 0], rtol=0, atol=1e-4 * sd_total)
    np.testing.assert_allclose(res.class_weights, gm.weights_[order], rtol=0, atol=1e-4)
    np.testing.assert_allclose(res.class_sds, np.sqrt(gm.covariances_[order, 0, 0]), rtol=1e-4)
    sk = np.argsort(order)[gm.predict(x[:, None])]   # 0 = darkest component
    sk_codes = np.where(sk == k - 1, FAT, np.where(sk == 0, LEAN, UNDEFINED))
    codes = classify(x, res)
    assert np.mean(codes == sk_codes) >= 0.995
    sk_fat = np.count_nonzero(sk_codes == FAT)
    assert abs(np.count_nonzero(codes == FAT) - sk_fat) <= 0.005 * x.size


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("data", ["phantom", "skewed"])
def test_kmeans_matches_sklearn(k, data):
    KMeans = pytest.importorskip("sklearn.cluster").KMeans
    rng = np.random.default_rng(6)
    if data == "phantom":
        x, _ = three_class(6, 2000, 300, 1000)
    else:  # heavy-tailed, unbalanced: where a naive quantile-started Lloyd can stop early
        x = np.concatenate([rng.gamma(2.0, 40.0, 2500) + 200, rng.normal(700, 90, 400), rng.normal(1100, 30, 60)])
    res = fit_thresholds(x, "kmeans", n_classes=k)
    km = KMeans(k, n_init=20, tol=0.0, max_iter=1000, random_state=0).fit(x[:, None])
    order = np.argsort(km.cluster_centers_[:, 0])
    np.testing.assert_allclose(res.class_means, km.cluster_centers_[order, 0], rtol=1e-6)
    labels = np.argsort(order)[km.labels_]
    codes = classify(x, res)
    expected = np.where(labels == k - 1, FAT, np.where(labels == 0, LEAN, UNDEFINED))
    np.testing.assert_array_equal(codes, expected)
    # boundaries are midpoints of adjacent centroids
    for j, t in enumerate(res.thresholds):
        assert t == pytest.approx((res.class_means[j] + res.class_means[j + 1]) / 2, rel=1e-15)


def test_optimal_partition_brute_force():
    """The DP partition has the minimum within-cluster sum of squares (exhaustive search)."""
    rng = np.random.default_rng(7)

    def sse(x, w, bounds):
        tot = 0.0
        for a, b in zip(bounds[:-1], bounds[1:]):
            mu = np.dot(w[a:b], x[a:b]) / w[a:b].sum()
            tot += np.dot(w[a:b], (x[a:b] - mu) ** 2)
        return tot

    for _ in range(150):
        m = int(rng.integers(3, 40))
        pool = rng.normal(0, 1, 300) * rng.choice([0.3, 2.0], 300) + rng.choice([0.0, 3.0, 8.0], 300)
        x = np.sort(rng.choice(pool, m, replace=False))
        w = rng.integers(1, 12, m).astype(float)
        for k in (2, 3):
            got = sse(x, w, [0, *tc._optimal_partition(x, w, k), m])
            if k == 2:
                best = min(sse(x, w, [0, s, m]) for s in range(1, m))
            else:
                best = min(sse(x, w, [0, i, j, m]) for i in range(1, m - 1) for j in range(i + 1, m))
            assert got <= best * (1 + 1e-12) + 1e-12


def _brute_otsu_exact(x, k):
    """Exhaustive Otsu over distinct values, between-class variance from the raw voxels."""
    u = np.unique(x)
    cands = (u[:-1] + u[1:]) / 2
    mu_t = x.mean()
    best, arg = -1.0, None
    combos = [(t,) for t in cands] if k == 2 else [(a, b) for i, a in enumerate(cands) for b in cands[i + 1:]]
    for ts in combos:
        edges = [-np.inf, *ts, np.inf]
        sb = 0.0
        for lo, hi in zip(edges[:-1], edges[1:]):
            cls = x[(x >= lo) & (x < hi)]
            sb += cls.size / x.size * (cls.mean() - mu_t) ** 2
        if sb > best * (1 + 1e-13):
            best, arg = sb, ts
    return arg


@pytest.mark.parametrize("k,n", [(2, 1200), (3, 120)])
def test_otsu_exact_brute_force(k, n):
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.normal(300, 40, n // 2), rng.normal(550, 80, n // 4), rng.normal(900, 60, n // 4)])
    res = fit_thresholds(x, "otsu", n_classes=k)
    expected = _brute_otsu_exact(x, k)
    np.testing.assert_allclose(res.thresholds, expected, rtol=1e-12)
    # exact Otsu and exact k-means split the voxels identically
    np.testing.assert_array_equal(classify(x, res), classify(x, fit_thresholds(x, "kmeans", n_classes=k)))


@pytest.mark.parametrize("k,bins,gap", [(2, 256, False), (2, 100, False), (3, 48, False), (2, 256, True)])
def test_otsu_histogram_brute_force(k, bins, gap):
    rng = np.random.default_rng(9)
    if gap:  # empty bins between the classes: the first maximiser is the edge above the lower class
        x, _ = two_class(9)
    else:
        x = np.concatenate([rng.normal(300, 40, 3000), rng.normal(600, 70, 700), rng.normal(900, 60, 1500)])
    res = fit_thresholds(x, "otsu", n_classes=k, bins=bins)
    hist, edges = np.histogram(x, bins=bins, range=(x.min(), x.max()))
    centres = (edges[:-1] + edges[1:]) / 2
    p = hist / hist.sum()
    mu_t = np.dot(p, centres)

    def sigma_b(cuts):  # cuts = bin indices where a new class starts
        b = [0, *cuts, bins]
        s = 0.0
        for lo, hi in zip(b[:-1], b[1:]):
            w = p[lo:hi].sum()
            if w == 0:
                return -1.0
            s += w * (np.dot(p[lo:hi], centres[lo:hi]) / w - mu_t) ** 2
        return s

    combos = [(t,) for t in range(1, bins)] if k == 2 else [(a, b) for a in range(1, bins) for b in range(a + 1, bins)]
    vals = np.array([sigma_b(c) for c in combos])
    best = combos[int(np.argmax(vals >= vals.max() * (1 - 1e-12)))]  # first maximiser
    np.testing.assert_allclose(res.thresholds, edges[list(best)], rtol=1e-12)
    assert res.params["bins"] == bins


def test_otsu_histogram_vs_skimage_if_installed():
    """Same histogram Otsu as scikit-image; our threshold is the upper edge of skimage's bin.

    skimage returns the centre of the last lower-class bin and classifies ``x > t``, which
    can put voxels of that bin's upper half in the upper class although the Otsu criterion
    counted them in the lower class; the bin edge keeps the partition exact.
    """
    filters = pytest.importorskip("skimage.filters")
    x, _ = three_class(10, 3000, 700, 1500)
    for k, bins in ((2, 256), (3, 64)):
        res = fit_thresholds(x, "otsu", n_classes=k, bins=bins)
        half = (x.max() - x.min()) / bins / 2
        t_sk = [filters.threshold_otsu(x, nbins=bins)] if k == 2 else filters.threshold_multiotsu(x, classes=3, nbins=bins)
        np.testing.assert_allclose(res.thresholds, np.asarray(t_sk) + half, rtol=1e-12)


def test_fcm_against_naive_implementation_and_equal_memberships():
    x, _ = three_class(11, 1500, 300, 800)
    for m in (2.0, 3.0):
        res = fit_thresholds(x, "fcm", n_classes=3, m=m, tol=1e-12, max_iter=5000)
        assert res.converged
        # naive FCM on the raw voxels, started from the exact k-means centroids
        c = np.array(fit_thresholds(x, "kmeans", n_classes=3).class_means)
        for _ in range(5000):
            d = np.abs(x[:, None] - c[None, :])
            u = 1.0 / ((d[:, :, None] / d[:, None, :]) ** (2 / (m - 1))).sum(axis=2)
            c_new = (u ** m * x[:, None]).sum(0) / (u ** m).sum(0)
            if np.max(np.abs(c_new - c)) < 1e-10:
                c = c_new
                break
            c = c_new
        np.testing.assert_allclose(res.class_means, np.sort(c), rtol=1e-7)
        # memberships of adjacent clusters are equal exactly at the thresholds
        cen = np.array(res.class_means)
        for j, t in enumerate(res.thresholds):
            d = np.abs(t - cen)
            u = d ** (-2 / (m - 1)) / np.sum(d ** (-2 / (m - 1)))
            assert u[j] == pytest.approx(u[j + 1], rel=1e-12)
            assert t == pytest.approx((cen[j] + cen[j + 1]) / 2, rel=1e-15)


@pytest.mark.parametrize("k", [2, 3])
def test_gmm_boundary_has_equal_adjacent_posteriors(k):
    x, _ = three_class(12, 3000, 600, 1200)
    res = fit_thresholds(x, "gmm", n_classes=k)
    mu, sd, w = map(np.array, (res.class_means, res.class_sds, res.class_weights))
    for j, t in enumerate(res.thresholds):
        assert mu[j] < t < mu[j + 1]
        logp = np.log(w) - np.log(sd) - 0.5 * ((t - mu) / sd) ** 2
        assert logp[j] == pytest.approx(logp[j + 1], abs=1e-9)
        assert res.params["boundary_rule"][j] == "quadratic"


def test_gaussian_boundary_cases():
    # equal variances: closed form
    t, rule = tc._gaussian_boundary(0.0, 1.0, 0.7, 3.0, 1.0, 0.3)
    assert rule.startswith("linear")
    assert t == pytest.approx(1.5 + math.log(0.7 / 0.3) / 3.0, rel=1e-14)
    # unequal variances: root of the quadratic between the means
    t, rule = tc._gaussian_boundary(0.0, 1.0, 0.5, 4.0, 4.0, 0.5)
    f = lambda v: (math.log(0.5) - 0.5 * math.log(4.0) - (v - 4) ** 2 / 8) - (math.log(0.5) - v ** 2 / 2)
    assert rule == "quadratic" and 0 < t < 4 and abs(f(t)) < 1e-12
    # a near-empty bright component never wins between the means: midpoint fallback
    t, rule = tc._gaussian_boundary(0.0, 1.0, 1 - 1e-30, 1.0, 1.0, 1e-30)
    assert t == 0.5 and rule.startswith("midpoint")


def test_gmm_extra_component_is_flagged():
    x, _ = two_class(13)   # only two populations, three components requested
    res = fit_thresholds(x, "gmm", n_classes=3, max_iter=50)
    assert res.message  # degenerate: reported, not raised
    assert res.thresholds[0] <= res.thresholds[1]


def test_gmm_flags_single_population_roi():
    """A fat-free ROI (one Gaussian): gmm reports overlapping components instead of silent 'fat'."""
    x = np.random.default_rng(26).normal(300, 25, 5000)
    res = fit_thresholds(x, "gmm", n_classes=2)
    assert res.params["ashman_d"][0] < 2 and "Ashman's D" in res.message
    good = fit_thresholds(two_class(26)[0], "gmm", n_classes=2)
    assert good.params["ashman_d"][0] > 10 and good.message == ""


# --------------------------------------------------------------------------- conventions
def test_boundary_convention_two_classes():
    t = 500.0
    v = np.array([np.nextafter(t, -np.inf), t, np.nextafter(t, np.inf), np.nan, np.inf, -np.inf])
    np.testing.assert_array_equal(classify(v, t), [LEAN, FAT, FAT, EXCLUDED, EXCLUDED, EXCLUDED])
    np.testing.assert_array_equal(classify(v, [t]), classify(v, (t,)))


def test_boundary_convention_three_classes():
    lo, hi = 400.0, 700.0
    v = np.array([[399.999, 400.0, 500.0], [699.999, 700.0, np.nan]])
    codes = classify(v, (lo, hi))
    assert codes.dtype == np.int8 and codes.shape == v.shape
    np.testing.assert_array_equal(codes, [[LEAN, UNDEFINED, UNDEFINED], [UNDEFINED, FAT, EXCLUDED]])
    np.testing.assert_array_equal(classify(np.array([5.0]), (5.0, 5.0)), [FAT])  # empty middle class


@pytest.mark.parametrize("method", FITTED)
def test_fitted_threshold_values_are_brighter_class(method):
    x, _ = three_class(14, 1000, 200, 500)
    for k in (2, 3):
        res = fit_thresholds(x, method, n_classes=k)
        on = np.array(res.thresholds)
        expected = [FAT] if k == 2 else [UNDEFINED, FAT]
        np.testing.assert_array_equal(classify(on, res), expected)
        counts = np.bincount(classify(x, res), minlength=3)
        assert counts.sum() == res.n_voxels


def test_classify_rejects_bad_thresholds():
    for bad in ([], [1.0, 2.0, 3.0], [3.0, 1.0], [np.nan], "abc"):
        with pytest.raises(InputError):
            classify(np.arange(5.0), bad)
    with pytest.raises(InputError):
        classify(np.array(["a", "b"]), 1.0)


def test_nan_and_inf_voxels_are_ignored():
    x, _ = two_class(15, 2000, 800)
    dirty = np.concatenate([x, [np.nan] * 7, [np.inf, -np.inf]])
    for method in FITTED:
        a, b = fit_thresholds(x, method, n_classes=2), fit_thresholds(dirty, method, n_classes=2)
        assert a.thresholds == b.thresholds and b.n_voxels == x.size
        assert b.params["n_nonfinite_ignored"] == 9


# --------------------------------------------------------------------------- degenerate input
@pytest.mark.parametrize("method", FITTED + ["reference"])
@pytest.mark.parametrize("values,needle", [
    (np.array([]), "no voxel with a finite intensity"),
    (np.full(50, np.nan), "no voxel with a finite intensity"),
    (np.full(50, 412.0), "same intensity"),
    (np.array([1.0, 2.0, 3.0, 4.0, 5.0]), "only 5 voxel"),
])
def test_degenerate_roi_raises_measurement_error(method, values, needle):
    ref = np.linspace(800, 1000, 40) if method == "reference" else None
    with pytest.raises(MeasurementError, match=needle) as info:
        fit_thresholds(values, method, reference=ref, n_classes=2)
    msg = str(info.value)
    assert any(w in msg for w in ("Check", "Draw", "check"))  # says what to do


@pytest.mark.parametrize("method", ["gmm", "kmeans", "otsu", "fcm"])
def test_fewer_distinct_values_than_classes(method):
    x = np.array([100.0] * 30 + [900.0] * 20)
    with pytest.raises(MeasurementError, match="only 2 distinct intensities.*n_classes=2"):
        fit_thresholds(x, method, n_classes=3)
    res = fit_thresholds(x, method, n_classes=2)  # two levels, two classes: fine
    assert n_fat(x, res) == 20


def test_min_voxels_parameter():
    x = np.array([100.0, 110, 120, 900, 910, 920])
    with pytest.raises(MeasurementError, match=f"at least {MIN_VOXELS}"):
        fit_thresholds(x, "kmeans", n_classes=2)
    res = fit_thresholds(x, "kmeans", n_classes=2, min_voxels=6)
    assert n_fat(x, res) == 3


@pytest.mark.parametrize("ref,needle", [
    (None, "needs the voxel values of a reference fat ROI"),
    (np.array([]), "reference fat ROI has no voxel"),
    (np.full(20, np.nan), "reference fat ROI has no voxel"),
    (np.array([900.0, 910.0, 905.0]), "only 3 finite voxel"),
    (np.full(30, 950.0), "same intensity"),
])
def test_reference_problems_raise_measurement_error(ref, needle):
    x, _ = two_class(16, 500, 200)
    with pytest.raises(MeasurementError, match=needle):
        fit_thresholds(x, "reference", reference=ref)


def test_fraction_rule_needs_positive_reference_mean():
    x, _ = two_class(17, 500, 200)
    with pytest.raises(MeasurementError, match="true zero"):
        fit_thresholds(x - 5000, "reference", reference=np.linspace(-10, -1, 20), rule="fraction_of_mean")


@pytest.mark.parametrize("kwargs", [
    {"method": "watershed"},
    {"method": "gmm", "n_classes": 4},
    {"method": "gmm", "n_classes": 1},
    {"method": "gmm", "n_classes": True},
    {"method": "gmm", "bins": 10},
    {"method": "gmm", "tol": -1.0},
    {"method": "gmm", "max_iter": 0},
    {"method": "fcm", "m": 1.0},
    {"method": "otsu", "bins": 1},
    {"method": "otsu", "bins": 2.5},
    {"method": "kmeans", "reference": np.ones(20)},
    {"method": "reference", "reference": np.linspace(800, 900, 20), "n_classes": 3},
    {"method": "reference", "reference": np.linspace(800, 900, 20), "rule": "median"},
    {"method": "reference", "reference": np.linspace(800, 900, 20), "fraction": 0.5},
    {"method": "reference", "reference": np.linspace(800, 900, 20), "k": -1},
    {"method": "kmeans", "min_voxels": 0},
])
def test_invalid_arguments_raise_input_error(kwargs):
    x, _ = two_class(18, 300, 100)
    with pytest.raises(InputError):
        fit_thresholds(x, **kwargs)


def test_non_numeric_values_raise_input_error():
    with pytest.raises(InputError):
        fit_thresholds(np.array(["a"] * 20), "kmeans")
    with pytest.raises(InputError):
        fit_thresholds(np.arange(20) * (1 + 1j), "kmeans")


# --------------------------------------------------------------------------- properties
ALL_CASES = [("gmm", 2, {}), ("gmm", 3, {}), ("kmeans", 2, {}), ("kmeans", 3, {}), ("otsu", 2, {}),
             ("otsu", 3, {}), ("otsu", 2, {"bins": 256}), ("fcm", 2, {}), ("fcm", 3, {})]


@pytest.mark.parametrize("method,k,params", ALL_CASES)
def test_deterministic_and_shuffle_invariant(method, k, params):
    x, _ = three_class(19, 2000, 300, 900)
    a = fit_thresholds(x, method, n_classes=k, **params)
    b = fit_thresholds(x.copy(), method, n_classes=k, **params)
    assert repr(a) == repr(b)
    perm = np.random.default_rng(20).permutation(x.size)
    c = fit_thresholds(x[perm], method, n_classes=k, **params)
    assert c.thresholds == a.thresholds and c.class_means == a.class_means  # bitwise
    np.testing.assert_array_equal(classify(x[perm], c), classify(x, a)[perm])
    d = fit_thresholds(x.reshape(-1, 100), method, n_classes=k, **params)  # any shape
    assert d.thresholds == a.thresholds


@pytest.mark.parametrize("method,k,params", ALL_CASES + [("reference", 2, {})])
@pytest.mark.parametrize("a,b", [(0.01, 0.0), (3.7, -5000.0), (250.0, 1234.5)])
def test_affine_equivariance(method, k, params, a, b):
    x, _ = three_class(21, 2000, 300, 900)
    ref = np.random.default_rng(22).normal(900, 40, 300)
    kw = dict(params)
    if method == "reference":
        r0 = fit_thresholds(x, method, reference=ref)
        r1 = fit_thresholds(a * x + b, method, reference=a * ref + b)
    else:
        r0 = fit_thresholds(x, method, n_classes=k, **kw)
        r1 = fit_thresholds(a * x + b, method, n_classes=k, **kw)
    tol = 1e-7 * a * x.std()
    np.testing.assert_allclose(r1.thresholds, a * np.array(r0.thresholds) + b, rtol=0, atol=tol)
    np.testing.assert_allclose(r1.class_means, a * np.array(r0.class_means) + b, rtol=0, atol=tol)
    c0 = np.bincount(classify(x, r0), minlength=3)
    c1 = np.bincount(classify(a * x + b, r1), minlength=3)
    assert np.abs(c0 - c1).max() <= (2 if params.get("bins") else 0)


def test_fraction_rule_is_scale_equivariant():
    x, _ = two_class(23, 500, 200)
    ref = np.random.default_rng(24).normal(900, 40, 100)
    r0 = fit_thresholds(x, "reference", reference=ref, rule="fraction_of_mean")
    r1 = fit_thresholds(7.5 * x, "reference", reference=7.5 * ref, rule="fraction_of_mean")
    assert r1.thresholds[0] == pytest.approx(7.5 * r0.thresholds[0], rel=1e-12)


def test_result_record():
    x, _ = three_class(25, 1000, 200, 500)
    res = fit_thresholds(x, "gmm")
    assert res.method == "gmm" and res.n_classes == 3  # gmm default: 3 classes
    assert fit_thresholds(x, "otsu").n_classes == 2   # otsu default: 2 classes
    d = json.loads(json.dumps(res.to_dict()))
    assert d["thresholds"] == list(res.thresholds) and d["params"]["tol"] == 1e-8
    with pytest.raises(Exception):
        res.method = "x"  # frozen
    with pytest.raises(InputError):
        TissueThresholds("manual", 3, (1.0,), (), {}, 0, True)
    manual = TissueThresholds("manual", 2, [450], (), {}, 0, True)
    assert manual.thresholds == (450.0,)
    np.testing.assert_array_equal(classify([449.0, 450.0], manual), [LEAN, FAT])


# ----------------------------------------------------------------------------- does the data support n_classes
def test_class_support_counts_the_populations():
    from ParaspinalFatLib.composition.classifiers import BIC_MIN_GAIN, class_support
    rng = np.random.default_rng(30)
    one = rng.normal(300, 25, 1500)
    two = np.concatenate([rng.normal(300, 20, 750), rng.normal(1000, 60, 750)])
    three = np.concatenate([rng.normal(300, 20, 825), rng.normal(650, 25, 225), rng.normal(1000, 30, 450)])
    for values, expected in ((one, 1), (two, 2), (three, 3)):
        sup = class_support(values)
        assert sup.n_supported == expected and sup.n_voxels == values.size
        for k in (2, 3):
            supported = sup.bic_gain[k] >= BIC_MIN_GAIN and sup.ashman_d[k] >= tc.ASHMAN_D_MIN
            assert supported == (k <= expected), (expected, k, sup)
    assert class_support(two, max_classes=2).n_supported == 2 and 3 not in class_support(two, 2).bic_gain
    # the 2-component BIC gain is the one of the mixture against one Gaussian, computed here by hand
    fit = fit_thresholds(two, "gmm", 2, max_iter=300, tol=1e-6)
    m, s, w = (np.asarray(x) for x in (fit.class_means, fit.class_sds, fit.class_weights))
    ll2 = np.log((w / (s * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((two[:, None] - m) / s) ** 2)).sum(1)).sum()
    ll1 = (-0.5 * ((two - two.mean()) / two.std()) ** 2 - np.log(two.std() * np.sqrt(2 * np.pi))).sum()
    n = two.size
    assert class_support(two).bic_gain[2] == pytest.approx((-2 * ll1 + 2 * np.log(n)) - (-2 * ll2 + 5 * np.log(n)),
                                                           rel=1e-9)


def test_class_support_gives_no_verdict_on_too_little_data():
    from ParaspinalFatLib.composition.classifiers import class_support
    assert class_support(np.array([1.0, 2.0, np.nan])).n_voxels == 0
    assert class_support(np.full(50, 7.0)).n_voxels == 0
