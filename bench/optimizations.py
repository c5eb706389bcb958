"""Candidate model optimisations, implemented here as patches, timed against the model.

  python -m bench.optimizations                    # ~6 min on 2 CPU cores
  python -m bench.optimizations --cases=bair_h3:1 --variants=convlstm_unstack,center_tap_1x1
  python -m bench.optimizations --cases=smmnist_quick:16:convlstm_unstack --repeats=5

The model is not edited: each variant patches it inside this process only
(a context manager that restores the original), so a proposal comes with
numbers before anyone changes hvrnn_tf. For each (config, batch, variant):
  * numerics: loss and every gradient of one ELBO (same weights, same seed)
    with and without the patch; max |loss diff|, the largest
    max|g_variant - g_plain| / max|g_plain| over variables (and which), and
    ||g_variant - g_plain|| / ||g_plain|| over all gradients;
  * speed: ms per Trainer train step (tf.function) of a Trainer built and
    traced without the patch and one built and traced with it, runs interleaved (plain, variant, plain, ...) so that a shared
    machine's load hits both alike; medians.

Variants:
  convlstm_unstack  ConvLSTM reads its precomputed input gates with one
                    tf.unstack over time instead of input_gates[:, t] per step.
                    Same arithmetic; the gradient of T strided slices is T
                    full-size StridedSliceGrad tensors summed by AddN (O(T^2)
                    memory traffic, the largest single op kind in
                    bench.op_profile), the gradient of unstack is one stack.
  center_tap_1x1    stride-1 SAME Conv2D layers applied to 1x1 maps (the 3x3
                    ConvLSTMs of the 1x1 latent level and decoder stage, the
                    decoder's 1x1 residual block) multiply only the kernel's
                    centre tap: the other taps only ever see zero padding.
                    Same arithmetic on the non-zero terms; the convolutions
                    and their gradients shrink 9x (the weights stay).
  kernel1_at_1x1    such layers are built with a 1x1 kernel instead: the same
                    function class with 8/9 fewer of those weights, so Adam
                    updates fewer too. Other parameters: timed, not compared.
Also reported per config: the parameters in such dead kernel taps.
"""

import contextlib
import gc
import sys

import keras
import numpy as np
import tensorflow as tf

from bench import common
from hvrnn_tf import layers
from hvrnn_tf.model import HierarchicalVRNN


def _convlstm_call_unstacked(self, inputs, state):
  """hvrnn_tf.layers.ConvLSTM.call with tf.unstack instead of per-step slices."""
  input_gates = layers.time_distributed(self.input_conv, inputs)
  h, c = state
  outputs = []
  for step_gates in tf.unstack(input_gates, num=inputs.shape[1], axis=1):
    gates = step_gates + self.hidden_conv(h)
    i, f, o, g = tf.split(gates, 4, axis=-1)
    c = tf.sigmoid(f + 1.0) * c + tf.sigmoid(i) * tf.tanh(g)
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
  return (tuple(input_shape[1:3]) == (1, 1) and layer.padding == "same"
          and tuple(layer.strides) == (1, 1) and tuple(layer.dilation_rate) == (1, 1)
          and tuple(layer.kernel_size) != (1, 1) and layer.groups == 1)


@contextlib.contextmanager
def _center_tap_1x1():
  """Conv2D on 1x1 inputs multiplies only the kernel's centre tap.

  On a 1x1 map with SAME padding, every other tap of a k x k kernel only ever
  sees the zero padding, so the output (and every gradient) is the same; the
  forward, backward-input and backward-filter convolutions shrink k^2 times.
  """
  original = keras.layers.Conv2D.call

  def call(self, inputs):
    if not _on_1x1_same(self, inputs.shape):
      return original(self, inputs)
    ky, kx = [(k - 1) // 2 for k in self.kernel_size]
    kernel = tf.cast(self.kernel[ky:ky + 1, kx:kx + 1], inputs.dtype)
    outputs = tf.nn.conv2d(inputs, kernel, 1, "VALID")
    if self.use_bias:
      outputs = tf.nn.bias_add(outputs, tf.cast(self.bias, outputs.dtype))
    return self.activation(outputs) if self.activation is not None else outputs

  with _patch(keras.layers.Conv2D, "call", call):
    yield


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
    if layer.padding != "same" or tuple(layer.strides) != (1, 1) or None in (height, width):
      continue
    live = 1
    for k, n in zip(layer.kernel_size, (height, width)):
      low = (k - 1) // 2
      live *= sum(1 for i in range(k) if abs(i - low) <= n - 1)
    dead += size - size * live // int(np.prod(layer.kernel_size))
  params = common.num_parameters(model.trainable_variables)
  return {"dead_kernel_parameters": dead, "conv2d_kernel_parameters": total,
          "parameters": params, "dead_fraction_of_parameters": dead / params}


VARIANTS = {
    "convlstm_unstack": lambda: _patch(layers.ConvLSTM, "call", _convlstm_call_unstacked),
    "center_tap_1x1": _center_tap_1x1,
    "kernel1_at_1x1": _kernel1_at_1x1,
}
EXACT = {"convlstm_unstack": True, "center_tap_1x1": True, "kernel1_at_1x1": False}


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
  """Loss and gradients of one ELBO, plain vs patched (fresh traces of each)."""
  seed = tf.constant([5, 6])
  plain_fn = tf.function(lambda v: loss_and_gradients(model, v, seed))
  patched_fn = tf.function(lambda v: loss_and_gradients(model, v, seed))
  plain = plain_fn(video)
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
  ops = ("StridedSliceGrad", "Unpack", "AddN")
  return {"loss_plain": float(plain[0]), "loss_abs_diff": float(tf.abs(plain[0] - patched[0])),
          # max over variables of max|g_variant - g_plain| / max|g_plain|
          "max_gradient_relative_diff": worst[0],
          "worst_variable": {"path": worst[1], "max_abs_gradient": worst[2]},
          # ||g_variant - g_plain|| / ||g_plain|| over all gradients
          "global_gradient_relative_diff": (squared_diff / squared) ** 0.5 if squared else 0.0,
          "graph_ops_plain": _op_counts(plain_fn.get_concrete_function(video), ops),
          "graph_ops_variant": _op_counts(patched_fn.get_concrete_function(video), ops)}


def time_interleaved(plain, patched, warmup: int, repeats: int) -> dict:
  import statistics  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  first = {}
  for name, fn in (("plain", plain), ("variant", patched)):
    for i in range(max(warmup, 1)):
      start = time.perf_counter()
      common.sync(fn())
      if i == 0:
        first[name] = time.perf_counter() - start
  runs = {"plain": [], "variant": []}
  for _ in range(repeats):
    for name, fn in (("plain", plain), ("variant", patched)):
      start = time.perf_counter()
      common.sync(fn())
      runs[name].append(time.perf_counter() - start)
  return {name: {"median_s": statistics.median(r), "min_s": min(r), "runs_s": r,
                 "first_s": first[name]} for name, r in runs.items()}


def run_case(name: str, batch: int, variant: str, warmup: int, repeats: int) -> dict:
  config = common.model_config(name)
  result = {"config": name, "batch_size": batch, "variant": variant,
            "load_at_start": common.load_average()}
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
    timing = time_interleaved(lambda: trainer.train_step(video)[0]["loss"],
                              lambda: patched.train_step(video)[0]["loss"], warmup, repeats)
    result["parameters_plain"] = common.num_parameters(trainer.model.trainable_variables)
    result["parameters_variant"] = common.num_parameters(patched.model.trainable_variables)
    del patched
    result.update(
        status="ok", timing=timing,
        ms_per_step_plain=1e3 * timing["plain"]["median_s"],
        ms_per_step_variant=1e3 * timing["variant"]["median_s"],
        speedup=timing["plain"]["median_s"] / timing["variant"]["median_s"],
        speedup_of_minima=timing["plain"]["min_s"] / timing["variant"]["min_s"])
  except Exception as e:  # pylint: disable=broad-except
    result.update(status="failed", error=common.error_text(e))
  del trainer
  common.release_memory()
  return result


DEFAULT_CASES = ("smmnist_quick:8:convlstm_unstack+center_tap_1x1,"
                 "bair_h1_d1:1:center_tap_1x1+kernel1_at_1x1")


def run(cases, variants, warmup, repeats, output, argv=None):
  record = common.start_record("optimizations", argv, {
      "cases": [list(c) for c in cases], "variants": variants, "warmup": warmup,
      "repeats": repeats})
  record["output"] = output
  for name, batch, case_variants in cases:
    config = common.model_config(name)
    if name not in record.get("dead_weights", {}):
      model = HierarchicalVRNN(config)
      model.initialize()
      record.setdefault("dead_weights", {})[name] = dead_kernel_parameters(model, config)
      del model
      common.release_memory()
    for variant in case_variants or variants:
      print(f"[optimizations] {name} batch {batch}: {variant}", flush=True)
      record["results"].append(run_case(name, batch, variant, warmup, repeats))
      common.write_partial(record)
    record.setdefault("configs", {})[name] = common.config_record(name, config)
  rows = [[r["config"], r["batch_size"], r["variant"], r.get("ms_per_step_plain"),
           r.get("ms_per_step_variant"), r.get("speedup"), r.get("speedup_of_minima"),
           r.get("loss_abs_diff"), r.get("max_gradient_relative_diff"),
           r.get("global_gradient_relative_diff"),
           r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('error', '')[:100]}"]
          for r in record["results"]]
  table = common.markdown_table(
      ["config", "batch", "variant", "plain ms/step", "variant ms/step", "speed-up",
       "speed-up (minima)", "abs loss diff", "max rel. grad diff (worst variable)",
       "global rel. grad diff", "status"], rows)
  rows = [[name, d["parameters"] / 1e6, d["dead_kernel_parameters"] / 1e6,
           d["dead_fraction_of_parameters"]] for name, d in record.get("dead_weights", {}).items()]
  dead = common.markdown_table(
      ["config", "params (M)", "dead kernel taps (M params)", "fraction of params"], rows)
  return common.finish_record(record, [table, dead])


def main(argv=None):
  parser = common.base_parser(__doc__.split("\n")[0], "optimizations")
  parser.add_argument("--cases", default=DEFAULT_CASES,
                      help="config:batch[:variant+variant...],... (no variants: --variants).")
  parser.add_argument("--variants", default=",".join(VARIANTS), help=f"Comma list of {list(VARIANTS)}.")
  args = parser.parse_args(argv)
  variants = common.csv_list(args.variants)
  cases = []
  for item in common.csv_list(args.cases):
    name, batch, *rest = item.split(":")
    common.model_config(name)
    cases.append((name, int(batch), rest[0].split("+") if rest else None))
  for v in variants + [v for c in cases for v in (c[2] or [])]:
    if v not in VARIANTS:
      raise ValueError(f"Unknown variant {v!r}; known: {list(VARIANTS)}")
  return run(cases, variants, args.warmup, args.repeats, args.output,
             argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
  main()
