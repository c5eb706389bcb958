"""A short soak run (bench/soak.py): random kills, resumes, a valid model at the end.

Slow (minutes); run with `pytest -m slow tests/test_soak.py`. The full soak is
`python -m bench.soak --minutes=20 --kills=5` (last result in docs/RELIABILITY.md).
"""

import json

import pytest

from bench import soak


@pytest.mark.slow
def test_short_soak_ends_with_a_valid_model(tmp_path):
  output = tmp_path / "soak.json"
  status = soak.main([f"--workdir={tmp_path / 'run'}", "--minutes=5",
                      "--kills=3", "--checkpoint_secs=20", "--seed=1",
                      f"--output={output}"])
  result = json.loads(output.read_text())
  assert status == 0 and result["ok"], result["problems"]
  assert [s["kind"] for s in result["stops"]] == [
      "sigkill", "sigkill_in_checkpoint_write", "sigint", "sigterm"]
  assert result["final_step"] > 0
  assert result["loss_last_20_mean"] < result["loss_first_20_mean"]
