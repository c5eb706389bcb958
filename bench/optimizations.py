"""Model optimisations timed against the code paths they replace, as in-process patches.

  python -m bench.optimizations                    # ~6 min on 2 CPU cores
  python -m bench.optimizations --cases=bair_h3:1 --variants=slice_per_step,full_kernel_1x1
  python -m bench.optimizations --cases=smmnist_quick:16:slice_per_step --repeats=5

Each variant patches the model inside this process only (a context manager
that restores the original). A *reference* patch puts back the code path that
an optimisation now applied in hvrnn_tf replaced, so the optimisation keeps
its numbers; a *proposal* patch applies a candidate not (yet) in the model.
For each (config, batch, variant), "model" is hvrnn_tf as it is, "patched"
the model under the patch:
  * numerics: loss and every gradient of one ELBO (same weights, same seed)
    with and without the patch; max |loss diff|, the largest
    max|g_patched - g_model| / max|g_model| over variables (and which), and
    ||g_patched - g_model|| / ||g_model|| over all gradients;
  * speed: ms per Trainer train step (tf.function) of a Trainer built and
    traced without the patch and one built and traced with it, runs
    interleaved (model, patched, model, ...) so that a shared machine's load
    hits both alike; medians. "speedup" is the optimisation's: time without it
    / time with it (patched / model for a reference, model / patched for a
    proposal).

Variants:
  slice_per_step    reference of convlstm_unstack (in the model:
                    hvrnn_tf.convlstm.ConvLSTM.call, plain and normalized,
                    reads its precomputed input gates with one tf.unstack over
                    time): puts back input_gates[:, t] per step. Same
                    arithmetic; the gradient of T strided slices is T
                    full-size StridedSliceGrad tensors summed by AddN (O(T^2)
                    memory traffic, the largest single op kind in
                    bench.op_profile before the change), that of unstack one stack.
  full_kernel_1x1   reference of center_tap_1x1 (in the model: hvrnn_tf.layers.Conv2D,
                    used by the ConvLSTMs, ResBlocks and DcConvs, convolves 1x1
                    maps with the kernel's centre tap only, since with stride 1
                    and SAME padding the other taps only ever see zeros): puts
                    back keras.layers.Conv2D's full-kernel convolution. Same
                    arithmetic on the non-zero terms; the convolutions and
                    their gradients are k^2 (9) times larger (the weights are
                    the same).
  kernel1_at_1x1    proposal: such layers are built with a 1x1 kernel instead:
                    the same function class with 8/9 fewer of those weights, so
                    Adam updates fewer too; timed against the model, which
                    already skips their convolution. Other parameters and
                    initial values: timed, not compared.
Also reported per config: the parameters in such dead kernel taps (the
weights of the centre-tap layers still hold them; their gradient is zero).
"""

import contextlib
import gc
import sys

import keras
import numpy as np
import tensorflow as tf

from bench import common
from hvrnn_tf import convlstm
from hvrnn_tf import layers
from hvrnn_tf.model import HierarchicalVRNN


def _convlstm_call_sliced(self, inputs, state):
  """hvrnn_tf.convlstm.ConvLSTM.call with the old time indexing: input_gates[:, t] per step.

  Otherwise the model's call (plain and normalized=True: GroupNorms on the
  input gates, the hidden gates and the new cell; no forget-gate bias), so
  the two must give the same loss and gradients.
  """
  input_gates = layers.time_distributed(self._input_gates, inputs)
  h, c = state
  outputs = []
  for t in range(inputs.shape[1]):
    step_gates = input_gates[:, t]
    gates = step_gates + tf.cast(self._hidden_gates(h), step_gates.dtype)
    i, f, o, g = tf.split(gates, 4, axis=-1)
    c = tf.sigmoid(f) * tf.cast(c, gates.dtype) + tf.sigmoid(i) * tf.tanh(g)
    if self.normalized:
      c = self.cell_norm(c)
    h = tf.sigmoid(o) * tf.tanh(c)
    outputs.append(h)
  return tf.stack(outputs, axis=1), (h, c)


@contextlib.contextmanager
def _patch(owner, name, replacement):
  had_own = name in owner.__dict__
  original = owner.__dict__.get(name)
  setattr(owner, name, replacement)
  try:
    yield
  finally:
    if had_own:
      setattr(owner, name, original)
    else:
      delattr(owner, name)


def _on_1x1_same(layer, input_shape) -> bool:
  """A stride-1 SAME Conv2D with a k > 1 kernel applied to 1x1 feature maps."""
  return (
    tuple(input_shape[1:3]) == (1, 1)
    and layer.padding == "same"
    and tuple(layer.strides) == (1, 1)
    and tuple(layer.dilation_rate) == (1, 1)
    and tuple(layer.kernel_size) != (1, 1)
    and layer.groups == 1
  )


def _full_kernel_1x1():
  """hvrnn_tf.layers.Conv2D convolves 1x1 maps with the whole kernel again.

  The plain keras.layers.Conv2D path: the k^2 - 1 taps that see only the
  SAME padding are multiplied too (same output, zero gradient for them).
  """
  return _patch(
    layers.Conv2D, "convolution_op", keras.layers.Conv2D.convolution_op
  )


@contextlib.contextmanager
def _kernel1_at_1x1():
  """Conv2D layers first built on 1x1 inputs get a 1x1 kernel (fewer weights).

  The same function class as the centre tap of the k x k kernel (the other
  taps are dead, see dead_kernel_parameters), but other parameters and other
  initial values: speed and size only, no numerics comparison.
  """
  original = keras.layers.Conv2D.build

  def build(self, input_shape):
    if _on_1x1_same(self, input_shape):
      self.kernel_size = (1, 1)
    return original(self, input_shape)

  with _patch(keras.layers.Conv2D, "build", build):
    yield


def dead_kernel_parameters(model, config) -> dict:
  """Weights of stride-1 SAME Conv2D kernels that only ever multiply padding.

  One eager ELBO records every Conv2D's input size; a tap at offset d from
  the kernel's centre is live on an n-pixel axis iff |d| <= n - 1.
  """
  seen = {}
  original = keras.layers.Conv2D.call

  def call(self, inputs):
    seen.setdefault(id(self), (self, tuple(inputs.shape[1:3])))
    return original(self, inputs)

  with _patch(keras.layers.Conv2D, "call", call):
    model.elbo(common.synthetic_video(config, 1), tf.constant([0, 0]))
  dead = total = 0
  for layer, (height, width) in seen.values():
    size = int(np.prod(layer.kernel.shape))
    total += size
    if (
      layer.padding != "same"
      or tuple(layer.strides) != (1, 1)
      or None in (height, width)
    ):
      continue
    live = 1
    for k, n in zip(layer.kernel_size, (height, width)):
      low = (k - 1) // 2
      live *= sum(1 for i in range(k) if abs(i - low) <= n - 1)
    dead += size - size * live // int(np.prod(layer.kernel_size))
  params = common.num_parameters(model.trainable_variables)
  return {
    "dead_kernel_parameters": dead,
    "conv2d_kernel_parameters": total,
    "parameters": params,
    "dead_fraction_of_parameters": dead / params,
  }


VARIANTS = {
  "slice_per_step": lambda: _patch(
    convlstm.ConvLSTM, "call", _convlstm_call_sliced
  ),
  "full_kernel_1x1": _full_kernel_1x1,
  "kernel1_at_1x1": _kernel1_at_1x1,
}
EXACT = {
  "slice_per_step": True,
  "full_kernel_1x1": True,
  "kernel1_at_1x1": False,
}
# Reference patches: the optimisation (applied in the model) whose old path each restores.
REFERENCE_OF = {
  "slice_per_step": "convlstm_unstack",
  "full_kernel_1x1": "center_tap_1x1",
}
# Old names (the optimisations, measured as patches before they were applied) still work.
ALIASES = {
  optimisation: variant for variant, optimisation in REFERENCE_OF.items()
}


def optimisation(variant: str) -> str:
  return REFERENCE_OF.get(variant, variant)


def loss_and_gradients(model, video, seed):
  with tf.GradientTape() as tape:
    loss = model.elbo(video, seed, 1.0).loss
  return loss, tape.gradient(loss, model.trainable_variables)


def _op_counts(concrete, op_types) -> dict:
  import collections  # pylint: disable=g-import-not-at-top

  graph = concrete.graph.as_graph_def()
  counts = collections.Counter(n.op for n in graph.node)
  for function in graph.library.function:
    counts.update(n.op for n in function.node_def)
  return {t: counts[t] for t in op_types}


def compare_numerics(model, video, variant) -> dict:
  """Loss and gradients of one ELBO, model vs patched (fresh traces of each)."""
  seed = tf.constant([5, 6])
  model_fn = tf.function(lambda v: loss_and_gradients(model, v, seed))
  patched_fn = tf.function(lambda v: loss_and_gradients(model, v, seed))
  plain = model_fn(video)
  with VARIANTS[variant]():
    patched = patched_fn(video)
  relative, squared_diff, squared = [], 0.0, 0.0
  for var, a, b in zip(model.trainable_variables, plain[1], patched[1]):
    scale = float(tf.reduce_max(tf.abs(a)))
    diff = float(tf.reduce_max(tf.abs(a - b)))
    relative.append((diff / scale if scale > 0 else diff, var.path, scale))
    squared_diff += float(tf.reduce_sum(tf.square(a - b)))
    squared += float(tf.reduce_sum(tf.square(a)))
  worst = max(relative)
  ops = ("StridedSliceGrad", "Unpack", "AddN", "Conv2D", "Conv2DBackpropFilter")
  return {
    "loss_model": float(plain[0]),
    "loss_abs_diff": float(tf.abs(plain[0] - patched[0])),
    # max over variables of max|g_patched - g_model| / max|g_model|
    "max_gradient_relative_diff": worst[0],
    "worst_variable": {"path": worst[1], "max_abs_gradient": worst[2]},
    # ||g_patched - g_model|| / ||g_model|| over all gradients
    "global_gradient_relative_diff": (squared_diff / squared) ** 0.5
    if squared
    else 0.0,
    "graph_ops_model": _op_counts(model_fn.get_concrete_function(video), ops),
    "graph_ops_patched": _op_counts(
      patched_fn.get_concrete_function(video), ops
    ),
  }


def time_interleaved(model, patched, warmup: int, repeats: int) -> dict:
  import statistics  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top

  first = {}
  for name, fn in (("model", model), ("patched", patched)):
    for i in range(max(warmup, 1)):
      start = time.perf_counter()
      common.sync(fn())
      if i == 0:
        first[name] = time.perf_counter() - start
  runs = {"model": [], "patched": []}
  for _ in range(repeats):
    for name, fn in (("model", model), ("patched", patched)):
      start = time.perf_counter()
      common.sync(fn())
      runs[name].append(time.perf_counter() - start)
  return {
    name: {
      "median_s": statistics.median(r),
      "min_s": min(r),
      "runs_s": r,
      "first_s": first[name],
    }
    for name, r in runs.items()
  }


def run_case(
  name: str, batch: int, variant: str, warmup: int, repeats: int
) -> dict:
  config = common.model_config(name)
  reference = variant in REFERENCE_OF
  result = {
    "config": name,
    "batch_size": batch,
    "variant": variant,
    "optimisation": optimisation(variant),
    "role": "reference" if reference else "proposal",
    "load_at_start": common.load_average(),
  }
  trainer = common.make_trainer(config, batch)
  video = common.synthetic_video(config, batch)
  try:
    if EXACT[variant]:
      result.update(compare_numerics(trainer.model, video, variant))
      gc.collect()  # drop the compared gradients before a second Trainer is built
    else:
      result["numerics"] = "not compared: the variant has other parameters"
    # A second Trainer built and traced under the patch (a Trainer's step
    # functions are traced once and cached, so the patch must be active then).
    with VARIANTS[variant]():
      patched = common.make_trainer(config, batch)
      common.sync(patched.train_step(video)[0]["loss"])
    timing = time_interleaved(
      lambda: trainer.train_step(video)[0]["loss"],
      lambda: patched.train_step(video)[0]["loss"],
      warmup,
      repeats,
    )
    result["parameters_model"] = common.num_parameters(
      trainer.model.trainable_variables
    )
    result["parameters_patched"] = common.num_parameters(
      patched.model.trainable_variables
    )
    patched = None  # frees its variables before the next case
    # The optimisation's speed-up: time without it / time with it.
    without, with_ = ("patched", "model") if reference else ("model", "patched")
    result.update(
      status="ok",
      timing=timing,
      ms_per_step_model=1e3 * timing["model"]["median_s"],
      ms_per_step_patched=1e3 * timing["patched"]["median_s"],
      ms_per_step_without=1e3 * timing[without]["median_s"],
      ms_per_step_with=1e3 * timing[with_]["median_s"],
      speedup=timing[without]["median_s"] / timing[with_]["median_s"],
      speedup_of_minima=timing[without]["min_s"] / timing[with_]["min_s"],
    )
  except Exception as e:  # pylint: disable=broad-except
    result.update(status="failed", error=common.error_text(e))
  trainer = None
  common.release_memory()
  return result


DEFAULT_CASES = (
  "smmnist_quick:8:slice_per_step+full_kernel_1x1,"
  "bair_h1_d1:1:full_kernel_1x1+kernel1_at_1x1"
)


def run(cases, variants, warmup, repeats, output, argv=None):
  record = common.start_record(
    "optimizations",
    argv,
    {
      "cases": [list(c) for c in cases],
      "variants": variants,
      "warmup": warmup,
      "repeats": repeats,
    },
  )
  record["output"] = output
  for name, batch, case_variants in cases:
    config = common.model_config(name)
    if name not in record.get("dead_weights", {}):
      model = HierarchicalVRNN(config)
      model.initialize()
      record.setdefault("dead_weights", {})[name] = dead_kernel_parameters(
        model, config
      )
      del model
      common.release_memory()
    for variant in case_variants or variants:
      print(f"[optimizations] {name} batch {batch}: {variant}", flush=True)
      record["results"].append(run_case(name, batch, variant, warmup, repeats))
      common.write_partial(record)
    record.setdefault("configs", {})[name] = common.config_record(name, config)
  rows = [
    [
      r["config"],
      r["batch_size"],
      r["optimisation"],
      "yes" if r["role"] == "reference" else "no (proposal)",
      r["variant"],
      r.get("ms_per_step_without"),
      r.get("ms_per_step_with"),
      r.get("speedup"),
      r.get("speedup_of_minima"),
      r.get("loss_abs_diff"),
      r.get("max_gradient_relative_diff"),
      r.get("global_gradient_relative_diff"),
      r["status"]
      if r["status"] == "ok"
      else f"{r['status']}: {r.get('error', '')[:100]}",
    ]
    for r in record["results"]
  ]
  table = common.markdown_table(
    [
      "config",
      "batch",
      "optimisation",
      "in model",
      "patch",
      "ms/step without",
      "ms/step with",
      "speed-up",
      "speed-up (minima)",
      "abs loss diff",
      "max rel. grad diff (worst variable)",
      "global rel. grad diff",
      "status",
    ],
    rows,
  )
  rows = [
    [
      name,
      d["parameters"] / 1e6,
      d["dead_kernel_parameters"] / 1e6,
      d["dead_fraction_of_parameters"],
    ]
    for name, d in record.get("dead_weights", {}).items()
  ]
  dead = common.markdown_table(
    [
      "config",
      "params (M)",
      "dead kernel taps (M params)",
      "fraction of params",
    ],
    rows,
  )
  return common.finish_record(record, [table, dead])


def _variant(name: str) -> str:
  name = ALIASES.get(name, name)
  if name not in VARIANTS:
    raise ValueError(
      f"Unknown variant {name!r}; known: {list(VARIANTS)} "
      f"(or the optimisations {list(ALIASES)}, meaning their reference patches)"
    )
  return name


def main(argv=None):
  parser = common.base_parser(__doc__.split("\n")[0], "optimizations")
  parser.add_argument(
    "--cases",
    default=DEFAULT_CASES,
    help="config:batch[:variant+variant...],... (no variants: --variants).",
  )
  parser.add_argument(
    "--variants",
    default=",".join(VARIANTS),
    help=f"Comma list of {list(VARIANTS)}; {list(ALIASES)} name the "
    "reference patches of those optimisations.",
  )
  args = parser.parse_args(argv)
  variants = [_variant(v) for v in common.csv_list(args.variants)]
  cases = []
  for name, batch, named in common.config_cases(
    args.cases, "variant+variant...", optional=True
  ):
    chosen = None if named is None else [_variant(v) for v in named.split("+")]
    cases.append((name, batch, chosen))
  return run(
    cases,
    variants,
    args.warmup,
    args.repeats,
    args.output,
    argv if argv is not None else sys.argv[1:],
  )


if __name__ == "__main__":
  main()
