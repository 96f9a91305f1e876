#!/usr/bin/env python3
"""Draw the ParaspinalFat module icon: a stylised axial lumbar cross-section.

    python Resources/make_icon.py [OUTPUT.png]

writes a 128 x 128 RGBA PNG (default ``ParaspinalFat/Resources/Icons/ParaspinalFat.png``,
the icon of the Slicer module and of the extension): the body outline with its
subcutaneous fat, the vertebral body, the spinal canal and spinous process, both
psoas muscles and the two paraspinal muscle groups with yellow fat speckles.  The
picture is drawn at 4x and reduced (anti-aliased); every position is fixed and the
speckles come from a seeded generator, so the same Pillow version writes the same
pixels.  Needs Pillow.
"""
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 128  # pixels of the icon (Slicer extension icons are 128 x 128)
SCALE = 4  # drawn at SCALE x SIZE, then reduced with a Lanczos filter
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "ParaspinalFat" / "Resources" / "Icons" / "ParaspinalFat.png"

BACKGROUND = (24, 34, 46, 255)
SUBCUTANEOUS_FAT = (226, 196, 104, 255)
SOFT_TISSUE = (92, 96, 104, 255)
BONE = (240, 236, 224, 255)
BONE_EDGE = (178, 170, 150, 255)
CANAL = (40, 48, 60, 255)
MUSCLE = (178, 64, 52, 255)
MUSCLE_EDGE = (120, 38, 32, 255)
FAT_SPECKLE = (255, 214, 64, 255)


def _box(cx, cy, rx, ry):
    """Bounding box, in the 4x drawing, of an ellipse given in icon pixels."""
    return [SCALE * (cx - rx), SCALE * (cy - ry), SCALE * (cx + rx), SCALE * (cy + ry)]


def _ellipse(draw, cx, cy, rx, ry, fill, edge=None, width=1.0):
    draw.ellipse(_box(cx, cy, rx, ry), fill=fill, outline=edge, width=int(round(SCALE * width)) if edge else 0)


def _speckles(draw, rng, cx, cy, rx, ry, count):
    """Fat speckles scattered inside the ellipse (cx, cy, rx, ry), kept off its edge."""
    placed = 0
    while placed < count:
        u, v = rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0)
        if u * u + v * v > 0.72:
            continue
        radius = rng.uniform(1.2, 2.4)
        _ellipse(draw, cx + u * rx, cy + v * ry, radius, radius, FAT_SPECKLE)
        placed += 1


def draw_icon() -> Image.Image:
    """The icon as a 128 x 128 RGBA image.

    Returns
    -------
    PIL.Image.Image
        The reduced (anti-aliased) picture.
    """
    big = Image.new("RGBA", (SIZE * SCALE, SIZE * SCALE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    draw.rounded_rectangle([0, 0, SIZE * SCALE - 1, SIZE * SCALE - 1], radius=22 * SCALE, fill=BACKGROUND)
    # body: subcutaneous fat ring around the soft tissue (anterior up, as Slicer's axial view)
    _ellipse(draw, 64, 66, 58, 50, SUBCUTANEOUS_FAT)
    _ellipse(draw, 64, 66, 52, 44, SOFT_TISSUE)
    # psoas muscles beside the vertebral body
    for cx in (37, 91):
        _ellipse(draw, cx, 52, 9, 11, MUSCLE, MUSCLE_EDGE, 1.0)
    # vertebral body, neural arch, spinal canal, spinous process
    _ellipse(draw, 64, 46, 17, 15, BONE, BONE_EDGE, 1.2)
    _ellipse(draw, 64, 72, 11, 9, BONE, BONE_EDGE, 1.2)
    _ellipse(draw, 64, 71, 6, 5, CANAL)
    draw.polygon([(SCALE * 60, SCALE * 78), (SCALE * 68, SCALE * 78), (SCALE * 66, SCALE * 104),
                  (SCALE * 62, SCALE * 104)], fill=BONE, outline=BONE_EDGE)
    # paraspinal muscles (multifidus + erector spinae) either side of the spinous process
    rng = random.Random(13)
    for cx in (44, 84):
        _ellipse(draw, cx, 90, 17, 14, MUSCLE, MUSCLE_EDGE, 1.2)
        _speckles(draw, rng, cx, 90, 17, 14, count=16)
    return big.resize((SIZE, SIZE), Image.LANCZOS)


def main(argv) -> int:
    """Write the icon to ``argv[0]`` (default :data:`DEFAULT_OUTPUT`); return the exit status."""
    if len(argv) > 1 or (argv and argv[0] in ("-h", "--help")):
        print(__doc__)
        return 2 if len(argv) > 1 else 0
    out = Path(argv[0]) if argv else DEFAULT_OUTPUT
    out.parent.mkdir(parents=True, exist_ok=True)
    draw_icon().save(out, format="PNG", optimize=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
