"""Stage 2 — anatomy: what the names mean and where the levels are.

Modules
-------
level_names
    The level grammar: ``L4-L5`` -> ``L4/5``, discs vs vertebrae, ordering.
tokens
    How a segment name is split into words.
muscle_names
    The muscle-name table (built-in + user CSV): words -> muscle, side, kind.
segment_names
    ``parse_segment_name``: a segment name -> muscle, side, level, kind.
landmarks
    Mid-disc and mid-body points (and spine directions) from disc masks, vertebra masks,
    markups points and lines, or typed positions (``find_landmarks``).
level_positions
    Level positions typed by the user: slice indices and LPS z (``typed_positions``).
spine_axes
    The local spine axis at each level: the normal of its disc-parallel plane (``level_axes``).
sides
    Left/right check of sided segment names against the spine midline (``check_sides``).
"""
