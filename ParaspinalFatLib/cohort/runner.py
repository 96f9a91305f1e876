"""Run every case of a manifest into one study folder: parallel, resumable, loss-free.

Study folder
------------
``measurements.csv``
    Every successful case's per-level table, key columns first (``subject``,
    then ``rater``, ``session``, ``map_name`` when the manifest has them, as
    text), then ``case_id``, then :data:`~ParaspinalFatLib.schemas.LEVEL_COLUMNS`
    without their own ``subject`` (the manifest's subject replaces it).
``errors.csv``
    :data:`ERROR_COLUMNS`: every manifest row problem (stage ``manifest``)
    and every failed case (stage ``measure``: the error's type and message);
    header only when nothing failed.
``run.log``
    Every progress line of the run and a summary.
``cases/<case_id>/``
    ``levels.csv``, ``summary.csv``, ``landmarks.csv``, ``warnings.txt``
    (every warning the case raised, one per line), ``bone.csv`` when a
    vertebra was measured, ``slices.csv`` / ``rois.csv`` / ``smi.csv`` when
    asked for, ``qc/`` with ``qc=True``, and ``done.json`` (the case's
    fingerprint, :func:`~.fingerprints.case_fingerprint`) written last.  A failed
    case has ``warnings.txt`` and ``error.txt`` (with the traceback) and no
    ``done.json``.

The three study files are written together (:class:`~ParaspinalFatLib.report.case_files.OutputSet`),
every CSV cell that a spreadsheet would run as a formula neutralised.

Resuming
--------
A case's files are written into a temporary folder ``cases/.tmp-<case_id>-*``,
which then replaces ``cases/<case_id>/`` with one rename, and only then is
``done.json`` written (atomically).  A run killed at any moment (``kill -9``)
therefore leaves each case complete with its ``done.json``, or without one;
the same command run again reuses every case whose ``done.json`` holds the
fingerprint the case has now (same library version, options and input files)
and recomputes the others (temporary folders of the killed run are removed
first).  A run holds a lock on the study folder (``.cohort.lock``) so two runs
cannot write into it at once.

Parallel runs
-------------
``workers`` processes (default: the number of cores) from a
``forkserver`` (or ``spawn``) pool; each imports the library once and runs
many cases; at most ``2 x workers + 2`` cases are in flight, the rest wait in
the manifest.  ``scheduler`` sends the cases to a Dask cluster instead
(``"local"``: a ``LocalCluster`` of ``workers`` processes; an address
``tcp://host:8786`` or a ``distributed.Client``: an existing cluster, whose
workers must see the study folder and the input files under the same paths and
run one thread each -- warnings are captured per process).  Results are
collected in manifest order whatever the completion order, so the tables are
identical whatever the worker count or scheduler.  A worker that dies (crash,
out of memory) fails the cases it had in flight with a message saying so; the
other cases go on in a new pool.
"""
from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import sys
import time
import traceback
import warnings
from collections import abc, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from ..atomic_files import atomic_output
from ..dependencies import ignore_foreign_deprecations
from ..errors import InputError
from .fingerprints import case_fingerprint, input_files
from .manifest import CaseSpec, Manifest, RowError, read_manifest

__all__ = ["ERROR_COLUMNS", "TEXT_LEVEL_COLUMNS", "CASE_TABLES", "LOCK_NAME", "CohortResult", "CaseTables", "run_cohort",
           "measure_case_folder", "read_case_levels"]

#: columns of ``errors.csv``
ERROR_COLUMNS: List[str] = ["row", "subject", "case_id", "file", "stage", "error_type", "message"]
#: text columns of the per-level table (read back as text, never as numbers)
TEXT_LEVEL_COLUMNS = ("subject", "segment", "muscle", "side", "level", "level_source", "plane", "warnings",
                      "grade_source", "map_kind", "unit", "pdff_scale", "method_params")
#: CSV files of a case folder: file name -> what it holds
CASE_TABLES = {"levels.csv": "per-level table", "summary.csv": "left/right/asymmetry summary",
               "landmarks.csv": "level points", "bone.csv": "trabecular bone (when a vertebra was measured)",
               "slices.csv": "per-slice table (per_slice)", "rois.csv": "whole-ROI table (whole_roi)",
               "smi.csv": "skeletal muscle index (height_m)"}
#: lock file of a study folder held while a run writes into it
LOCK_NAME = ".cohort.lock"
_TMP_PREFIX = ".tmp-"
_STALE_PREFIX = ".stale-"
_DEAD_POOL = ("the worker processes stopped before finishing any case, so this case was not run (a crash, the "
              "system ending them for lack of memory, or a script that calls run_cohort with workers > 1 outside "
              "`if __name__ == \"__main__\":` -- the workers import the script); run the same command again to "
              "retry, or with workers=1 to see the error")
_STAGE_ORDER = {"manifest": 0, "measure": 1, "assemble": 2}
_CRASH = ("the worker process running this case stopped unexpectedly ({what}: a crash, or the system ended it "
          "for lack of memory), so this case was not measured; run the same command again to retry it (finished "
          "cases are kept); if it fails again, measure this case alone to see why")


@dataclass
class CohortResult:
    """What :func:`run_cohort` did.

    Attributes
    ----------
    output : pathlib.Path
        The study folder.
    measurements : pandas.DataFrame
        The table written to ``measurements.csv`` (key columns as text, then
        ``case_id``, then the per-level columns, typed).
    errors : pandas.DataFrame
        The table written to ``errors.csv`` (:data:`ERROR_COLUMNS`).
    n_cases : int
        Measurement rows of the manifest (``n_measured + n_reused + n_failed``).
    n_measured : int
        Cases measured by this run.
    n_reused : int
        Cases whose finished result (``done.json`` with the current
        fingerprint) was reused.
    n_failed : int
        Rows refused by the manifest checks plus cases whose measurement failed.
    case_tables : mapping of str to pandas.DataFrame
        ``case_id`` -> that case's rows of :attr:`measurements` (index from
        0), in manifest order; each table is cut from :attr:`measurements`
        when it is first looked up.
    elapsed_s : float
        Wall time of the run in seconds.
    n_warnings : int
        Warnings raised by the cases measured or reused (see their ``warnings.txt``).
    manifest : Manifest or None
        The manifest that was run.
    assembled : object
        What the ``assemble`` hook returned (None without one).
    """

    output: Path
    measurements: Any
    errors: Any
    n_cases: int
    n_measured: int
    n_reused: int
    n_failed: int
    case_tables: Mapping[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    n_warnings: int = 0
    manifest: Optional[Manifest] = None
    assembled: Any = None


class CaseTables(abc.Mapping):
    """``case_id`` -> that case's rows of a measurements table, cut on first lookup.

    Parameters
    ----------
    measurements : pandas.DataFrame
        The long table with a ``case_id`` column.
    """

    def __init__(self, measurements: Any):
        self._measurements = measurements
        self._rows = measurements.groupby("case_id", sort=False).indices  # case_id -> row positions, first-seen order
        self._cut: Dict[str, Any] = {}

    def __getitem__(self, case_id: str):
        if case_id not in self._cut:
            self._cut[case_id] = self._measurements.iloc[self._rows[case_id]].reset_index(drop=True)
        return self._cut[case_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"CaseTables({len(self)} cases)"


@dataclass
class _Job:
    index: int
    spec: CaseSpec
    case_dir: Path
    fingerprint: Optional[str]


# --------------------------------------------------------------------------- one case
def measure_case_folder(spec: CaseSpec, case_dir: Union[str, Path], qc: bool = False,
                        fingerprint: Optional[str] = None) -> Dict[str, Any]:
    """Measure one case and commit its folder (the function each worker runs).

    Parameters
    ----------
    spec : CaseSpec
        The case (from :func:`~.manifest.read_manifest`).
    case_dir : str or path
        Its folder, ``<study>/cases/<case_id>``; replaced as a whole.
    qc : bool
        Also write the QC pictures into ``case_dir/qc``.
    fingerprint : str, optional
        The case's fingerprint when the caller has it; computed here (before
        measuring) otherwise.

    Returns
    -------
    dict
        ``case_id``; ``status`` ``"ok"`` or ``"error"``; ``levels``: the
        text of the case's ``levels.csv`` exactly as written (parse it with
        :func:`read_case_levels`), or None; ``n_levels``: its number of rows;
        ``error``: a :class:`RowError`
        (stage ``"measure"``) or None; ``seconds``; ``warnings``: the texts
        of the warnings raised; ``fingerprint``.

    Notes
    -----
    Every exception of the measurement is caught and returned as the error
    (one bad case never stops the others).  The files are written into a
    temporary folder beside ``case_dir`` that then replaces it with one
    rename; ``done.json`` is written last, only for a successful case.
    """
    start = time.perf_counter()
    case_dir = Path(case_dir)
    if fingerprint is None:
        fingerprint = case_fingerprint(spec, extra=_fingerprint_extra(qc))
    case_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_folder(case_dir.parent, f"{_TMP_PREFIX}{spec.case_id}-")
    texts: List[str] = []
    try:
        try:
            result = _measure(spec, tmp if qc else None, texts)
            files = _write_case_tables(result, tmp, texts)
            n_levels = len(result.levels)
            levels = _read_text(tmp / "levels.csv")
        except Exception as exc:  # noqa: BLE001 - reported as this case's error, the others go on
            error = _measure_error(spec, exc)
            _write_text(tmp / "warnings.txt", _warning_lines(texts))
            _write_text(tmp / "error.txt", f"{error.error_type}: {error.message}\n\n{traceback.format_exc()}")
            _replace_folder(tmp, case_dir)
            return {"case_id": spec.case_id, "status": "error", "levels": None, "n_levels": 0, "error": error,
                    "seconds": time.perf_counter() - start, "warnings": texts, "fingerprint": fingerprint}
        _replace_folder(tmp, case_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    done = {"fingerprint": fingerprint, "status": "ok", "case_id": spec.case_id, "row": spec.row,
            "key": spec.key, "files": files, "n_levels": n_levels, "n_warnings": len(texts),
            "seconds": round(seconds, 3), "library_version": _version(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _write_json_atomic(case_dir / "done.json", done)
    return {"case_id": spec.case_id, "status": "ok", "levels": levels, "n_levels": n_levels, "error": None,
            "seconds": seconds,
            "warnings": texts, "fingerprint": fingerprint}


def read_case_levels(path: Union[str, Path, io.StringIO]):
    """A case's ``levels.csv`` as text, exactly as written.

    Parameters
    ----------
    path : str, path or io.StringIO
        The file (or its text).

    Returns
    -------
    pandas.DataFrame
        Every column as text (``str``), empty cells as ``""``.

    Raises
    ------
    OSError, ValueError
        The file is missing or not a readable CSV.
    """
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")


def _measure(spec: CaseSpec, qc_parent: Optional[Path], texts: List[str]):
    """``measure`` of the case, every warning's text appended to ``texts`` (also on failure)."""
    from ..measurement.pipeline import measure

    options = dict(spec.options)
    if qc_parent is not None:
        options["qc_dir"] = str(qc_parent / "qc")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ignore_foreign_deprecations()  # matplotlib's, pyparsing's... are not findings
        try:
            result = measure(spec.image, spec.segmentation, **options)
        finally:
            for w in caught:
                text = str(w.message)
                if text not in texts:
                    texts.append(text)
    for text in result.warnings:
        if text not in texts:
            texts.append(text)
    return result


def _write_case_tables(result, folder: Path, texts: List[str]) -> List[str]:
    """Write the case's tables and warnings into ``folder``; the file names written."""
    from ..report.case_files import write_csv_atomic

    tables = {"levels.csv": result.levels, "summary.csv": result.summary(wide=False),
              "landmarks.csv": result.landmarks,
              "bone.csv": result.bone if result.bone is not None and len(result.bone) else None,
              "slices.csv": result.slices, "rois.csv": result.rois, "smi.csv": result.muscle_index}
    written = []
    for name, table in tables.items():
        if table is not None:
            write_csv_atomic(table, folder / name)
            written.append(name)
    _write_text(folder / "warnings.txt", _warning_lines(texts))
    written.append("warnings.txt")
    if (folder / "qc").is_dir():
        written.append("qc/")
    return written


def _measure_error(spec: CaseSpec, exc: BaseException) -> RowError:
    from ..errors import ParaspinalFatError

    message = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, (ParaspinalFatError, TypeError)):
        message += f" (unexpected {type(exc).__name__}; the traceback is in cases/{spec.case_id}/error.txt)"
    file = spec.image or spec.options.get("fat") or spec.segmentation
    for _, path in input_files(spec):
        if path and path in message:
            file = path
            break
    return RowError(spec.row, spec.subject, spec.case_id, str(file), "measure", type(exc).__name__, message)


def _warning_lines(texts: Sequence[str]) -> str:
    return "".join(" ".join(t.split("\n")) + "\n" for t in texts)


def _fingerprint_extra(qc: bool) -> Dict[str, Any]:
    return {"qc": True} if qc else {}


def _version() -> str:
    from .. import __version__

    return __version__


# --------------------------------------------------------------------------- files
def _new_folder(parent: Path, prefix: str) -> Path:
    """A new empty folder ``parent/<prefix><random>`` with the umask's permissions."""
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary folder name in {parent}")


def _replace_folder(new: Path, target: Path) -> None:
    """Put the folder ``new`` in place of ``target`` (whatever ``target`` was) with renames."""
    for attempt in range(3):
        stale = None
        if os.path.lexists(target):
            stale = target.parent / f"{_STALE_PREFIX}{target.name}-{secrets.token_hex(4)}"
            os.replace(target, stale)
        try:
            os.replace(new, target)
        except OSError:
            if attempt == 2 or not os.path.lexists(target):
                raise
            continue  # another writer put a folder there meanwhile: move it away too
        finally:
            if stale is not None:
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale, ignore_errors=True)
                else:
                    stale.unlink()
        return


def _read_text(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as fh:  # line ends as written (CRLF)
        return fh.read()


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def _write_json_atomic(path: Path, data: Dict[str, Any]) -> None:
    with atomic_output(path, what="case file", text=True, fsync=True) as fh:
        json.dump(data, fh, indent=1, sort_keys=True, default=str)


def _reusable(case_dir: Path, fingerprint: str):
    """(text of levels.csv, rows, warnings) when the case's ``done.json`` holds ``fingerprint`` and its files are there."""
    try:
        with open(case_dir / "done.json", encoding="utf-8") as fh:
            done = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(done, dict) or done.get("fingerprint") != fingerprint or done.get("status") != "ok":
        return None
    files = done.get("files") or []
    if "levels.csv" not in files or not all((case_dir / f.rstrip("/")).exists() for f in files):
        return None
    try:
        text = _read_text(case_dir / "levels.csv")
        n_levels = len(read_case_levels(io.StringIO(text)))
    except Exception:  # noqa: BLE001 - an unreadable file means: measure again
        return None
    if done.get("n_levels") is not None and int(done["n_levels"]) != n_levels:
        return None
    return text, n_levels, int(done.get("n_warnings", 0) or 0)


def _has_done(case_dir: Path) -> bool:
    return os.path.isfile(case_dir / "done.json")


def _remove_leftovers(cases_dir: Path) -> int:
    """Remove the temporary and stale folders a killed run left in ``cases/``; how many."""
    n = 0
    try:
        entries = list(os.scandir(cases_dir))
    except OSError:
        return 0
    for entry in entries:
        if entry.name.startswith((_TMP_PREFIX, _STALE_PREFIX)):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
            n += 1
    return n


class _StudyLock:
    """An exclusive lock on the study folder while a run writes into it (POSIX ``flock``)."""

    def __init__(self, study: Path):
        self.path = study / LOCK_NAME
        self.fh = None

    def __enter__(self) -> "_StudyLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock
            return self
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # novm (int flags, not a union type)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise InputError(f"--output {self.path.parent}: another cohort run (process {holder}) is writing into "
                             f"this study folder; wait for it to finish or choose another output folder") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self.fh = fh
        return self

    def __exit__(self, *exc) -> bool:
        if self.fh is not None:
            import fcntl

            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None
        return False


# --------------------------------------------------------------------------- progress and log
class _Progress:
    """Console progress (tqdm bar on a terminal, plain lines otherwise) and the run.log lines."""

    def __init__(self, mode: str):
        self.mode = mode  # "bar", "lines" or "quiet"
        self.lines: List[str] = []
        self.bar = None
        self.total = 0
        self.count = 0
        self.failed = 0
        self.reused = 0

    def note(self, text: str, console: bool = True) -> None:
        self.lines.append(text)
        if not console or self.mode == "quiet":
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def start(self, total: int, done_before: int, to_run: int) -> None:
        self.total, self.count = total, done_before
        if self.mode == "bar" and to_run:
            try:
                from tqdm import tqdm
            except ImportError:
                self.mode = "lines"
                return
            self.bar = tqdm(total=to_run, desc="measuring", unit="case", file=sys.stderr, dynamic_ncols=True)
            self.bar.set_postfix(failed=0, refresh=False)

    def case(self, case_id: str, result: Dict[str, Any]) -> None:
        self.count += 1
        seconds = float(result.get("seconds") or 0.0)
        if result["status"] == "ok":
            line = f"[{self.count}/{self.total}] {case_id} ok ({seconds:.1f} s)"
        else:
            self.failed += 1
            message = result["error"].message if result.get("error") is not None else "unknown error"
            line = f"[{self.count}/{self.total}] {case_id} failed: {' '.join(message.split())}"
        self.lines.append(line)
        if self.bar is not None:
            if result["status"] != "ok":
                self.bar.write(line, file=sys.stderr)
            self.bar.update(1)
            self.bar.set_postfix(failed=self.failed, refresh=False)
        elif self.mode == "lines":
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _progress_mode(progress: Optional[bool]) -> str:
    if progress is False:
        return "quiet"
    if progress is True:
        return "bar"
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return "bar" if tty else "lines"


# --------------------------------------------------------------------------- execution back-ends
def _run_in_process(jobs: Sequence[_Job], qc: bool, on_result: Callable[[_Job, Dict[str, Any]], None]) -> None:
    for job in jobs:
        try:
            result = measure_case_folder(job.spec, job.case_dir, qc, job.fingerprint)
        except Exception as exc:  # noqa: BLE001 - e.g. the case folder cannot be written: this case fails
            result = _failed_result(job, exc)
        on_result(job, result)


def _init_worker() -> None:
    """Worker start: one thread per numeric library, the library imported once."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import pandas  # noqa: F401
    import SimpleITK as sitk

    from ..measurement import pipeline  # noqa: F401

    set_threads = getattr(getattr(sitk, "ProcessObject", None), "SetGlobalDefaultNumberOfThreads", None)
    if set_threads is not None:
        set_threads(1)


def _cores() -> int:
    """Cores this process may use (its CPU affinity when the system tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _mp_context():
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _crash_result(job: _Job, what: str, exc: Optional[BaseException] = None) -> Dict[str, Any]:
    """The result of a case whose worker process died."""
    message = _CRASH.format(what=what)
    if exc is not None and str(exc).strip():
        message += f" [{' '.join(str(exc).split())}]"
    return _error_result(job, type(exc).__name__ if exc is not None else what, message)


def _committed_result(job: _Job, qc: bool) -> Optional[Dict[str, Any]]:
    """The result of a case lost with a broken pool whose folder was nevertheless committed, else None.

    A worker may write a case's folder and its ``done.json`` and the pool break
    (another worker dying) before the result reaches this process: that case was
    measured, and a rerun would reuse its folder, so it is reported as measured
    (its ``levels.csv`` and ``warnings.txt`` as written) rather than as failed.
    """
    fingerprint = job.fingerprint or case_fingerprint(job.spec, extra=_fingerprint_extra(qc))
    found = _reusable(job.case_dir, fingerprint)
    if found is None:
        return None
    levels, n_levels, _ = found
    try:
        texts = _read_text(job.case_dir / "warnings.txt").splitlines()
    except OSError:
        return None
    return {"case_id": job.spec.case_id, "status": "ok", "levels": levels, "n_levels": n_levels, "error": None,
            "seconds": 0.0, "warnings": texts, "fingerprint": fingerprint}


def _failed_result(job: _Job, exc: BaseException) -> Dict[str, Any]:
    """The result of a case whose run failed outside the measurement (its folder could not be written...)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return _error_result(job, type(exc).__name__, f"the case could not be run: {text}")


def _error_result(job: _Job, error_type: str, message: str) -> Dict[str, Any]:
    spec = job.spec
    file = str(spec.image or spec.options.get("fat") or spec.segmentation)
    error = RowError(spec.row, spec.subject, spec.case_id, file, "measure", error_type, message)
    return {"case_id": spec.case_id, "status": "error", "levels": None, "n_levels": 0, "error": error, "seconds": 0.0,
            "warnings": [], "fingerprint": job.fingerprint}


def _run_pool(jobs: Sequence[_Job], workers: int, qc: bool,
              on_result: Callable[[_Job, Dict[str, Any]], None], keep: bool = False):
    """Run the jobs on a process pool, at most ``2 x workers + 2`` in flight; a dead pool is replaced.

    With ``keep``, the pool that ran the last cases is returned still running
    when it is healthy (the caller shuts it down; the study's exports use it);
    otherwise (and when it broke) None.
    """
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    queue: Deque[_Job] = deque(jobs)
    window = 2 * workers + 2
    context = _mp_context()
    dead_pools = 0  # pools in a row that broke before returning any case
    kept = None
    while queue:
        if dead_pools >= 2:
            while queue:
                on_result(queue[0], _error_result(queue.popleft(), "BrokenProcessPool", _DEAD_POOL))
            break
        executor = ProcessPoolExecutor(max_workers=min(workers, len(queue)), mp_context=context,
                                       initializer=_init_worker)
        in_flight: Dict[Any, _Job] = {}
        lost: List[_Job] = []
        broken = returned = finished = False
        try:
            while (queue or in_flight) and not broken:
                while queue and len(in_flight) < window:
                    job = queue.popleft()
                    try:
                        future = executor.submit(measure_case_folder, job.spec, str(job.case_dir), qc,
                                                 job.fingerprint)
                    except BrokenProcessPool:
                        queue.appendleft(job)
                        broken = True
                        break
                    in_flight[future] = job
                if broken or not in_flight:
                    break
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in done:
                    job = in_flight.pop(future)
                    try:
                        result = future.result()
                        returned = True
                    except BrokenProcessPool:
                        broken = True
                        lost.append(job)
                        continue
                    except Exception as exc:  # noqa: BLE001 - e.g. the case folder cannot be written
                        result = _failed_result(job, exc)
                    on_result(job, result)
            for future, job in list(in_flight.items()):  # the pool broke: the cases it held are lost
                try:
                    result = future.result()
                    returned = True
                except BaseException:  # noqa: BLE001
                    lost.append(job)
                    continue
                on_result(job, result)
            in_flight.clear()
            finished = not broken and not queue and not lost
        finally:
            for future in in_flight:
                future.cancel()
            if keep and finished:
                kept = executor
            else:
                executor.shutdown(wait=True, cancel_futures=True)
        # a lost case whose worker committed its folder before the pool broke was measured
        committed = {job.index: _committed_result(job, qc) for job in lost}
        returned = returned or any(r is not None for r in committed.values())
        for job in sorted(lost, key=lambda j: j.index):
            result = committed[job.index]
            if result is None:
                message = _CRASH.format(what="BrokenProcessPool") if returned else _DEAD_POOL
                result = _error_result(job, "BrokenProcessPool", message)
            on_result(job, result)
        dead_pools = dead_pools + 1 if broken and not returned else 0
    return kept


def _takes_keyword(assemble: Callable[..., Any], name: str) -> bool:
    """Whether ``assemble`` accepts the keyword ``name`` (``submit``: then it gets the worker pool's)."""
    import inspect

    try:
        parameters = inspect.signature(assemble).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _assemble(assemble: Callable[..., Any], study: Path, measurements, manifest: Manifest, log: "_Progress",
              **keywords: Any):
    """(what ``assemble`` returned, None) or (None, the error row of its exception, which is logged)."""
    try:
        return assemble(study, measurements, manifest, **keywords), None
    except Exception as exc:  # noqa: BLE001 - recorded in errors.csv; the measurements are kept
        message = " ".join(str(exc).split()) or type(exc).__name__
        log.note(f"assembling the study tables failed: {type(exc).__name__}: {message}")
        log.lines.append(traceback.format_exc().rstrip())
        return None, RowError(0, "", "", str(study), "assemble", type(exc).__name__, message)


def _submit_or_none(pool, function: Callable[..., Any], *args: Any):
    """``pool.submit(function, *args)``, or None when the pool cannot take it (it broke)."""
    try:
        return pool.submit(function, *args)
    except Exception:  # noqa: BLE001 - BrokenProcessPool, RuntimeError after shutdown: the caller does it itself
        return None




def _run_dask(jobs: Sequence[_Job], scheduler: Any, workers: int, qc: bool,
              on_result: Callable[[_Job, Dict[str, Any]], None]) -> str:
    """Run the jobs on a Dask cluster; returns a description of the cluster for the log."""
    from ..dependencies import require

    distributed = require("distributed", "running cases on a Dask cluster (--scheduler)")
    cluster = client = None
    own_client = False
    if isinstance(scheduler, str):
        if scheduler.strip().lower() == "local":
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                               dashboard_address=None)
            client = distributed.Client(cluster)
            described = f"Dask LocalCluster with {workers} worker process(es)"
        else:
            try:
                client = distributed.Client(scheduler, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise InputError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc}); check the "
                                 f"address (tcp://host:8786) and that the scheduler runs") from None
            described = f"Dask scheduler {scheduler}"
        own_client = True
    else:
        client = scheduler
        if not hasattr(client, "submit"):
            raise TypeError(f"scheduler must be 'local', an address such as 'tcp://host:8786' or a "
                            f"distributed.Client, not {type(scheduler).__name__}")
        described = f"Dask client {getattr(client, 'scheduler', None) and client.scheduler.address}"
    try:
        try:
            n_threads = sum(client.nthreads().values())
        except Exception:  # noqa: BLE001
            n_threads = workers
        window = 2 * max(1, n_threads) + 2
        queue: Deque[_Job] = deque(jobs)
        pending = distributed.as_completed()
        by_key: Dict[str, _Job] = {}
        run = secrets.token_hex(4)

        def submit() -> None:
            job = queue.popleft()
            future = client.submit(measure_case_folder, job.spec, str(job.case_dir), qc, job.fingerprint,
                                   key=f"paraspinalfat-{job.spec.case_id}-{run}", pure=False)
            by_key[future.key] = job
            pending.add(future)

        while queue and len(by_key) < window:
            submit()
        for future in pending:
            job = by_key.pop(future.key)
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker, lost connection...
                if type(exc).__name__ in ("KilledWorker", "CommClosedError", "FutureCancelledError",
                                          "CancelledError"):
                    result = _crash_result(job, type(exc).__name__, exc)
                else:
                    result = _failed_result(job, exc)
            future.release()
            on_result(job, result)
            while queue and len(by_key) < window:
                submit()
    finally:
        if own_client and client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return described


# --------------------------------------------------------------------------- tables
def _study_tables(manifest: Manifest, results: List[Optional[Dict[str, Any]]]):
    """The measurements DataFrame from the per-case results (their levels.csv texts) in manifest order.

    The cases' CSV texts are joined (one header) and parsed once, exactly as
    the files read back: text columns as text, numbers as written (whole
    numbers with gaps as ``Int64``).
    """
    import pandas as pd

    from ..schemas import LEVEL_COLUMNS

    keys = list(manifest.key_columns)
    level_cols = [c for c in LEVEL_COLUMNS if c != "subject"]
    texts, key_rows = [], []
    for spec, result in zip(manifest.cases, results):
        if result is None or result["status"] != "ok":
            continue
        texts.append(result["levels"])
        key_rows.append((spec, int(result["n_levels"])))
    joined, header = _joined_csv(texts)
    extra = [c for c in header if c not in LEVEL_COLUMNS]
    columns = level_cols + extra
    if texts:
        text = read_case_levels(io.StringIO(joined)).reindex(columns=columns, fill_value="")
        typed = pd.read_csv(io.StringIO(joined), dtype={c: str for c in TEXT_LEVEL_COLUMNS if c in header},
                            keep_default_na=False, na_values=[""], **_round_trip(pd))
        typed = typed.reindex(columns=columns)
        if len(typed) != sum(n for _, n in key_rows):
            raise RuntimeError(f"study tables: the cases' levels.csv files hold {len(typed)} rows, their "
                               f"done.json {sum(n for _, n in key_rows)}")
        for c in columns:
            if c in TEXT_LEVEL_COLUMNS:
                typed[c] = typed[c].fillna("").astype(str)
            elif typed[c].dtype.kind == "f" and _integer_text(text[c]):
                typed[c] = typed[c].astype("Int64")  # whole numbers with gaps stay whole (as written)
            elif typed[c].dtype == object and not text[c].ne("").any():
                typed[c] = typed[c].astype(float)  # a column no case has: empty, as a number column
    else:
        typed = pd.DataFrame({c: pd.Series([], dtype=str if c in TEXT_LEVEL_COLUMNS else float) for c in columns})
    front = {k: [spec.key.get(k, "") for spec, n in key_rows for _ in range(n)] for k in keys}
    front["case_id"] = [spec.case_id for spec, n in key_rows for _ in range(n)]
    head = pd.DataFrame({k: pd.Series(v, dtype=str) for k, v in front.items()})
    measurements = pd.concat([head, typed.reset_index(drop=True)], axis=1)
    return measurements


def _joined_csv(texts: Sequence[str]):
    """(one CSV text holding every case's rows, its column names).

    The cases' files normally share one header: their bodies are joined as they
    are.  Otherwise (cases measured with different options) each is parsed and
    aligned on the union of the columns.
    """
    heads, bodies = [], []
    for text in texts:
        head, _, body = text.partition("\r\n")
        heads.append(head)
        bodies.append(body)
    if not texts:
        return "", []
    if len(set(heads)) == 1 and '"' not in heads[0]:
        return heads[0] + "\r\n" + "".join(bodies), heads[0].split(",")
    tables = [read_case_levels(io.StringIO(t)) for t in texts]
    columns: List[str] = []
    for table in tables:
        columns += [c for c in table.columns if c not in columns]
    import pandas as pd

    aligned = pd.concat([t.reindex(columns=columns, fill_value="") for t in tables], ignore_index=True)
    return aligned.to_csv(index=False, lineterminator="\r\n"), columns


def _round_trip(pd) -> Dict[str, str]:
    """read_csv option reading every written float back exactly (pandas 3 does by default, and deprecates it)."""
    return {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def _integer_text(column) -> bool:
    values = [v for v in column if v != ""]
    return bool(values) and all(v.lstrip("+-").isdigit() for v in values)


def _errors_table(errors: List[RowError]):
    import pandas as pd

    ordered = sorted(enumerate(errors), key=lambda ie: (ie[1].row if ie[1].row else 10 ** 12,
                                                        _STAGE_ORDER.get(ie[1].stage, 9), ie[0]))
    records = [[e.row, e.subject, e.case_id, e.file, e.stage, e.error_type, e.message] for _, e in ordered]
    table = pd.DataFrame(records, columns=ERROR_COLUMNS)
    table["row"] = table["row"].astype("int64")
    for c in ERROR_COLUMNS[1:]:
        table[c] = table[c].astype(str)
    return table


# --------------------------------------------------------------------------- the run
def run_cohort(manifest: Union[str, os.PathLike, Manifest], output: Union[str, os.PathLike], *,
               workers: Optional[int] = None, scheduler: Any = None, defaults: Optional[Dict[str, Any]] = None,
               qc: bool = False, progress: Optional[bool] = None,
               assemble: Optional[Callable[[Path, Any, Manifest], Any]] = None) -> CohortResult:
    """Measure every case of a manifest into a study folder (see the module notes).

    Parameters
    ----------
    manifest : str, path-like or Manifest
        The manifest CSV (read with :func:`~.manifest.read_manifest`) or a
        manifest already read.
    output : str or path-like
        The study folder (created when missing; an earlier run's finished
        cases in it are reused).
    workers : int, optional
        Worker processes (default: the number of cores); 1 runs the cases in
        this process.  With ``scheduler="local"``: the LocalCluster's workers.
        The workers import the main script: a script calling this with
        ``workers > 1`` must do it under ``if __name__ == "__main__":``.
    scheduler : str or distributed.Client, optional
        Run the cases on Dask: ``"local"`` (a LocalCluster started and
        stopped here), a scheduler address (``"tcp://host:8786"``) or a
        client.  Needs the ``distributed`` package.
    defaults : dict, optional
        Command-line options for every row (see :func:`~.manifest.read_manifest`);
        only with a manifest path.
    qc : bool
        Write each case's QC pictures into ``cases/<case_id>/qc`` (needs
        matplotlib).
    progress : bool, optional
        ``True``: a progress bar (tqdm; plain lines when tqdm is missing),
        ``False``: nothing on the console, ``None`` (default): a bar when
        standard error is a terminal, else one line per case
        (``[12/383] S012 ok (1.2 s)``).  ``run.log`` gets every line anyway.
    assemble : callable, optional
        Called as ``assemble(study_folder, measurements, manifest)`` after
        the study files are written (e.g. the subject-table writer).  One
        that accepts a ``submit`` keyword gets the worker pool's (when the
        cases ran on one), to hand work to the idle workers.  One that also
        accepts ``errors`` (as
        :func:`~.subject_tables.write_subject_tables`) gets the error table
        and, with a pool, runs while a worker writes ``measurements.csv``:
        the study files are then committed right after it returns.  An
        exception it raises becomes an ``errors.csv`` row (stage
        ``"assemble"``) and is logged; the run still returns.

    Returns
    -------
    CohortResult
        The study tables, the counts and what ``assemble`` returned.

    Raises
    ------
    InputError
        The manifest cannot be read as a whole (see
        :func:`~.manifest.read_manifest`), the output folder cannot be
        written, another run holds it, or the Dask scheduler cannot be reached.
    MissingDependencyError
        ``qc`` without matplotlib, or ``scheduler`` without distributed.
    TypeError
        ``defaults`` given with a :class:`Manifest` (they apply when it is
        read), or an unknown option in ``defaults``.
    ValueError
        ``workers`` is not a whole number >= 1.
    """
    from ..report.case_files import check_output_folder, make_folder

    started = time.perf_counter()
    if isinstance(manifest, Manifest):
        if defaults:
            raise TypeError("run_cohort: defaults apply when the manifest is read; pass them to "
                            "read_manifest(path, defaults=...) or give run_cohort the manifest's path")
    else:
        manifest = read_manifest(manifest, defaults=defaults)
    if workers is None:
        workers = _cores()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
    if qc:
        from ..dependencies import require

        require("matplotlib", "the QC pictures (--qc)")
    study = check_output_folder(output, "--output")
    make_folder(study, "--output")
    log = _Progress(_progress_mode(progress))
    with _StudyLock(study):
        cases_dir = study / "cases"
        make_folder(cases_dir, "--output")
        removed = _remove_leftovers(cases_dir)
        log.note(f"paraspinalfat {_version()} cohort run {time.strftime('%Y-%m-%d %H:%M:%S')}", console=False)
        log.note(f"manifest {manifest.path}: {manifest.n_rows} row(s), {len(manifest.cases)} case(s) to run, "
                 f"{len(manifest.error_rows)} row(s) with problems (see errors.csv)")
        for note in manifest.notes:
            log.note(f"note: {note}")
        for e in manifest.errors:
            log.note(f"row {e.row} ({e.subject or 'no subject'}): {e.message}")
        if removed:
            log.note(f"removed {removed} unfinished temporary folder(s) of an interrupted run in {cases_dir}")

        results: List[Optional[Dict[str, Any]]] = [None] * len(manifest.cases)
        jobs: List[_Job] = []
        n_warnings = [0, 0]  # warnings, cases with warnings
        extra = _fingerprint_extra(qc)
        for index, spec in enumerate(manifest.cases):
            case_dir = cases_dir / spec.case_id
            fingerprint = None
            if _has_done(case_dir):
                fingerprint = case_fingerprint(spec, extra=extra)
                found = _reusable(case_dir, fingerprint)
                if found is not None:
                    levels, n_levels, n_warn = found
                    n_warnings[0] += n_warn
                    n_warnings[1] += 1 if n_warn else 0
                    results[index] = {"case_id": spec.case_id, "status": "ok", "levels": levels,
                                      "n_levels": n_levels, "error": None,
                                      "reused": True}
                    continue
            jobs.append(_Job(index, spec, case_dir, fingerprint))
        n_reused = len(manifest.cases) - len(jobs)
        known = {spec.case_id for spec in manifest.cases}
        others = [e.name for e in os.scandir(cases_dir) if e.is_dir() and not e.name.startswith(".")
                  and e.name not in known]
        if others:
            log.note(f"note: {cases_dir} holds {len(others)} case folder(s) not in this manifest (kept, not used)",
                     console=False)
        if n_reused:
            log.note(f"reusing {n_reused} finished case(s) (their done.json matches the inputs and options)")

        def on_result(job: _Job, result: Dict[str, Any]) -> None:
            results[job.index] = result
            if result.get("warnings"):
                n_warnings[0] += len(result["warnings"])
                n_warnings[1] += 1
            log.case(job.spec.case_id, result)

        where = "nothing to run"
        pool = None  # the worker pool, kept for the study's exports when assemble can use it
        log.start(len(manifest.cases), n_reused, len(jobs))
        try:
            if jobs:
                if scheduler is not None:
                    where = _run_dask(jobs, scheduler, workers, qc, on_result)
                elif workers == 1 or len(jobs) == 1:
                    where = "this process"
                    _run_in_process(jobs, qc, on_result)
                else:
                    where = f"{min(workers, len(jobs))} worker process(es)"
                    pool = _run_pool(jobs, workers, qc, on_result,
                                     keep=assemble is not None and _takes_keyword(assemble, "submit"))
        finally:
            log.close()
        try:
            assembled, error_table, elapsed, n_measured, n_failed, measurements = _finish(
                study, manifest, results, log, where, n_reused, n_warnings, started, assemble, pool)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)

    case_tables = CaseTables(measurements)
    return CohortResult(study, measurements, error_table, manifest.n_rows, n_measured, n_reused, n_failed,
                        case_tables, elapsed_s=elapsed, n_warnings=n_warnings[0], manifest=manifest,
                        assembled=assembled)


def _finish(study: Path, manifest: Manifest, results: List[Optional[Dict[str, Any]]], log: "_Progress", where: str,
            n_reused: int, n_warnings: List[int], started: float, assemble, pool):
    """Write the study files and call ``assemble`` (with the pool's ``submit`` when there is one)."""
    from ..report.case_files import OutputSet, write_csv_atomic

    errors: List[RowError] = list(manifest.errors)
    errors += [r["error"] for r in results if r is not None and r["status"] != "ok" and r.get("error")]
    n_measure_failed = sum(1 for r in results if r is not None and r["status"] != "ok")
    n_measured = sum(1 for r in results if r is not None and r["status"] == "ok" and not r.get("reused"))
    measurements = _study_tables(manifest, results)
    n_failed = len(manifest.error_rows) + n_measure_failed
    elapsed = time.perf_counter() - started
    log.note(f"ran on {where}", console=False)
    log.note(f"cases: {manifest.n_rows}, measured: {n_measured}, reused: {n_reused}, failed: {n_failed} "
             f"(manifest: {len(manifest.error_rows)}, measure: {n_measure_failed}), "
             f"warnings: {n_warnings[0]} in {n_warnings[1]} case(s) (see cases/<case_id>/warnings.txt), "
             f"elapsed: {elapsed:.1f} s")
    error_table = _errors_table(errors)
    overlap = pool is not None and assemble is not None and _takes_keyword(assemble, "errors")
    assembled = None
    with OutputSet(study, option="--output") as out:
        if overlap:  # a worker writes measurements.csv while assemble builds the subject tables here
            pending = _submit_or_none(pool, write_csv_atomic, measurements, out.path("measurements.csv"))
            assembled, failure = _assemble(assemble, study, measurements, manifest, log,
                                           errors=error_table, submit=pool.submit)
            if failure is not None:
                errors.append(failure)
                error_table = _errors_table(errors)
            if pending is None or pending.exception() is not None:  # the pool could not: written here
                out.unstage("measurements.csv")
                out.write_csv(measurements, "measurements.csv")
        else:
            out.write_csv(measurements, "measurements.csv")
        out.write_csv(error_table, "errors.csv")
        _write_text(out.path("run.log"), "\n".join(log.lines) + "\n")

    if assemble is not None and not overlap:
        assembled, failure = _assemble(assemble, study, measurements, manifest, log,
                                       **({"submit": pool.submit} if pool is not None else {}))
        if failure is not None:
            errors.append(failure)
            error_table = _errors_table(errors)
            with OutputSet(study, option="--output") as out:
                out.write_csv(error_table, "errors.csv")
                _write_text(out.path("run.log"), "\n".join(log.lines) + "\n")
    return assembled, error_table, elapsed, n_measured, n_failed, measurements
