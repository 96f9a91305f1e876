"""Files a run writes: the CSV tables (atomically, as one set, safe to open in a
spreadsheet), the fat/lean class labelmap and the QC pictures.

CSV cells
---------
A text cell (or column name) starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is written with a leading ``'`` (OWASP "CSV injection"): Excel and
LibreOffice would otherwise run it as a formula (``=HYPERLINK(...)`` in a segment name
or subject id).  The ``'`` stays visible in the cell.  Numeric columns, and text cells
that are plain numbers (``-3.5``), are written unchanged.

Output sets
-----------
:class:`OutputSet` stages every file of a run in a temporary folder beside the
targets and moves them in only when all were written; a failure leaves every
previous file as it was.  Files get the permissions of the process umask
(``0o666 & ~umask``), like any file the user creates.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union
import numpy as np
import pandas as pd
import SimpleITK as sitk
from ..composition.base import EXCLUDED, FAT, LEAN, UNDEFINED, CompositionMethod
from ..errors import InputError
from ..geometry import Geometry
from ..measurement.planning import Roi, Row
from ..segmentation import Segment, Segmentation
from ..measurement.voxels import RoiVoxels


__all__ = ['make_folder', 'end_label', 'default_window', 'label_text', 'write_csv_atomic', 'defuse_formulas', 'FORMULA_PREFIXES', 'OutputSet',
           'check_output_file', 'check_output_folder', 'check_labelmap_path', 'LABELMAP_SUFFIXES',
           'CLASS_LABELS', 'CLASS_COLORS', 'class_labelmap_array', 'write_class_labelmap', 'edge_labels',
           'write_qc_pictures']

#: first characters that make a spreadsheet read a text cell as a formula (OWASP)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")

#: labelmap file types :func:`write_class_labelmap` writes (single files keeping the full geometry)
LABELMAP_SUFFIXES = (".seg.nrrd", ".nrrd", ".nii.gz", ".nii", ".mha")

#: label values of the class labelmap
CLASS_LABELS = {"lean": LEAN + 1, "undefined": UNDEFINED + 1, "fat": FAT + 1}
#: RGB (0..1) of each class in the ``.seg.nrrd`` class labelmap (and Slicer's overlay)
CLASS_COLORS = {"lean": (0.85, 0.33, 0.31), "undefined": (0.45, 0.6, 0.95), "fat": (1.0, 0.85, 0.0)}


def class_labelmap_array(vox: RoiVoxels, codes: np.ndarray, geometry: Geometry) -> np.ndarray:
    """The classes of the measured voxels as a label array on the image grid.

    The one place the class labelmap is made: :func:`write_class_labelmap` writes
    this array, and :func:`~ParaspinalFatLib.measurement.pipeline.measure` returns it
    (``class_labelmap=True``) for callers that keep it in memory (the Slicer module's
    fat overlay).

    Parameters
    ----------
    vox : RoiVoxels
        Gathered voxels (their ``(k, j, i)`` positions are painted).
    codes : numpy.ndarray of int8
        Class code of every gathered voxel (negative = not classified: excluded,
        or in no measured row); such voxels stay 0 (background).
    geometry : Geometry
        The image grid.

    Returns
    -------
    numpy.ndarray of uint8
        Shape ``geometry.shape`` (numpy order ``k, j, i``): 0 background and the
        values of :data:`CLASS_LABELS` (1 lean, 2 undefined, 3 fat).  A voxel
        gathered twice (overlapping ROIs) gets the class of its last occurrence.
    """
    lab = np.zeros(geometry.shape, dtype=np.uint8)
    k, j, i = vox.positions()
    sel = codes >= LEAN
    lab[k[sel], j[sel], i[sel]] = (codes[sel] + 1).astype(np.uint8)
    return lab


def write_class_labelmap(path, vox: RoiVoxels, codes: np.ndarray, geometry: Geometry, image: sitk.Image,
                         labels: Optional[np.ndarray] = None) -> Path:
    """Write the classes of the measured voxels as a labelmap on the image grid.

    Parameters
    ----------
    path : str or path
        ``*.seg.nrrd``: a Slicer segmentation with segments ``lean`` (1),
        ``undefined`` (2) and ``fat`` (3); ``.nrrd``, ``.nii.gz``, ``.nii`` or
        ``.mha``: a plain labelmap with those values (see
        :func:`check_labelmap_path`).
    vox : RoiVoxels
        Gathered voxels (their ``(k, j, i)`` positions are written).
    codes : numpy.ndarray of int8
        Class code of every gathered voxel (negative = not classified:
        excluded, or in no measured row); such voxels stay 0 (background).
    geometry : Geometry
        The image grid (the labelmap is aligned to it voxel for voxel).
    image : SimpleITK.Image
        The image; its header is copied into a plain labelmap.
    labels : numpy.ndarray, optional
        :func:`class_labelmap_array` of ``vox``, ``codes`` and ``geometry`` when the
        caller has made it already (it is made here otherwise).

    Returns
    -------
    pathlib.Path
        ``path``, written atomically (temporary file in the same folder, then
        renamed); its folder is created when missing.

    Raises
    ------
    InputError
        ``path`` is a folder, has an extension not listed above, or cannot be
        written (the message names it and the reason); no file is left behind.
    """
    path = check_labelmap_path(path)
    shear = geometry.shear_deg()
    if shear > 1e-3 and path.name.lower().endswith((".nii", ".nii.gz")):
        raise InputError(
            f"fat_labelmap {path}: the image grid is sheared ({shear:.2f} degrees, e.g. CT gantry "
            "tilt) and NIfTI written by SimpleITK cannot hold a sheared grid (the labelmap would "
            "land on an orthogonal grid); write it as .nrrd or .seg.nrrd")
    lab = class_labelmap_array(vox, codes, geometry) if labels is None else labels
    make_folder(path.parent, "fat_labelmap")
    token = secrets.token_hex(4)
    try:
        if path.name.lower().endswith(".seg.nrrd"):
            from ..io.slicer_seg import write_seg_nrrd

            segments = [Segment(name, 0, value, name, CLASS_COLORS[name]) for name, value in CLASS_LABELS.items()]
            tmp = path.with_name(f".{path.name}.{token}.tmp.seg.nrrd")
            write_seg_nrrd(Segmentation(lab, geometry, segments, source=str(path)), tmp)
        else:
            out = sitk.GetImageFromArray(lab)
            out.CopyInformation(image)
            tmp = path.with_name(f".tmp-{token}-{path.name}")
            sitk.WriteImage(out, str(tmp), useCompression=True)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        for leftover in path.parent.glob(f".*{token}*"):
            leftover.unlink()
        raise InputError(f"fat_labelmap {path}: could not write the labelmap ({_reason(exc)})") from None
    return path


def _reason(exc: BaseException) -> str:
    """Short text of an OSError / SimpleITK error: its strerror or last line."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def make_folder(folder: Path, option: str) -> None:
    """Create ``folder`` (and parents) or raise InputError naming it and ``option``.

    Parameters
    ----------
    folder : pathlib.Path
        The folder to create.
    option : str
        The option that named it, for the message (``"--qc-dir"``).

    Raises
    ------
    InputError
        The folder cannot be created.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{option} {folder}: cannot create this folder ({_reason(exc)})") from None


def _check_folder_can_be_made(folder: Path, option: str, target: Path) -> None:
    """The nearest existing ancestor of ``folder`` must be a writable folder."""
    existing = folder
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if os.path.lexists(existing) and not existing.is_dir():
        raise InputError(f"{option} {target}: {existing} is a file, not a folder, so nothing can be "
                         f"written under it; choose another path")
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):  # novm (int flags)
        raise InputError(f"{option} {target}: no permission to write in the folder {existing}; "
                         f"choose another path")


def check_output_file(path: Union[str, Path], option: str = "output", example: str = "case.csv") -> Path:
    """Refuse, before any work is done, an output file path that cannot be written.

    Parameters
    ----------
    path : str or Path
        The file to be written (it may exist: it is then replaced).
    option : str
        How the user gave the path (``"--output"``, ``"fat_labelmap"``), put
        at the start of the message.
    example : str
        File name suggested inside ``path`` when ``path`` is a folder.

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    InputError
        ``path`` is a folder, or a file stands where one of its folders should
        be, or its folder is not writable; the message names the path.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} {path}: this is a folder; give a file name inside it "
                         f"(e.g. {path / example})")
    _check_folder_can_be_made(path.parent, option, path)
    return path


def check_output_folder(path: Union[str, Path], option: str = "qc_dir") -> Path:
    """Refuse, before any work is done, an output folder that cannot be made or written.

    Parameters
    ----------
    path : str or Path
        The folder (created when missing).
    option : str
        How the user gave the path (``"--qc-dir"``, ``"qc_dir"``).

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    InputError
        ``path`` is an existing file, or a file stands where one of its parent
        folders should be, or it is not writable; the message names the path.
    """
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise InputError(f"{option} {path}: this is a file, not a folder; give a folder "
                         f"(it is created when missing)")
    _check_folder_can_be_made(path, option, path)
    return path


def check_labelmap_path(path: Union[str, Path], option: str = "fat_labelmap") -> Path:
    """Refuse a class-labelmap path :func:`write_class_labelmap` cannot write.

    Parameters
    ----------
    path : str or Path
        Destination of the labelmap.
    option : str
        How the user gave the path (``"--fat-labelmap"``, ``"fat_labelmap"``).

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    InputError
        As :func:`check_output_file`, or the file name does not end with one of
        :data:`LABELMAP_SUFFIXES` (``.seg.nrrd``, ``.nrrd``, ``.nii.gz``,
        ``.nii``, ``.mha``; NIfTI in lower case).  Formats that drop the
        orientation (``.png``, ``.tif``, ``.vtk``) or split header and data
        (``.mhd``, ``.nhdr``) are refused.
    """
    path = check_output_file(path, option, example="classes.seg.nrrd")
    name = path.name
    ok = any(name.lower().endswith(s) for s in LABELMAP_SUFFIXES)
    if ok and name.lower().endswith((".nii", ".nii.gz")) and not name.endswith((".nii", ".nii.gz")):
        raise InputError(f"{option} {path}: the NIfTI writer needs the extension in lower case "
                         f"(.nii or .nii.gz)")
    if not ok or name.lower() in LABELMAP_SUFFIXES:
        ext = "".join(path.suffixes[-2:]) if path.suffix.lower() == ".gz" else path.suffix
        what = f"'{ext}'" if ext else "no extension"
        raise InputError(f"{option} {path}: cannot write a labelmap with {what}; name the file "
                         f"*.seg.nrrd (Slicer segmentation) or *.nrrd, *.nii.gz, *.nii, *.mha (labelmap)")
    return path


def defuse_formulas(df: "pd.DataFrame") -> "pd.DataFrame":
    """The table as it is written to CSV: text that a spreadsheet would run as a
    formula gets a leading ``'``.

    A text cell or column name starting with one of :data:`FORMULA_PREFIXES`
    (``=``, ``+``, ``-``, ``@``, tab, carriage return) is prefixed with a single
    quote, as OWASP recommends against CSV injection (``=HYPERLINK(...)`` as a
    segment name or subject id).  The quote is visible in the cell when the file
    is opened in Excel or LibreOffice, and it is part of the value read back by
    :mod:`csv` or pandas.  Unchanged: numeric and boolean columns (``-3.5`` stays
    a number), non-text cells of text columns, and text cells that are plain
    decimal numbers (``"-3.5"``, ``"+2e-3"``: no formula).

    Parameters
    ----------
    df : pandas.DataFrame
        Any table.

    Returns
    -------
    pandas.DataFrame
        ``df`` itself when nothing needs a prefix, otherwise a copy with the
        prefixed cells and column names.
    """
    out = df
    for pos in range(df.shape[1]):
        values = df.iloc[:, pos]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        hits = [i for i, v in enumerate(values.tolist()) if _is_formula(v)]  # tolist(): no Series.map per column
        if hits:
            if out is df:
                out = df.copy()
            cells = values.astype(object).copy()
            hit = np.zeros(len(cells), dtype=bool)
            hit[hits] = True
            cells[hit] = "'" + cells[hit].astype(str)
            out.isetitem(pos, cells)
    if any(_is_formula(c) for c in df.columns):
        if out is df:
            out = df.copy()
        out.columns = ["'" + c if _is_formula(c) else c for c in df.columns]
    return out


def _is_formula(value: Any) -> bool:
    return (isinstance(value, str) and value[:1] in FORMULA_PREFIXES
            and _PLAIN_NUMBER.match(value) is None)


def _create_new_file(path: Path, base: str) -> Tuple[int, Path]:
    """A new file ``.<base>.<random>.tmp`` in ``path``'s folder, opened for writing.

    Created with mode 0o666 so the process umask gives it the usual permissions
    (``tempfile.mkstemp`` would make it 0o600, unreadable to colleagues).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # novm (int flags)
    for _ in range(100):
        tmp = path.with_name(f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(str(tmp), flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name beside {path}")


def write_csv_atomic(df: "pd.DataFrame", path: Union[str, Path]) -> Path:
    """Write ``df`` to ``path`` via a temporary file + rename (never a half-written CSV).

    Text that a spreadsheet would run as a formula is prefixed with ``'``
    (:func:`defuse_formulas`); numbers are written unchanged (UTF-8, no index,
    CRLF line ends as RFC 4180, so a cell holding a line break is quoted).
    The file gets the permissions ``0o666 & ~umask``.

    Parameters
    ----------
    df : pandas.DataFrame
        The table (written without its index).
    path : str or Path
        Destination; its folder is created when missing.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        ``path`` is a folder or cannot be written (disk full, no permission,
        file locked); the message names it, and the previous file (if any) is
        left as it was.
    """
    path = check_output_file(path)
    make_folder(path.parent, "output")
    table = defuse_formulas(df)
    tmp = None
    try:
        fd, tmp = _create_new_file(path, path.name)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            # CRLF (RFC 4180): the csv writer then quotes every cell holding a CR or LF;
            # with "\n" a bare CR inside a name would be written unquoted and split the row
            table.to_csv(fh, index=False, lineterminator="\r\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"output {path}: could not write the file ({_reason(exc)}); "
                         f"the previous file, if any, is unchanged") from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
    return path


def _move(src: Path, dst: Path) -> None:
    """Rename ``src`` over ``dst`` (atomic on POSIX); one place so tests can make it fail."""
    os.replace(src, dst)


class OutputSet:
    """The files of one run, put in place together or not at all.

    Every file is first written into a temporary folder beside the targets
    (``<folder>/.paraspinalfat-XXXX.tmp/``); only when the ``with`` block ends
    without an error are they moved over the targets, one :func:`os.replace`
    each, after hard-link backups of the files they replace.  If a move fails
    midway, the files already moved are put back from those backups (and new
    ones removed), so the folder holds the previous run's set again.  On any
    error no target is touched and the temporary folder is removed.

    Parameters
    ----------
    folder : str or Path
        Folder of the targets; created (with its parents) when missing.
    option : str
        How the user named the outputs (``"--output"``), put at the start of
        error messages.

    Attributes
    ----------
    written : list of Path
        Targets written, in order (after a successful commit).
    removed : list of Path
        Stale targets removed (see :meth:`remove`).

    Examples
    --------
    >>> with OutputSet("results") as out:                     # doctest: +SKIP
    ...     out.write_csv(levels, "case.csv")
    ...     out.write_csv(summary, "case_summary.csv")
    >>> out.written                                           # doctest: +SKIP
    [PosixPath('results/case.csv'), PosixPath('results/case_summary.csv')]

    Raises
    ------
    InputError
        A file cannot be written or moved (the message names it and says the
        previous files were kept or, if even restoring failed, where the
        backups are).
    """

    def __init__(self, folder: Union[str, Path], option: str = "output"):
        self.folder = Path(folder)
        self.option = option
        self.written: List[Path] = []
        self.removed: List[Path] = []
        self._staged: Dict[str, Path] = {}
        self._stale: List[str] = []
        self._tmp: Optional[Path] = None
        self._open = False

    def __enter__(self) -> "OutputSet":
        make_folder(self.folder, self.option)
        try:
            self._tmp = Path(tempfile.mkdtemp(prefix=".paraspinalfat-", suffix=".tmp", dir=str(self.folder)))
        except OSError as exc:
            raise InputError(f"{self.option} {self.folder}: cannot write in this folder ({_reason(exc)})") from None
        self._open = True
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False

    def target(self, name: str) -> Path:
        """Final path of the file ``name``.

        Parameters
        ----------
        name : str
            File name inside :attr:`folder` (no folder part).

        Returns
        -------
        Path
            ``folder / name``.
        """
        if not name or Path(name).name != name or name in (".", ".."):
            raise ValueError(f"OutputSet: {name!r} is not a plain file name")
        return self.folder / name

    def path(self, name: str) -> Path:
        """Where to write the file ``name`` now (inside the temporary folder); it
        is moved to :meth:`target` when the set is committed.

        Use it for files other writers make (a labelmap, a picture); the file
        must exist when the set is committed.

        Parameters
        ----------
        name : str
            File name inside :attr:`folder` (no folder part); each name once.

        Returns
        -------
        Path
            The staging path.
        """
        if not self._open or self._tmp is None:
            raise RuntimeError("OutputSet: use it as a context manager (with OutputSet(folder) as out: ...)")
        target = self.target(name)
        if name in self._staged:
            raise ValueError(f"OutputSet: {name!r} is written twice")
        if target.is_dir():
            raise InputError(f"{self.option} {target}: this is a folder; remove it or choose another file name")
        staged = self._tmp / name
        self._staged[name] = staged
        return staged

    def write_csv(self, df: "pd.DataFrame", name: str) -> Path:
        """Stage ``df`` as the CSV ``name`` (written as :func:`write_csv_atomic` does).

        Parameters
        ----------
        df : pandas.DataFrame
            The table.
        name : str
            File name inside :attr:`folder`.

        Returns
        -------
        Path
            The target path (where the file will be after the commit).
        """
        staged = self.path(name)
        try:
            write_csv_atomic(df, staged)
        except (OSError, InputError) as exc:
            reason = _reason(exc) if isinstance(exc, OSError) else str(exc).split(": ", 1)[-1]
            raise InputError(f"{self.option} {self.target(name)}: could not write the file ({reason}); "
                             f"nothing was changed, the previous files in {self.folder} are kept") from None
        return self.target(name)

    def unstage(self, name: str) -> None:
        """Take the file ``name`` back out of the set (a writer that was given
        :meth:`path` decided not to write it); a file already there is deleted.

        Parameters
        ----------
        name : str
            A name given to :meth:`path` before.
        """
        staged = self._staged.pop(name)
        if os.path.lexists(staged):
            os.unlink(staged)

    def remove(self, name: str) -> None:
        """Remove the target ``name`` on commit, if it exists: a file of an
        earlier run that this run does not produce (restored if the commit fails).

        Parameters
        ----------
        name : str
            File name inside :attr:`folder`.
        """
        self.target(name)
        if name not in self._stale:
            self._stale.append(name)

    def discard(self) -> None:
        """Forget the staged files: remove the temporary folder, touch no target."""
        self._open = False
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def commit(self) -> List[Path]:
        """Move every staged file over its target (see the class description).

        Returns
        -------
        list of Path
            The targets written (also in :attr:`written`).
        """
        if not self._open or self._tmp is None:
            raise RuntimeError("OutputSet: nothing to commit (not entered, or already committed/discarded)")
        self._open = False
        names = list(self._staged)
        stale = [n for n in self._stale if n not in self._staged and os.path.lexists(self.target(n))]
        try:
            for name in names:
                target = self.target(name)
                if not os.path.lexists(self._staged[name]):
                    raise InputError(f"{self.option} {target}: the file was not written; nothing was changed")
                if target.is_dir() and not target.is_symlink():
                    raise InputError(f"{self.option} {target}: this is a folder; remove it or choose another "
                                     f"file name; nothing was changed")
            backups = self._backup([n for n in names if os.path.lexists(self.target(n))] + stale)
        except BaseException:
            self.discard()
            raise
        done: List[str] = []
        try:
            for name in names:
                _move(self._staged[name], self.target(name))
                done.append(name)
            for name in stale:
                os.unlink(self.target(name))
                done.append(name)
        except OSError as exc:
            failed = (names + stale)[len(done)]
            lost = self._roll_back(done, backups)
            if lost:
                kept = self._tmp
                self._tmp = None  # keep the backups
                raise InputError(
                    f"{self.option} {self.target(failed)}: could not replace the file ({_reason(exc)}), and "
                    f"restoring the previous version failed for {', '.join(str(self.target(n)) for n in lost)}; "
                    f"the previous files are in {kept / '.backup'}") from None
            self.discard()
            raise InputError(f"{self.option} {self.target(failed)}: could not replace the file ({_reason(exc)}); "
                             f"nothing was changed, the previous files in {self.folder} are kept") from None
        self.written = [self.target(n) for n in names]
        self.removed = [self.target(n) for n in stale]
        self.discard()
        return self.written

    def _backup(self, names: List[str]) -> Dict[str, Path]:
        """Hard links (or copies) of the existing targets ``names`` in the temporary folder."""
        assert self._tmp is not None
        folder = self._tmp / ".backup"
        folder.mkdir()
        backups = {}
        for name in names:
            target, backup = self.target(name), folder / name
            try:
                try:
                    os.link(str(target), str(backup), follow_symlinks=False)
                except (OSError, NotImplementedError):
                    shutil.copy2(str(target), str(backup), follow_symlinks=False)
            except OSError as exc:
                raise InputError(f"{self.option} {target}: cannot keep a backup of the previous file "
                                 f"({_reason(exc)}); nothing was changed") from None
            backups[name] = backup
        return backups

    def _roll_back(self, done: List[str], backups: Dict[str, Path]) -> List[str]:
        """Undo the moves/removals of ``done`` (newest first); the names that could not be restored."""
        lost = []
        for name in reversed(done):
            target = self.target(name)
            try:
                if name in backups:
                    _move(backups[name], target)
                elif os.path.lexists(target):
                    os.unlink(target)
            except OSError:
                lost.append(name)
        return lost


def _plane(array: np.ndarray, axis: int, index: int) -> np.ndarray:
    """2-D plane of constant ITK ``axis`` index, rows/cols in increasing array-axis order."""
    return np.take(array, index, axis=2 - axis)


def _plane_spacing(geometry: Geometry, axis: int) -> Tuple[float, float]:
    """(row_mm, col_mm) of :func:`_plane`: the two remaining ITK axes, numpy order."""
    rest = [a for a in (2, 1, 0) if a != axis]  # numpy order of the remaining ITK axes
    return float(geometry.spacing[rest[0]]), float(geometry.spacing[rest[1]])


_LPS_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))  # (negative, positive) end of LPS x, y, z
def end_label(vector) -> str:
    """Patient side towards which a direction vector points most (LPS letters).

    Parameters
    ----------
    vector : array_like of 3 float
        A direction in LPS.

    Returns
    -------
    str
        ``"R"``/``"L"``, ``"A"``/``"P"`` or ``"I"``/``"S"``.
    """
    v = np.asarray(vector, dtype=float)
    a = int(np.argmax(np.abs(v)))
    return _LPS_LETTERS[a][1 if v[a] > 0 else 0]


def edge_labels(geometry: Geometry, row_axis: int, col_axis: int) -> Tuple[str, str, str, str]:
    """(first column, last column, first row, last row) patient sides of a plane
    whose rows run along ITK ``row_axis`` and columns along ``col_axis``.

    Parameters
    ----------
    geometry : Geometry
        Grid of the image the plane is cut from.
    row_axis : int
        ITK axis (0 = i, 1 = j, 2 = k) along which the plane's row index
        increases (down the picture).
    col_axis : int
        ITK axis along which the column index increases (left to right).

    Returns
    -------
    tuple of 4 str
        Patient-side letters (``"R"``/``"L"``, ``"A"``/``"P"``, ``"I"``/``"S"``,
        LPS convention) of the first-column (left) edge, last-column (right)
        edge, first-row (top) edge and last-row (bottom) edge: the end of the
        LPS axis nearest to the ``-``/``+`` direction of ``col_axis`` and
        ``row_axis``.  E.g. an LPS-aligned axial plane with
        ``row_axis=1, col_axis=0`` gives ``("R", "L", "A", "P")``.
    """
    d = geometry.direction_matrix
    return (end_label(-d[:, col_axis]), end_label(d[:, col_axis]),
            end_label(-d[:, row_axis]), end_label(d[:, row_axis]))


def default_window(method: CompositionMethod) -> Optional[Tuple[float, float]]:
    """Grey window of the QC pictures in the image's storage units.

    Parameters
    ----------
    method : CompositionMethod
        The case's method.

    Returns
    -------
    tuple of 2 float or None
        PDFF: 0-100 % in storage units; CT: the soft-tissue window -160..240 HU;
        otherwise None (percentiles of the slice).
    """
    if method.kind == "pdff":
        return 0.0, 100.0 / method.to_output
    if method.kind == "ct":
        return -160.0, 240.0  # soft-tissue window (W 400, L 40)
    return None


def label_text(row: pd.Series) -> str:
    """An ROI's numbers on a QC picture ("MF L, CSA 612 mm²" / "FF 18.2 %, Goutallier 1").

    Parameters
    ----------
    row : pandas.Series
        A row of the per-level table.

    Returns
    -------
    str
        Two lines of text.
    """
    side = {"left": " L", "right": " R"}.get(row["side"], "")
    parts = [f"{row['muscle']}{side}", f"CSA {row['csa_mm2']:.0f} mm²"]
    if np.isfinite(row.get("fat_fraction_pct", np.nan)):
        parts.append(f"FF {row['fat_fraction_pct']:.1f} %")
    elif np.isfinite(row.get("fat_area_ratio", np.nan)):
        parts.append(f"fat {100 * row['fat_area_ratio']:.1f} %")
    else:
        parts.append(f"mean {row['mean']:.3g} {row['unit']}")
    if pd.notna(row.get("goutallier", np.nan)):
        parts.append(f"Goutallier {int(row['goutallier'])}")
    return ", ".join(parts[:2]) + "\n" + ", ".join(parts[2:])


def write_qc_pictures(
    qc_dir,
    array: np.ndarray,
    geometry: Geometry,
    axis: int,
    rows: List[Row],
    rois: List[Roi],
    vox: RoiVoxels,
    codes: np.ndarray,
    levels: pd.DataFrame,
    landmarks: pd.DataFrame,
    method: CompositionMethod,
    subject: str,
    crop_margin_mm: Optional[float] = 30.0,
) -> List[Path]:
    """One PNG per measured level slice (ROIs outlined, fat/undefined voxels
    filled, numbers and grades annotated; cropped to the ROIs + ``crop_margin_mm``,
    None for the whole slice) and a sagittal overview with the level lines;
    returns the written paths.

    Level slices are shown in the radiological view (patient right on the
    viewer's left, anterior at the top), transposing and flipping the plane
    as the grid's direction requires.

    Parameters
    ----------
    qc_dir : str or os.PathLike
        Output folder; created when missing.
    array : numpy.ndarray
        Image voxels ``[k, j, i]`` in their storage units (as measured).
    geometry : Geometry
        Image grid (LPS).
    axis : int
        ITK slice axis (0 = i, 1 = j, 2 = k) of the measurement slices.
    rows : list of Row
        Planned rows; one picture per distinct (level, slice index).
    rois : list of Roi
        Measured ROIs; ``Row.roi`` indexes this list.
    vox : RoiVoxels
        Gathered ROI voxels (their positions give the masks).
    codes : numpy.ndarray of int8
        Class code of every gathered voxel (from
        :func:`~ParaspinalFatLib.measurement.case_tables.level_table`):
        ``FAT`` voxels are filled as fat; ``UNDEFINED`` and ``EXCLUDED``
        (NaN, below the Dixon noise floor) as undefined.
    levels : pandas.DataFrame
        Per-level table; its ``(segment, level)`` rows give each ROI's label
        (CSA, FF or fat %, Goutallier grade).
    landmarks : pandas.DataFrame
        Level points (:attr:`CaseMeasurement.landmarks`: ``level``,
        ``source``, ``slice_index``, ``slice_offset_mm``, ``inside_image``);
        those inside the image are drawn as lines on the sagittal overview.
    method : CompositionMethod
        Gives the grey window (PDFF: 0-100 % in storage units; CT: W 400 /
        L 40 HU; otherwise the automatic percentile window) and the title.
    subject : str
        File-name prefix and title text.
    crop_margin_mm : float or None
        Margin (mm) kept around the ROIs of a level picture; ``None`` shows
        the whole slice.

    Returns
    -------
    list of pathlib.Path
        ``<subject>_<level>_slice<s>.png`` per level slice (``/`` in the level
        replaced by ``-``), in increasing slice index, then
        ``<subject>_sagittal.png`` (a reformat through the median left-right
        position of the ROI voxels).

    Raises
    ------
    InputError
        matplotlib is not installed, or the pictures cannot be drawn from the
        arguments (see :mod:`~ParaspinalFatLib.report.qc_pictures`), or
        ``qc_dir`` is a file or cannot be created (the message names it).
    """
    qc_dir = check_output_folder(qc_dir, "qc_dir")
    from .qc_pictures import RoiOverlay, render_level_slice

    make_folder(qc_dir, "qc_dir")
    k, j, i = vox.positions()
    pos = (i, j, k)  # ITK axis -> index array
    in_plane = [a for a in (2, 1, 0) if a != axis]  # numpy order of the plane's (row, col) ITK axes
    spacing = _plane_spacing(geometry, axis)
    labels = edge_labels(geometry, in_plane[0], in_plane[1])
    # radiological view needs rows running A-P and columns R-L: transpose when the array's
    # columns run anterior-posterior (e.g. a PIR volume), then flip as needed
    transpose = labels[0] in ("A", "P")
    if transpose:
        spacing = (spacing[1], spacing[0])
        labels = (labels[2], labels[3], labels[0], labels[1])
    table = levels.set_index(["segment", "level"])
    written: List[Path] = []
    by_slice: Dict[Tuple[str, int], List[Row]] = {}
    for row in rows:
        by_slice.setdefault((row.level, row.slice_index), []).append(row)
    for (level, s), members in sorted(by_slice.items(), key=lambda kv: kv[0][1]):
        image2d = _plane(array, axis, s)
        overlays = []
        for row in members:
            roi = rois[row.roi]
            sel = (vox.roi == row.roi) & (pos[axis] == s)
            mask = np.zeros(image2d.shape, bool)
            fat = np.zeros(image2d.shape, bool)
            undef = np.zeros(image2d.shape, bool)
            r, c = pos[in_plane[0]][sel], pos[in_plane[1]][sel]
            mask[r, c] = True
            fat[r, c] = codes[sel] == FAT
            undef[r, c] = (codes[sel] == UNDEFINED) | (codes[sel] == EXCLUDED)
            info = table.loc[(roi.segment.name, level)]
            if transpose:
                mask, fat, undef = mask.T, fat.T, undef.T
            overlays.append(RoiOverlay(roi.segment.name, mask, fat, undef, label_text(info)))
        if transpose:
            image2d = image2d.T
        first = members[0]
        title = (f"{subject}  {level}  slice {s}  (offset {first.slice_offset_mm:+.1f} mm, "
                 f"{first.level_source.replace('_', ' ')})  {method.kind}")
        name = f"{subject}_{level.replace('/', '-')}_slice{s}.png"
        written.append(render_level_slice(
            qc_dir / name, image2d, spacing, overlays, title, default_window(method),
            edge_labels=labels, crop_margin_mm=crop_margin_mm,
            # radiological view: patient right on the viewer's left, anterior at the top
            flip_lr=labels[0] == "L", flip_ud=labels[2] == "P",
        ))
    written.append(_sagittal(qc_dir, array, geometry, axis, vox, pos, landmarks, method, subject))
    return written


def _sagittal(qc_dir: Path, array, geometry: Geometry, axis: int, vox: RoiVoxels, pos, landmarks, method, subject):
    from .qc_pictures import render_sagittal_overview

    # the left-right axis: of the two in-plane ITK axes, the one closest to LPS x
    in_plane = [a for a in (0, 1, 2) if a != axis]
    d = geometry.direction_matrix
    lr = max(in_plane, key=lambda a: abs(d[0, a]))
    ap = [a for a in in_plane if a != lr][0]
    centre = int(round(float(np.median(pos[lr])))) if pos[lr].size else geometry.size[lr] // 2
    plane = np.take(array, centre, axis=2 - lr)  # remaining numpy axes: (axis, ap) in numpy order
    if (2 - axis) > (2 - ap):  # make rows run along the slice axis
        plane = plane.T
    superior_up = float(d[2, axis]) > 0  # index increases towards superior: flip to put cranial at the top
    lines = []
    for _, mark in landmarks.iterrows():
        if not mark["inside_image"]:
            continue
        step = geometry.slice_thickness_mm(axis)
        lines.append((mark["level"], float(mark["slice_index"]) + float(mark["slice_offset_mm"]) / step,
                      str(mark["source"]).replace("_", " ")))
    spacing = (float(geometry.spacing[axis]), float(geometry.spacing[ap]))
    labels = edge_labels(geometry, axis, ap)
    return render_sagittal_overview(
        qc_dir / f"{subject}_sagittal.png", plane, spacing, lines,
        title=f"{subject}  levels (reformat through the muscles' midline)",
        window=default_window(method), flip_ud=superior_up,
        edge_labels=labels, flip_lr=labels[0] == "P",  # anterior on the viewer's left
    )
