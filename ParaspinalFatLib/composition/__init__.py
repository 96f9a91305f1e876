"""Stage 3 — tissue composition: how a voxel's value becomes fat, lean or undefined.

One composition method class per map kind, each in its own module, built by
:func:`~.factory.make_method`:

* :mod:`.base` -- class codes (``LEAN``, ``UNDEFINED``, ``FAT``, ``EXCLUDED``),
  the table columns and units, :class:`~.base.CompositionMethod` (the base class);
* :mod:`.pdff` -- PDFF maps; :mod:`.pdff_scale` -- their storage scale;
* :mod:`.dixon` -- Dixon fat and water images;
* :mod:`.ct` -- CT HU windows; :mod:`.hounsfield` -- the check that a CT is in HU;
* :mod:`.intensity` -- T1/T2 per-row intensity classification, using the
  classifiers of :mod:`.classifiers` (GMM, k-means, Otsu, FCM, reference ROI);
* :mod:`.scalar` -- any other map: statistics only;
* :mod:`.factory` -- :func:`~.factory.make_method` and ``MAP_KINDS``.
"""
