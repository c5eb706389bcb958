"""Smoke test of bench.hardware: FLOPs per step, achieved FLOP/s and the peaks."""

import json

import pytest

from bench import hardware


@pytest.mark.slow  # a whole benchmark run in a subprocess: 10-35 s
def test_hardware_bench_writes_json(tmp_path):
  out = tmp_path / "hardware.json"
  hardware.main(
    [
      "--cases=micro:1",
      "--mode=eager",
      "--matmul_size=256",
      "--conv_shape=1,8,8,16",
      "--warmup=1",
      "--repeats=1",
      f"--output={out}",
    ]
  )
  record = json.loads(out.read_text())
  assert record["peak_flops_per_s"] > 0
  for key in ("matmul_float32_start", "matmul_float32_end", "conv3x3_float32"):
    assert record["peaks"][key]["flops_per_s"] > 0
  (result,) = record["results"]
  assert result["status"] == "ok", result
  for key in (
    "flops",
    "achieved_flops_per_s",
    "fraction_of_matmul_peak",
    "flops_by_component",
    "flops_by_direction",
    "elementwise_ops",
    "ms_per_step",
  ):
    assert key in result
  # Backward convolutions cost about twice the forward ones.
  direction = result["flops_by_direction"]
  assert 1.5 < direction["backward"] / direction["forward"] < 2.5
  assert sum(result["flops_by_component"].values()) == result["flops"]
