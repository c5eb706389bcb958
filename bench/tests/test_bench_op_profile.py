"""Smoke test of bench.op_profile: op times of a traced train step, grouped."""

import json

import pytest

from bench import op_profile


@pytest.mark.slow  # a whole benchmark run in a subprocess: 10-35 s
def test_op_profile_bench_writes_json(tmp_path):
  out = tmp_path / "op_profile.json"
  op_profile.main(["--cases=micro:1", "--steps=1", f"--output={out}"])
  record = json.loads(out.read_text())
  assert record["hardware"]["tensorflow"]
  (result,) = record["results"]
  assert result["status"] == "ok", result
  for key in (
    "op_seconds_total",
    "wall_seconds",
    "by_kind_s",
    "by_part_s",
    "ops_traced",
  ):
    assert key in result
  assert result["ops_traced"] > 0
  assert any(kind.startswith("conv") for kind in result["by_kind_s"])
  assert result["by_kind_s"]["XLA computation"] > 0  # GroupNorm's gradients


def test_op_kinds():
  assert (
    op_profile.kind_of(
      "x/gradient_tape/decoder/conv/Conv2DBackpropFilter",
      "_MklNativeConv2DBackpropFilter",
    )
    == "conv backward-filter"
  )
  assert (
    op_profile.kind_of(
      "StatefulPartitionedCall/decoder/up/conv_transpose", "Conv2DBackpropInput"
    )
    == "conv transpose forward"
  )
  assert (
    op_profile.kind_of(
      "StatefulPartitionedCall/gradient_tape/decoder/up/conv_transpose",
      "Conv2DBackpropInput",
    )
    == "conv backward-input"
  )
  assert (
    op_profile.part_of(
      "StatefulPartitionedCall/gradient_tape/frame_encoder_1/x"
    )
    == "encoder"
  )


def test_events_are_classified_or_skipped():
  assert op_profile.classify("decoder/conv/Conv2D:_MklNativeConv2D") == (
    "conv forward",
    "decoder",
  )
  assert op_profile.classify(op_profile.XLA_EVENT) == (
    "XLA computation",
    "XLA computations",
  )
  assert op_profile.classify("conv_lstm_5/group_norm_27/Sum:Sum") == (
    "GroupNorm (fwd+bwd)",
    "latent networks",
  )
  assert op_profile.classify("ExecutorState::Process") is None
  assert op_profile.classify("ThunkExecutor::Execute") is None
