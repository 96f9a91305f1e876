#!/usr/bin/env python3
"""Write synthetic sample cases (PDFF phantoms with known truth) for demos and manual testing.

    python Resources/make_sample_data.py OUTPUT_FOLDER

writes a 2-D-ROI case (ROIs named with their level) and a 3-D case (muscles + vertebra
masks, levels found automatically), each as ``*_pdff.nrrd``, ``*_muscles.seg.nrrd`` (loads
in 3D Slicer) and ``*_truth.csv``.  The generator itself is ``ParaspinalFatLib.phantom``.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ParaspinalFatLib.phantom import make_phantom, write_phantom  # noqa: E402


def main(argv):
    if len(argv) != 1:
        print(__doc__)
        return 2
    out = Path(argv[0])
    for mode, tilt in (("2d", 0.0), ("3d", 8.0)):
        paths = write_phantom(make_phantom(mode=mode, tilt_deg=tilt), out, stem=f"phantom_{mode}")
        for p in paths.values():
            print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
