"""Smoke test of bench.gpu on the CPU (tiny preset), its MFU arithmetic and its time budget."""

import json

import pytest

from bench import gpu


@pytest.mark.slow  # a whole benchmark run in a subprocess: 10-35 s
def test_tiny_preset_writes_json(tmp_path):
  out = tmp_path / "gpu.json"
  gpu.main(["--preset=tiny", "--modes=function", f"--output={out}"])
  record = json.loads(out.read_text())
  assert (
    record["settings"]["config"] == "micro"
    and record["settings"]["batch_size"] == 2
  )
  assert record["peaks"]["float32"]["flops_per_s"] > 0
  train, sampling = record["results"]
  assert train["status"] == "ok", train
  assert train["mode"] == "function" and train["peak_rss_bytes"] > 0
  assert train["flops"] == record["model_flops_per_step"] > 0
  assert train["mfu_vs_measured_matmul"] == pytest.approx(
    train["achieved_flops_per_s"] / record["peaks"]["float32"]["flops_per_s"]
  )
  assert sampling["status"] == "ok" and sampling["samples"] == 2
  assert sampling["frames_per_s"] == pytest.approx(
    2 * 2 / sampling["timing"]["median_s"]
  )


def test_modes_past_the_budget_are_skipped(tmp_path):
  out = tmp_path / "gpu.json"
  gpu.main(
    [
      "--preset=tiny",
      "--modes=function,mixed_bf16",
      "--budget_s=0",
      f"--output={out}",
    ]
  )
  record = json.loads(out.read_text())
  assert [(r["mode"], r["status"]) for r in record["results"]] == [
    ("function", "skipped (budget)"),
    ("mixed_bf16", "skipped (budget)"),
  ]


def test_mfu_uses_the_peak_of_the_mode_precision():
  record = {
    "model_flops_per_step": 100.0,
    "peaks": {
      "float32": {"flops_per_s": 50.0},
      "bfloat16": {"flops_per_s": 200.0},
    },
  }
  fp32 = {
    "section": "train",
    "status": "ok",
    "precision": "float32",
    "timing": {"median_s": 4.0},
  }
  bf16 = {
    "section": "train",
    "status": "ok",
    "precision": "mixed_bfloat16",
    "timing": {"median_s": 1.0},
  }
  skipped = {"section": "train", "status": "skipped (budget)"}
  for result in (fp32, bf16, skipped):
    gpu.add_mfu(result, record, spec_bf16=1000.0)
  assert fp32["mfu_vs_measured_matmul"] == pytest.approx(25.0 / 50.0)
  assert bf16["mfu_vs_measured_matmul"] == pytest.approx(100.0 / 200.0)
  assert "achieved_flops_per_s" not in skipped


def test_unknown_mode_is_rejected():
  with pytest.raises(ValueError, match="warp_speed"):
    gpu.main(["--preset=tiny", "--modes=function,warp_speed"])
