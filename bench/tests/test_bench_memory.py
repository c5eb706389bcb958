"""Smoke test of bench.memory: one case in a subprocess, and the budget search logic."""

import json

import pytest

from bench import memory
from hvrnn_tf.utils import allocator


@pytest.mark.slow  # a whole benchmark run in a subprocess: 10-35 s
def test_memory_bench_writes_json(tmp_path):
  out = tmp_path / "memory.json"
  # Allocators that keep TensorFlow's pool, whose stats the tensor columns read.
  malloc = "tcmalloc_pool" if allocator.find_tcmalloc() else "system"
  memory.main(
    [
      "--cases=micro:1",
      "--search=",
      "--steps=1",
      f"--malloc={malloc}",
      f"--output={out}",
    ]
  )
  record = json.loads(out.read_text())
  assert record["hardware"]["tensorflow"]
  (result,) = record["results"]
  assert result["status"] == "ok", result
  for key in (
    "peak_rss_bytes",
    "rss_after_import_bytes",
    "rss_after_build_bytes",
    "rss_after_trace_bytes",
    "parameters",
  ):
    assert result[key] > 0
  assert result["peak_rss_bytes"] >= result["rss_after_build_bytes"]
  # oneDNN's CPU allocator (on by default) keeps the stats; it counts only
  # tensors of 256 KiB and more, which the micro model may not have.
  tensors = result["cpu_tensors_after_build_bytes"]
  assert 0 <= tensors <= result["cpu_tensor_peak_bytes"]
  assert result["cpu_tensor_peak_bytes"] < result["peak_rss_bytes"]
  assert result["allocator"] == malloc.replace("_pool", "")


def test_search_stops_at_the_budget(monkeypatch):
  def fake_measure(config, batch, steps, timeout, malloc):
    del steps, timeout, malloc
    return {
      "config": config,
      "batch_size": batch,
      "status": "ok",
      "peak_rss_bytes": (1 + batch) * 2**30,
    }

  monkeypatch.setattr(memory, "measure", fake_measure)
  found = memory.search("micro", 6.5 * 2**30, 64, 1, 10, {})
  assert (
    found["largest_measured_batch_within_budget"] == 4
  )  # 5 GiB; batch 8 needs 9
  assert found["predicted_largest_batch"] == 5  # 1 + 5 = 6 GiB <= 6.5
  assert abs(found["fit_bytes_per_sequence"] - 2**30) < 1


def test_no_tensor_stats_when_tensorflow_allocates_with_malloc(monkeypatch):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  monkeypatch.setenv(allocator.TF_SYSTEM_ALLOCATOR_ENV, "1")
  assert memory._tensor_stats(tf, "CPU:0") is None  # pylint: disable=protected-access
  monkeypatch.setenv(allocator.TF_SYSTEM_ALLOCATOR_ENV, "0")
  stats = memory._tensor_stats(tf, "CPU:0")  # pylint: disable=protected-access
  assert stats is None or stats["peak"] >= 0
