"""Early gradients: backward ops that need no output gradient, per config.

  python -m bench.early_gradients --cases=bair_h3:2

TensorFlow's executor runs an op as soon as its inputs exist. An op of the
backward pass that reads forward values only (x - mean in a GroupNorm
gradient, a transposed kernel, a copy of a recurrence's inputs) therefore
runs when the forward pass ends, not when the backward pass reaches it, and
its output is held until then: one tensor per call, all alive at the peak.
TensorFlow's own gradients guard against it with a control dependency on the
output gradient (tf.math.squared_difference's does); this bench lists the
ops that lack one (bench/README.md, finding 15). Those of the loss's own
terms are harmless: the backward pass starts there.
"""

import collections

import tensorflow as tf

from bench import common

MIB = 2**20
# A model case lists ops of this many output bytes and more.
MODEL_MIN_BYTES = MIB


def _ancestors(tensors) -> set:
  seen, stack = set(), [t.op for t in tensors]
  while stack:
    op = stack.pop()
    if op not in seen:
      seen.add(op)
      stack += [t.op for t in op.inputs] + list(op.control_inputs)
  return seen


# Ops whose outputs alias their inputs or live in the graph: no new memory.
_NO_ALLOCATION = frozenset(
  ["Const", "ExpandDims", "Identity", "IdentityN", "Reshape", "Squeeze"]
)


def _output_bytes(op) -> int:
  """Bytes op allocates for its outputs of static shape (others count 0)."""
  if op.type in _NO_ALLOCATION:
    return 0
  return sum(
    t.shape.num_elements() * t.dtype.size
    for t in op.outputs
    if t.shape.is_fully_defined() and t.dtype.size
  )


def early_backward_ops(loss_fn, args, variables=(), min_bytes: int = 1):
  """[(op, bytes)] of loss_fn's backward ops that need no output gradient.

  loss_fn(*args) -> a float32 scalar; the gradients are those with respect
  to the float tensors `args` and to `variables`. Backward ops: the
  gradients' ancestors that are not the loss's. Listed: those of them with
  no path from the output gradient and at least `min_bytes` of output of
  static shape; largest first.
  """

  @tf.function(autograph=False)
  def gradients(args, seed):
    with tf.GradientTape() as tape:
      tape.watch(args)
      loss = loss_fn(*args)
    grads = tape.gradient(loss, [args, list(variables)], output_gradients=seed)
    return loss, [g for g in tf.nest.flatten(grads) if g is not None]

  specs = [tf.TensorSpec.from_tensor(a) for a in args]
  graph = gradients.get_concrete_function(
    specs, tf.TensorSpec([], tf.float32)
  ).graph
  seeded = {graph.inputs[len(args)].op}
  for op in graph.get_operations():  # in creation order: inputs first
    if any(t.op in seeded for t in op.inputs) or any(
      c in seeded for c in op.control_inputs
    ):
      seeded.add(op)
  backward = _ancestors(graph.outputs[1:]) - _ancestors(graph.outputs[:1])
  early = [(op, _output_bytes(op)) for op in backward - seeded]
  return sorted(
    [(op, n) for op, n in early if n >= min_bytes], key=lambda e: -e[1]
  )


def _model_case(name: str, batch: int) -> list:
  """early_backward_ops of the named config's ELBO at `batch`."""
  config = common.model_config(name)
  model = common.make_trainer(config, batch).model
  noise = model.noise(tf.constant([0, 1]), batch, config.future_frames)
  return early_backward_ops(
    lambda video: tf.reduce_sum(
      model.elbo(video, beta=1.0, noise=noise).neg_elbo
    ),
    [common.synthetic_video(config, batch)],
    model.trainable_variables,
    min_bytes=MODEL_MIN_BYTES,
  )


def _scope(op) -> str:
  """The outermost name scope of op's forward counterpart, or "(top)"."""
  parts = op.name.split("/")
  parts = parts[1:] if parts[0] == "gradient_tape" else parts
  return parts[0] if len(parts) > 1 else "(top)"


def _table(early: list, top: int) -> tuple[str, list]:
  groups = collections.defaultdict(lambda: [0, 0])
  for op, n in early:
    group = groups[(op.type, _scope(op))]
    group[0] += 1
    group[1] += n
  rows = sorted(groups.items(), key=lambda g: -g[1][1])
  records = [
    {"op": k[0], "scope": k[1], "count": c, "mib": n / MIB}
    for k, (c, n) in rows
  ]
  table = common.markdown_table(
    ["op", "outermost scope", "ops", "MiB"],
    [[r["op"], r["scope"], r["count"], r["mib"]] for r in records[:top]],
  )
  return table, records


def main(argv=None):
  parser = common.base_parser(__doc__.split("\n")[0], "early_gradients")
  parser.add_argument("--cases", default="bair_h3:2", help="config:batch,...")
  parser.add_argument("--top", type=int, default=12, help="Rows per table.")
  args = parser.parse_args(argv)
  cases = common.config_cases(args.cases)
  record = common.start_record(
    "early_gradients", argv, {"cases": args.cases, "min_bytes": MODEL_MIN_BYTES}
  )
  record["output"] = args.output
  tables = []
  for name, batch in cases:
    table, groups = _table(_model_case(name, batch), args.top)
    total = sum(g["mib"] for g in groups)
    record["results"].append(
      {"config": name, "batch": batch, "total_mib": total, "groups": groups}
    )
    tables.append(f"{name} batch {batch}: {total:.1f} MiB early\n\n{table}")
    common.release_memory()
  return common.finish_record(record, tables)


if __name__ == "__main__":
  main()
