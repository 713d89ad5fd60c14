"""`bench_data.py --tiny`: a generated CSV trained on twice through train.py's own path, each run in a child process
stopped at its first training batch; the second reuses the first one's tokenization, and every figure is measured,
so a change to data=files or to the setup cannot break `make bench-data` unseen."""

from __future__ import annotations

import json

from tests.test_bench_speed import run_tiny


def test_tiny_bench_data_runs_cold_then_warm_from_the_cache(tmp_path, tiny_mirror):
    out = run_tiny("bench_data.py", tmp_path, tiny_mirror)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "processor:" in out.stdout and "| rows | file MiB | tokenized MiB on disk |" in out.stdout
    (saved,) = tmp_path.glob("data_*.json")
    (result,) = json.loads(saved.read_text())["results"]
    assert result["rows"] == 2000 and result["file_mib"] > 0 and result["entry_mib"] > 0
    cold, warm = result["runs"]
    assert (cold["run"], cold["cache_reused"], warm["run"], warm["cache_reused"]) == ("cold", False, "warm", True)
    assert cold["cache_line"].startswith("tokenized 2000 rows in ") and "and cached at" in cold["cache_line"]
    assert warm["cache_line"].startswith("tokenized splits reused from ")
    assert cold["tokenize_rows_per_s"] > 0 and warm["tokenize_rows_per_s"] is None
    for run in (cold, warm):
        assert run["first_step_s"] > run["imports_s"] > 0 and run["setup_s"] > 0
        assert run["peak_rss_mib"] > run["imports_rss_mib"] > 0 and run["peak_over_entry"] > 0
        assert run["batch_shape"][0] == 32  # data=files' batch size: a real training batch was drawn
    assert not list(tmp_path.glob("data_*/"))  # the CSV and the caches are removed without --keep
