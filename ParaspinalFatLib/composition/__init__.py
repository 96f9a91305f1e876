"""Stage 3 — tissue composition: how a voxel's value becomes fat, lean or undefined.

One composition method per map kind (``pdff``, ``dixon``, ``ct``, ``t1``/``t2``,
``scalar``), made by ``make_method``; the PDFF storage scale; the T1/T2 intensity
classifiers (GMM, k-means, Otsu, FCM, reference ROI).
"""
