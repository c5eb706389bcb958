"""Where a train step's time goes: TF profiler op times grouped by kind and model part.

  python -m bench.op_profile                       # ~1-2 min on 2 CPU cores
  python -m bench.op_profile --cases=bair_h1_d1:1 --steps=2

Traces --steps tf.function train steps with `tf.profiler.experimental` and
sums, from the trace (XSpace protobuf), the time of every TensorFlow op kernel
executed on the host's compute threads (on a GPU: the device's kernels too),
grouped by
  kind: convolution forward / backward-input / backward-filter, GroupNorm
        (ops under a group_norm or group_normalization scope, forward; the
        gradients run as XLA computations), optimizer update, and the
        remaining ops by TF op type;
  part: encoder / decoder / latent networks / loss+optimizer (by name scope).
XLA-compiled functions (GroupNorm's gradients) count as one "XLA computation"
per execution, in a part of their own.
Op times on parallel threads add up, so shares are of summed op time, not of
wall time (both are reported).
"""

import collections
import glob
import os
import shutil
import tempfile
import time

from absl import flags
import tensorflow as tf

from bench import cli
from bench import common
from bench import hlo_flops

FLAGS = cli.define_flags("op_profile")
flags.DEFINE_string(
  "cases", "smmnist_quick:8,bair_h1_d1:1", "config:batch,...", flag_values=FLAGS
)
flags.DEFINE_integer(
  "steps", 2, "Profiled train steps per case.", flag_values=FLAGS
)
flags.DEFINE_integer(
  "top", 12, "Op kinds listed in the table.", flag_values=FLAGS
)


def _load_xspace(logdir: str):
  from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top

  paths = sorted(
    glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
  )
  if not paths:
    raise RuntimeError(f"The profiler wrote no .xplane.pb under {logdir}")
  space = xplane_pb2.XSpace()
  with open(paths[-1], "rb") as f:
    space.ParseFromString(f.read())
  return space


def kind_of(op_name: str, op_type: str) -> str:
  lowered = op_name.lower()
  if "conv2dbackpropfilter" in op_type.lower():
    return "conv backward-filter"
  if "conv2dbackpropinput" in op_type.lower():
    # Conv2DTranspose runs as Conv2DBackpropInput in the forward pass too.
    return (
      "conv backward-input"
      if hlo_flops.is_backward(op_name)
      else "conv transpose forward"
    )
  if "conv2d" in op_type.lower():
    return "conv forward"
  if "group_norm" in lowered:  # also group_normalization (Keras's layer)
    return "GroupNorm (fwd+bwd)"
  if (
    "adam" in lowered
    or "optimizer" in lowered
    or "assignvariable" in op_type.lower()
  ):
    return "optimizer update"
  return "other: " + op_type.lstrip("_").replace("MklNative", "").replace(
    "Mkl", ""
  )


def part_of(op_name: str) -> str:
  scope = hlo_flops._scopes(op_name)  # pylint: disable=protected-access
  top = scope[0] if scope else ""
  if top.startswith("frame_encoder"):
    return "encoder"
  if top.startswith("decoder") or top.startswith("init_"):
    return "decoder"
  if top.startswith(("conv_lstm", "initial_state", "conv2d", "group_norm")):
    return "latent networks"
  if "adam" in op_name.lower() or "optimizer" in op_name.lower():
    return "optimizer"
  return "loss, KL, sampling, other"


# The host event of one XLA-compiled function's execution (its op-level
# events name fusions, not TF ops); GroupNorm's gradients run as such.
XLA_EVENT = "CpuExecutable::ExecuteAsyncOnStream"


def classify(name: str):
  """(kind, part) of a trace event's name ("op_name:OpType"), or None when it
  is not an op kernel (framework events such as ExecutorState::Process)."""
  if name == XLA_EVENT:
    return "XLA computation", "XLA computations"
  if ":" not in name or "::" in name:
    return None
  op_name, op_type = name.rsplit(":", 1)
  if not op_type or " " in op_type:
    return None
  return kind_of(op_name, op_type), part_of(op_name)


def summarize(space) -> dict:
  """Op kernel time by kind and part, from the host (and device) planes."""
  by_kind = collections.Counter()
  by_part = collections.Counter()
  count = 0
  for plane in space.planes:
    device_plane = plane.name.startswith("/device:")
    if not (plane.name.startswith("/host:CPU") or device_plane):
      continue
    metadata = plane.event_metadata
    for line in plane.lines:
      if not (
        line.name.startswith("tf_Compute")
        or line.name.startswith("tf_op")
        or (device_plane and "stream" in line.name.lower())
      ):
        continue
      for event in line.events:
        classified = classify(metadata[event.metadata_id].name)
        if classified is None:
          continue
        seconds = event.duration_ps * 1e-12
        by_kind[classified[0]] += seconds
        by_part[classified[1]] += seconds
        count += 1
  total = sum(by_kind.values())
  return {
    "op_seconds_total": total,
    "ops_traced": count,
    "by_kind_s": dict(by_kind.most_common()),
    "by_part_s": dict(by_part.most_common()),
  }


def profile_steps(step, video, steps: int, logdir=None) -> dict:
  """Profiles `steps` calls of `step(video)` (already traced); returns `summarize`."""
  own = logdir is None
  logdir = logdir or tempfile.mkdtemp(prefix="hvrnn_bench_profile_")
  try:
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    try:
      for _ in range(steps):
        common.sync(step(video)[0]["loss"])
    finally:
      wall = time.perf_counter() - start
      tf.profiler.experimental.stop()
    summary = summarize(_load_xspace(logdir))
  finally:
    if own:
      shutil.rmtree(logdir, ignore_errors=True)
  summary["wall_seconds"] = wall
  summary["steps"] = steps
  summary["op_seconds_per_wall_second"] = summary["op_seconds_total"] / wall
  return summary


def profile_case(name, config, batch, steps) -> dict:
  """Profiles `steps` train steps of one (config, batch), or records its failure."""
  print(f"[op_profile] {name} batch {batch}", flush=True)
  result = {
    "config": name,
    "batch_size": batch,
    "load_at_start": common.load_average(),
  }
  try:
    trainer = common.make_trainer(config, batch)
    video = common.synthetic_video(config, batch)
    # Trace outside the profile.
    common.sync(trainer.train_step(video)[0]["loss"])
    result.update(profile_steps(trainer.train_step, video, steps))
    result["status"] = "ok"
    del trainer
  except Exception as e:  # pylint: disable=broad-except
    result.update(status="failed", error=common.error_text(e))
  common.release_memory()
  return result


def case_table(result, steps, top) -> str:
  """Per-step op time by kind (the `top` largest, then the rest) and part."""
  name, batch, status = result["config"], result["batch_size"], result["status"]
  if status != "ok":
    return f"{name} batch {batch}: {status} {result.get('error', '')}"
  case = f"{name} b{batch}"
  total = result["op_seconds_total"]
  kinds = list(result["by_kind_s"].items())
  shown, rest = kinds[:top], kinds[top:]
  rows = [[case, k, v / steps, v / total] for k, v in shown]
  if rest:
    rows.append(
      [
        case,
        f"{len(rest)} other op types",
        sum(v for _, v in rest) / steps,
        sum(v for _, v in rest) / total,
      ]
    )
  rows += [
    [case, f"part: {k}", v / steps, v / total]
    for k, v in result["by_part_s"].items()
  ]
  rows.append(
    [case, "wall time per step", result["wall_seconds"] / steps, None]
  )
  return common.markdown_table(
    ["case", "op kind / model part", "op s per step", "share of op time"],
    rows,
  )


def run(cases, steps, top, output, argv=None):
  record = common.start_record(
    "op_profile", argv, {"cases": [list(c) for c in cases], "steps": steps}
  )
  record["output"] = output
  for name, batch in cases:
    config = common.model_config(name)
    record["results"].append(profile_case(name, config, batch, steps))
    record.setdefault("configs", {})[name] = common.config_record(name, config)
  tables = [case_table(r, steps, top) for r in record["results"]]
  return common.finish_record(record, tables)


def main(argv=None):
  args = cli.parse_flags(FLAGS, argv, __doc__)
  cases = common.config_cases(args.cases)
  return run(cases, args.steps, args.top, args.output, argv)


if __name__ == "__main__":
  main()
