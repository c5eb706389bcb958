"""Smoke test of bench.input_pipeline on tiny synthetic shards."""

import json

import pytest

from bench import input_pipeline


def test_input_pipeline_bench_writes_json(tmp_path):
  out = tmp_path / "input_pipeline.json"
  input_pipeline.main(
    [
      "--sources=bair_tfrecord",
      "--consumers=bair_tfrecord=micro:2",
      "--bair_sequences=8",
      "--batches=2",
      "--warmup_batches=1",
      "--batch_size=4",
      "--fed_steps=1",
      "--warmup=1",
      "--repeats=1",
      f"--shard_dir={tmp_path / 'shards'}",
      f"--output={out}",
    ]
  )
  record = json.loads(out.read_text())
  assert record["hardware"]["cpu_model"]
  (result,) = record["results"]
  assert result["status"] == "ok", result
  for key in (
    "pipeline_sequences_per_s",
    "pipeline_sequences_per_s_at_batch_size",
    "consumer_sequences_per_s",
    "ratio_pipeline_to_consumer",
    "fed_sequences_per_s",
    "fed_slowdown",
  ):
    assert key in result
  assert result["pipeline_sequences_per_s"] > 0


@pytest.mark.parametrize(
  "consumer, message",
  [
    (
      "bair_tfrecord:micro:2",
      "Consumer 'bair_tfrecord:micro:2' is not source=config:batch",
    ),
    ("bair_tfrecord=micro", "Case 'micro' is not config:N"),
  ],
)
def test_bad_consumers_are_one_clear_error(tmp_path, consumer, message):
  with pytest.raises(ValueError, match=message):
    input_pipeline.main(
      [
        "--sources=bair_tfrecord",
        f"--consumers={consumer}",
        f"--output={tmp_path / 'out.json'}",
      ]
    )
