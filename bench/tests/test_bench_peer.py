"""bench.peer: input checks, the derived ratios and targets, both children at a small width.

The release and torch: PEER_RELEASE_DIR and PEER_TORCH_PYTHON (default
runs/improved_vrnn and runs/peer_venv/bin/python); tests needing them skip
without them.
"""

import json
import os
import types

import pytest

from bench import common
from bench import peer
from bench import peer_ours
from bench import peer_report

driver = peer.driver
PEER_PROBLEM = driver.peer_problem()
needs_peer = pytest.mark.skipif(
  bool(PEER_PROBLEM), reason=PEER_PROBLEM or "runnable"
)


def test_paper_config_is_the_bair_model():
  assert peer_ours.paper_config(64, 2, 10) == common.model_config("bair_h3")
  small = peer_ours.paper_config(16, 2, 1)
  assert small.latent_channels == (128, 128, 32) and small.future_frames == 1


def test_bad_release_dir_is_one_line(tmp_path):
  with pytest.raises(
    SystemExit, match="is not a checkout of the authors' release"
  ):
    peer.main([f"--release_dir={tmp_path}", "--torch_python=python3"])


def _train(name, batch, seconds, rss, flops):
  return {
    "section": "train",
    "implementation": name,
    "batch_size": batch,
    "status": "ok",
    "timing": peer.summary(seconds),
    "peak_rss_bytes": rss,
    "flop_count": {"flops": flops},
  }


def _record():
  gib = 2**30
  return {
    "settings": {"batches": [1, 2]},
    "peaks": [
      {"child": "ours", "when": "start", "flops_per_s": 100e9},
      {"child": "release", "when": "end", "flops_per_s": 200e9},
    ],
    "parameters": {
      "ours": 5,
      "release_with_gradient": 5,
      "release_total": 7,
      "agree": True,
      "release_modules_without_gradient": ["det_init_net"],
    },
    "results": [
      _train("release", 1, [10.0, 12.0, 11.0], 6 * gib, 900e9),
      _train("ours", 1, [5.0, 5.0, 7.0], 5 * gib, 800e9),
      _train("release", 2, [20.0], 7 * gib, 1800e9),
      _train("ours", 2, [18.0], 8 * gib, 1600e9),
      {
        "section": "sampling",
        "implementation": "release",
        "status": "ok",
        "samples_per_call": 1,
        "passes_timed": 1,
        "timing": peer.summary([2.0]),
        "seconds_per_call": 56.0,
        "protocol_samples": 100,
        "seconds_per_test_sequence": 5600.0,
        "extrapolated": True,
        "peak_rss_bytes": gib,
      },
      {
        "section": "sampling",
        "implementation": "ours",
        "status": "ok",
        "samples_per_call": 10,
        "timing": peer.summary([40.0]),
        "seconds_per_call": 40.0,
        "protocol_samples": 100,
        "seconds_per_test_sequence": 400.0,
        "extrapolated": True,
        "peak_rss_bytes": gib,
      },
    ],
  }


def test_derive_ratios_targets_and_tables():
  record = _record()
  peer_report.derive(record)
  assert record["peak_flops_per_s"] == 200e9
  b1, b2 = record["train_comparison"]
  assert b1["train_speedup"] == pytest.approx(11.0 / 5.0)
  assert b1["paired_speedups"] == pytest.approx([2.0, 2.4, 11.0 / 7.0])
  assert b1["train_speedup_conservative"] == pytest.approx(
    2.0
  )  # paired median = minima
  assert b1["ours_fraction_of_matmul_peak"] == pytest.approx(
    800e9 / 5.0 / 200e9
  )
  assert b1["release_fraction_of_matmul_peak"] == pytest.approx(
    800e9 / 11.0 / 200e9
  )
  assert b2["peak_rss_ours_over_release"] == pytest.approx(8 / 7)
  assert record["sampling_speedup_per_test_sequence"] == pytest.approx(14.0)
  met = {t["target"]: t["met"] for t in record["targets"]}
  assert met == {
    "train step >= 1.3x faster than the release, batch 1": True,
    "ours >= 45% of the fp32 matmul peak, batch 1": True,  # 0.8
    "train step >= 1.3x faster than the release, batch 2": False,  # 1.11
    "ours >= 45% of the fp32 matmul peak, batch 2": False,  # 0.44
    "peak memory at batch 2 <= the release's": False,
    "BAIR-protocol sampling >= 10x faster per test sequence": True,
  }
  text = "\n".join(peer_report.tables(record))
  assert "never called: det_init_net" in text and "| NO  |" in text


def test_from_json_recomputes_an_earlier_record(tmp_path):
  path = tmp_path / "peer.json"
  record = _record()
  path.write_text(json.dumps(record))
  peer.main(
    [f"--from_json={path}", "--release_dir=/nonexistent"]
  )  # nothing is run
  rederived = json.loads(path.read_text())
  assert rederived["sampling_speedup_per_test_sequence"] == pytest.approx(14.0)
  assert rederived["tables_markdown"] and rederived["rederived_utc"]


@needs_peer
def test_children_build_models_with_equal_parameter_counts():
  args = types.SimpleNamespace(
    context_frames=2,
    future_frames=1,
    n_hid=16,
    precision="fp32",
    torch_python=driver.DEFAULT_TORCH_PYTHON,
    release_dir=driver.DEFAULT_RELEASE_DIR,
    peer_omp_wait_policy="PASSIVE",
    release_malloc="system",
    ours_malloc="auto",
  )
  children = peer.start_children(args, 1)
  try:
    release, ours = children
    assert (
      release.call("train", steps=1)["loss"] > 0
    )  # gives the used parameters a gradient
    release_info, ours_info = release.call("info"), ours.call("info")
  finally:
    for child in children:
      child.close()
  assert release_info["omp_wait_policy"] == "PASSIVE"
  assert (
    release_info["parameters_with_gradient"]
    == ours_info["parameters"]
    == 14_064_467
  )
  assert release_info["parameters"] > ours_info["parameters"]


@pytest.mark.slow
@needs_peer
def test_peer_bench_end_to_end_at_a_small_width(tmp_path):
  out = tmp_path / "peer.json"
  peer.main(
    [
      "--batches=1",
      "--repeats=2",
      "--n_hid=16",
      "--future_frames=1",
      "--sample_future=2",
      "--our_samples_timed=2",
      "--protocol_samples=4",
      "--sample_repeats=1",
      "--matmul_size=256",
      f"--output={out}",
    ]
  )
  record = json.loads(out.read_text())
  assert record["parameters"]["agree"]
  turns = [(t["op"], t["child"]) for t in record["turns"]]
  assert turns == [("train", "release"), ("train", "ours")] * 2 + [
    ("sample", "release"),
    ("sample", "ours"),
  ]
  (row,) = record["train_comparison"]
  assert row["model_flops"] > 0 and row["ours_fraction_of_matmul_peak"] > 0
  assert record["sampling_speedup_per_test_sequence"] > 0
  assert {t["target"] for t in record["targets"]} >= {
    "BAIR-protocol sampling >= 10x faster per test sequence"
  }
  assert len(record["peaks"]) == 4 and os.path.exists(out)
