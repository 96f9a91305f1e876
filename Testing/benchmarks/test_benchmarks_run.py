"""The benchmark scripts still run (smoke test only: timings and memory are reported, never asserted)."""
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("script, args", [("bench_measure.py", ["--repeat", "2"]), ("bench_roc.py", []),
                                          ("bench_memory.py", ["--slices", "40", "--repeat", "1"]),
                                          ("bench_speed.py", ["--quick"]), ("bench_cohort.py", ["--quick"]),
                                          ("bench_phases.py", ["--quick"]), ("bench_floors.py", ["--quick"])])
def test_benchmark_script_runs(script, args):
    proc = subprocess.run([sys.executable, str(HERE / script)] + args, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ratio" in proc.stdout or "phase" in proc.stdout
