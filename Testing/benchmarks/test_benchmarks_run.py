"""The benchmark scripts still run (smoke test only: timings are reported, never asserted)."""
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("script", ["bench_measure.py", "bench_roc.py"])
def test_benchmark_script_runs(script):
    proc = subprocess.run([sys.executable, str(HERE / script)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ratio" in proc.stdout or "speed ratio" in proc.stdout
