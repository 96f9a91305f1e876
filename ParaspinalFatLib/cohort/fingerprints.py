"""Fingerprint of a case: what its result depends on, as one SHA-256.

A cohort run skips a case whose ``done.json`` holds the fingerprint it would
have now, so the fingerprint must change whenever the result could:

- the library version;
- every option, resolved (the row's and the command line's values plus the
  library defaults of all other :class:`~ParaspinalFatLib.measurement.pipeline.MeasureOptions`
  fields), as sorted JSON with paths as given;
- every input file (image, segmentation, Dixon fat/water, markups, a
  label-name file, a name table; every file inside a DICOM folder): its path,
  size, modification time (ns) and a SHA-256 of its content -- the whole file
  up to 64 MiB, else its first and last 16 MiB plus its size.

A replaced file (new content, or only a new time stamp) or a changed option
therefore recomputes the case; a missing file gives a fingerprint of its own
(the case then fails with the reader's message).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .manifest import PATH_OPTIONS, CaseSpec

__all__ = ["FULL_HASH_LIMIT", "EDGE_BYTES", "case_fingerprint", "input_files", "file_signature", "content_digest"]

#: files up to this size are hashed whole (64 MiB)
FULL_HASH_LIMIT = 64 * 1024 * 1024
#: bytes hashed at each end of a larger file (16 MiB)
EDGE_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024


def input_files(spec: CaseSpec) -> List[Tuple[str, str]]:
    """The input paths a case reads, with their role.

    Parameters
    ----------
    spec : CaseSpec
        The case.

    Returns
    -------
    list of (str, str)
        ``(role, path)``: ``image`` (when not Dixon), ``segmentation``, then
        each path option present (``water``, ``fat``, ``markups``,
        ``label_names`` when it names a file, ``name_table``).  A path may be a
        folder (a DICOM series).
    """
    out: List[Tuple[str, str]] = []
    if spec.image:
        out.append(("image", str(spec.image)))
    out.append(("segmentation", str(spec.segmentation)))
    for name in PATH_OPTIONS:
        value = spec.options.get(name)
        if isinstance(value, (str, os.PathLike)) and value:
            path = os.fspath(value)
            if name == "label_names" and not os.path.exists(path):
                continue  # inline names such as "1=right ES": part of the options, not a file
            out.append((name, path))
    return out


def content_digest(path: os.PathLike, size: int) -> str:
    """SHA-256 of a file's content (whole up to :data:`FULL_HASH_LIMIT`, else both ends + size).

    Parameters
    ----------
    path : path-like
        The file.
    size : int
        Its size in bytes (from ``os.stat``).

    Returns
    -------
    str
        Hex digest; for a large file ``"edges:"`` + the digest of the first and
        last :data:`EDGE_BYTES` and the size.

    Raises
    ------
    OSError
        The file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if size <= FULL_HASH_LIMIT:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                h.update(chunk)
            return h.hexdigest()
        h.update(str(size).encode("ascii"))
        remaining = EDGE_BYTES
        while remaining:
            chunk = fh.read(min(_CHUNK, remaining))
            if not chunk:
                break
            h.update(chunk)
            remaining -= len(chunk)
        fh.seek(max(0, size - EDGE_BYTES))
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
        return "edges:" + h.hexdigest()


def file_signature(path: str) -> List[Dict[str, Any]]:
    """Path, size, modification time and content digest of a file, or of every file in a folder.

    Parameters
    ----------
    path : str
        A file or a folder (every file below it, sorted by relative path).

    Returns
    -------
    list of dict
        One dict per file: ``path``, ``size``, ``mtime_ns``, ``sha256``; a
        missing or unreadable path gives one dict with ``missing`` (or
        ``error``) instead.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted((f for f in p.rglob("*") if f.is_file()), key=lambda f: f.relative_to(p).as_posix())
        if not files:
            return [{"path": str(p), "empty_folder": True}]
        return [sig for f in files for sig in file_signature(str(f))]
    try:
        st = os.stat(p)
        digest = content_digest(p, st.st_size)
    except FileNotFoundError:
        return [{"path": str(p), "missing": True}]
    except OSError as exc:
        return [{"path": str(p), "error": type(exc).__name__}]
    return [{"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}]


def case_fingerprint(spec: CaseSpec, *, extra: Optional[Dict[str, Any]] = None) -> str:
    """SHA-256 over everything a case's result depends on (see the module notes).

    Parameters
    ----------
    spec : CaseSpec
        The case.
    extra : dict, optional
        Further settings of the run that change the case's files (the runner
        passes ``{"qc": True}`` when QC pictures are asked for).

    Returns
    -------
    str
        64 hex digits.
    """
    from .. import __version__

    record = {
        "library_version": __version__,
        "case_id": spec.case_id,
        "image": spec.image,
        "segmentation": spec.segmentation,
        "options": _resolved_options(spec.options),
        "files": [{"role": role, "signature": file_signature(path)} for role, path in input_files(spec)],
        "extra": extra or {},
    }
    text = json.dumps(record, sort_keys=True, default=_jsonable, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _resolved_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """Every MeasureOptions field: the given values, the library defaults for the rest."""
    from ..measurement.pipeline import MeasureOptions

    try:
        resolved = MeasureOptions.from_kwargs(**options)
    except Exception:  # noqa: BLE001 - a bad option fails the case itself; the fingerprint only needs the text
        return {"given": dict(options)}
    return {f.name: getattr(resolved, f.name) for f in dataclasses.fields(resolved)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)
