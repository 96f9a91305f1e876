"""The statistics example in README.md runs as written (documentation cannot drift)."""
from pathlib import Path

import numpy as np
import pandas as pd

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_stats_example_runs():
    rng = np.random.default_rng(0)
    n = 120
    df = pd.DataFrame({
        "vbmd": rng.normal(110, 30, n), "mf_pdff": rng.normal(18, 7, n), "es_pdff": rng.normal(17, 6, n),
        "age": rng.normal(60, 10, n), "sex": rng.choice(["male", "female"], n),
        "fa": rng.normal(0.3, 0.05, n), "adc": rng.normal(1.5, 0.2, n),
    })
    df["good_strength"] = (df["fa"] + rng.normal(0, 0.05, n) > 0.3).astype(int)
    df_long = pd.DataFrame({"case": np.repeat(np.arange(30), 2), "session": np.tile([1, 2], 30)})
    df_long["mf_csa"] = np.repeat(rng.normal(650, 120, 30), 2) + rng.normal(0, 20, 60)
    text = README.read_text(encoding="utf-8")
    start = text.index("```python\nfrom ParaspinalFatLib import stats") + len("```python\n")
    code = text[start: text.index("```", start)]
    namespace = {"df": df, "df_long": df_long}
    exec(compile(code, "README.md", "exec"), namespace)
    assert set(namespace["df"]["bmd_group"].dropna().unique()) <= {"normal", "osteopenia", "osteoporosis"}
    assert namespace["model"].n == n
