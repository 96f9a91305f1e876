"""Headless 3D Slicer batch: measure every case of a manifest into a study folder.

This runs ParaspinalFatLib's cohort runner through the library's own command line
(:func:`ParaspinalFatLib.cli.main` with the sub-command ``cohort``): the manifest
format, the options, the study folder and the exit status are exactly those of
``paraspinalfat cohort`` (README: *A study: cohort and report*).

Usage
-----
Inside 3D Slicer, without a window::

    Slicer --no-main-window --python-script ParaspinalFat/Scripts/batch.py -- \\
        --manifest cases.csv --output study/ [--workers N] [--map pdff] [--levels all] ...

With plain Python or Slicer's ``PythonSlicer`` (numpy, scipy, SimpleITK and pandas installed)::

    python ParaspinalFat/Scripts/batch.py --manifest cases.csv --output study/

``--help`` lists every option (they are those of ``paraspinalfat cohort``; the usage line
says ``paraspinalfat cohort``).  In an installed extension the script is
``<extension>/lib/Slicer-X.Y/qt-scripted-modules/ParaspinalFatScripts/batch.py``.

Notes
-----
* Slicer runs the script with ``sys.argv == ['batch.py', ARGS...]`` (the arguments after
  ``--``); a leading ``--`` left in the arguments is dropped.  Slicer takes the first
  argument ending in ``.py`` as the script to run: never pass a file name ending in
  ``.py`` as the first argument (every option here starts with ``--``; write them first).
* ParaspinalFatLib is looked for beside the script -- one folder up in a Slicer build or
  install tree (``qt-scripted-modules/ParaspinalFatLib``), two folders up in the source
  tree (``ParaspinalFatLib/`` at the repository root) -- and that folder is put first on
  ``sys.path``; otherwise the library must be importable already.  The library's folder and
  version are printed first.
* Slicer bundles numpy, scipy and SimpleITK but no Slicer release bundles pandas.  Inside
  Slicer a missing package is installed with ``slicer.util.pip_install`` after a message
  saying so (needs internet access, once per Slicer installation); in plain Python it is
  reported with the command that installs it (exit status 2).
* ``--workers`` (default: the number of cores) starts worker processes with
  ``sys.executable`` (``PythonSlicer`` inside Slicer); each re-imports this script, whose
  top level only defines functions.  If worker processes cannot start in your Slicer, run
  with ``--workers 1``.
* Progress: one line per case on standard error (``[2/40] S002 ok (1.3 s)``), as the
  command line prints it; every line also goes to ``<output>/run.log``.

Exit status
-----------
0 every case was measured; 1 the run completed but some cases failed (listed in
``<output>/errors.csv``), or an unexpected error (traceback printed); 2 an input error:
an unreadable manifest, an unusable output folder, a bad option, a missing package or
library.  The script always ends with ``sys.exit`` so that Slicer quits with this status.
"""
import importlib
import importlib.util
import os
import sys
import traceback

#: packages every cohort run imports (numpy, scipy, SimpleITK come with Slicer; pandas does not)
REQUIRED_PACKAGES = ("numpy", "scipy", "SimpleITK", "pandas")
#: prefix of this script's own messages
PROGRAM = "ParaspinalFat batch"


def script_path():
    """Absolute path of this script (Slicer sets ``__file__`` when it runs it).

    Returns
    -------
    str
        The script's path, from ``__file__`` or else ``sys.argv[0]``.
    """
    return os.path.abspath(globals().get("__file__") or sys.argv[0])


def library_folder(script):
    """The folder holding ``ParaspinalFatLib/`` beside ``script``, if any.

    Parameters
    ----------
    script : str
        Path of this script.

    Returns
    -------
    str or None
        ``<script folder>/..`` (Slicer build or install tree: qt-scripted-modules) or
        ``<script folder>/../..`` (source tree: the repository root), the first that
        contains ``ParaspinalFatLib/__init__.py``; None when neither does.
    """
    here = os.path.dirname(os.path.abspath(script))
    for folder in (os.path.dirname(here), os.path.dirname(os.path.dirname(here))):
        if os.path.isfile(os.path.join(folder, "ParaspinalFatLib", "__init__.py")):
            return folder
    return None


def running_in_slicer():
    """True inside the 3D Slicer application (``slicer.app`` exists).

    The ``slicer`` package of the ``slicer-core`` wheel or of ``PythonSlicer`` has no
    ``app``: there this is False.  ``slicer`` is never imported here.
    """
    slicer = sys.modules.get("slicer")
    return slicer is not None and getattr(slicer, "app", None) is not None


def missing_packages(names=REQUIRED_PACKAGES):
    """The packages of ``names`` that cannot be imported (looked up, not imported).

    Parameters
    ----------
    names : sequence of str
        Import names.

    Returns
    -------
    list of str
        The names without an import spec (or blocked in ``sys.modules``).
    """
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # ValueError: sys.modules[name] is None (import blocked)
            found = False
        if not found:
            missing.append(name)
    return missing


def install_in_slicer(names):
    """Install ``names`` into Slicer's Python with ``slicer.util.pip_install``, saying so first.

    Parameters
    ----------
    names : list of str
        Import names of the missing packages.

    Returns
    -------
    list of str
        The packages still missing afterwards.
    """
    import slicer.util  # only called inside Slicer

    from ParaspinalFatLib.dependencies import PACKAGES

    for name in names:
        requirement = PACKAGES.get(name, (name,))[0]
        print(f"{PROGRAM}: the package '{name}' is not installed in Slicer's Python; installing it now with "
              f"slicer.util.pip_install('{requirement}') (needs internet access; done once per Slicer "
              f"installation)", flush=True)
        slicer.util.pip_install(requirement)
    importlib.invalidate_caches()
    return missing_packages(names)


def report_missing(names):
    """Print one error line per missing package with the command that installs it.

    Parameters
    ----------
    names : list of str
        Import names of the missing packages.
    """
    from ParaspinalFatLib.dependencies import PACKAGES, install_hint

    for name in names:
        purpose = PACKAGES.get(name, ("", "the cohort run"))[1]
        print(f"paraspinalfat: error: the package '{name}' is needed for {purpose} but is not installed; "
              f"{install_hint(name)}", file=sys.stderr)


def use_library(script):
    """Put the library beside ``script`` first on ``sys.path`` and import it.

    Parameters
    ----------
    script : str
        Path of this script.

    Returns
    -------
    module or None
        ``ParaspinalFatLib``; None (after an error line) when it cannot be found.
    """
    folder = library_folder(script)
    if folder is not None and folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        return importlib.import_module("ParaspinalFatLib")
    except ImportError as exc:
        here = os.path.dirname(os.path.abspath(script))
        print(f"paraspinalfat: error: cannot import ParaspinalFatLib ({exc}); it is neither beside this script "
              f"(looked in {os.path.dirname(here)} and {os.path.dirname(os.path.dirname(here))}) nor "
              f"installed; run the batch.py of the extension or of the source tree, or install the library "
              f"(python -m pip install <source tree>)", file=sys.stderr)
        return None


def _exit_status(exc):
    """The exit status that ``SystemExit`` ``exc`` carries (as ``sys.exit`` reports it)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def run(argv):
    """Run ``paraspinalfat cohort`` with ``argv`` after the library and packages are checked.

    Parameters
    ----------
    argv : list of str
        The script's arguments (``sys.argv[1:]``); a leading ``--`` is dropped.

    Returns
    -------
    int
        The exit status (see the module notes).
    """
    args = list(argv)
    if args[:1] == ["--"]:
        args = args[1:]
    script = script_path()
    library = use_library(script)
    if library is None:
        return 2
    in_slicer = running_in_slicer()
    where = "inside 3D Slicer" if in_slicer else sys.executable
    print(f"{PROGRAM}: ParaspinalFatLib {library.__version__} from "
          f"{os.path.dirname(os.path.dirname(os.path.abspath(library.__file__)))}; Python "
          f"{sys.version.split()[0]} ({where})", file=sys.stderr, flush=True)
    wants_help = any(arg in ("-h", "--help") for arg in args)
    missing = [] if wants_help else missing_packages()
    if missing and in_slicer:
        missing = install_in_slicer(missing)
    if missing:
        report_missing(missing)
        return 2
    from ParaspinalFatLib.cli import main as cli_main

    return int(cli_main(["cohort", *args]) or 0)


def main(argv=None):
    """Entry point: :func:`run` with every exception turned into an exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the script name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0, 1 or 2 (see the module notes); 130 when interrupted.  Nothing propagates: inside
        Slicer an exception escaping the script would leave the application running.
    """
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse: --help (0), a bad option (2)
        return _exit_status(exc)
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return 130
    except BaseException:  # noqa: BLE001 - reported, and Slicer must still exit
        traceback.print_exc()
        print(f"{PROGRAM}: unexpected error (traceback above); exit status 1", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
