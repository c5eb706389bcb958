"""Smoke test of bench.train_step at the smallest size (no timing assertions)."""

import json

from bench import train_step


def test_train_step_bench_writes_json(tmp_path):
  out = tmp_path / "train_step.json"
  train_step.main(
    ["--cases=micro:2:eager", "--warmup=1", "--repeats=1", f"--output={out}"]
  )
  record = json.loads(out.read_text())
  for key in (
    "bench",
    "command",
    "date_utc",
    "hardware",
    "load_before",
    "load_after",
    "settings",
    "results",
    "configs",
    "tables_markdown",
  ):
    assert key in record
  assert record["hardware"]["cpu_model"] and record["hardware"]["tensorflow"]
  (result,) = record["results"]
  assert result["status"] == "ok", result
  for key in (
    "config",
    "batch_size",
    "mode",
    "precision",
    "parameters",
    "ms_per_step",
    "sequences_per_s",
    "timing",
    "loss",
  ):
    assert key in result
  assert result["timing"]["repeats"] == 1 and result["ms_per_step"] > 0
  assert record["configs"]["micro"]["image_size"] == 8
