"""What a traced function's graph holds: op counts, early backward ops.

TensorFlow's executor runs an op as soon as its inputs exist. An op of the
backward pass that reads forward values only (x - mean in a GroupNorm
gradient, a transposed kernel, a copy of a recurrence's inputs) therefore
runs when the forward pass ends, not when the backward pass reaches it, and
its output is held until then: one tensor per call, all alive at the peak.
TensorFlow's own gradients guard against it with a control dependency on the
output gradient (tf.math.squared_difference's does); early_backward_ops
lists the ops that lack one (bench.early_gradients per model).
"""

import collections

import tensorflow as tf

# Ops whose outputs alias their inputs or live in the graph: no new memory.
_NO_ALLOCATION = frozenset(
  ["Const", "ExpandDims", "Identity", "IdentityN", "Reshape", "Squeeze"]
)


def graph_nodes(concrete) -> list:
  """The NodeDefs of a concrete function's graph and of its functions."""
  graph = concrete.graph.as_graph_def()
  nodes = list(graph.node)
  for function in graph.library.function:
    nodes += function.node_def
  return nodes


def op_counts(concrete, op_types) -> dict:
  """How many ops of each of `op_types` a concrete function's graph holds."""
  counts = collections.Counter(n.op for n in graph_nodes(concrete))
  return {t: counts[t] for t in op_types}


def _ancestors(tensors) -> set:
  seen, stack = set(), [t.op for t in tensors]
  while stack:
    op = stack.pop()
    if op not in seen:
      seen.add(op)
      stack += [t.op for t in op.inputs] + list(op.control_inputs)
  return seen


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
