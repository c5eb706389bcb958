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
    ||g_patched - g_model|| / ||g_model|| over all gradients. For an
    optimizer patch, the same two of the updates (new weights - old) of one
    TorchAdam step from the same weights and gradients;
  * speed: ms per Trainer train step (tf.function) of a Trainer built and
    traced without the patch and one built and traced with it, runs
    interleaved (model, patched, model, ...) so that a shared machine's load
    hits both alike; medians. "speedup" is the optimisation's: time without it
    / time with it (patched / model for a reference, model / patched for a
    proposal).

Variants: see bench/patches.py (`--variants` lists them).
"""

import contextlib
import gc
import sys

import keras
import numpy as np
import tensorflow as tf

from bench import common
from bench import patches
from hvrnn_tf.model.vrnn import HierarchicalVRNN
from hvrnn_tf.training import schedules


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

  with patches.patch(keras.layers.Conv2D, "call", call):
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


def loss_and_gradients(model, video, seed):
  with tf.GradientTape() as tape:
    loss = model.elbo(video, seed, 1.0).loss
  return loss, tape.gradient(loss, model.trainable_variables)


def _relative_diffs(variables, model, patched) -> dict:
  """Largest per-variable max|b - a| / max|a| (and where), and the global one."""
  relative, squared_diff, squared = [], 0.0, 0.0
  for var, a, b in zip(variables, model, patched):
    scale = float(tf.reduce_max(tf.abs(a)))
    diff = float(tf.reduce_max(tf.abs(a - b)))
    relative.append((diff / scale if scale > 0 else diff, var.path, scale))
    squared_diff += float(tf.reduce_sum(tf.square(a - b)))
    squared += float(tf.reduce_sum(tf.square(a)))
  worst = max(relative)
  return {
    "max": worst[0],
    "worst_variable": {"path": worst[1], "max_abs": worst[2]},
    "global": (squared_diff / squared) ** 0.5 if squared else 0.0,
  }


def compare_numerics(model, video, variant) -> dict:
  """Loss and gradients of one ELBO, model vs patched (fresh traces of each)."""
  seed = tf.constant([5, 6])
  model_fn = tf.function(lambda v: loss_and_gradients(model, v, seed))
  patched_fn = tf.function(lambda v: loss_and_gradients(model, v, seed))
  plain = model_fn(video)
  with patches.VARIANTS[variant]():
    patched = patched_fn(video)
  diffs = _relative_diffs(model.trainable_variables, plain[1], patched[1])
  ops = ("StridedSliceGrad", "Unpack", "AddN", "Conv2D", "Conv2DBackpropFilter")
  result = {
    "loss_model": float(plain[0]),
    "loss_abs_diff": float(tf.abs(plain[0] - patched[0])),
    "max_gradient_relative_diff": diffs["max"],
    "worst_variable": diffs["worst_variable"],
    "global_gradient_relative_diff": diffs["global"],
    "graph_ops_model": patches.op_counts(
      model_fn.get_concrete_function(video), ops
    ),
    "graph_ops_patched": patches.op_counts(
      patched_fn.get_concrete_function(video), ops
    ),
  }
  if patches.NUMERICS[variant] == "update":
    result.update(_compare_update(model, plain[1], variant))
  return result


def _adam_update(variables, gradients, context) -> list:
  """new - old weights of one TorchAdam step on copies of `variables`."""
  copies = [tf.Variable(v) for v in variables]
  optimizer = schedules.torch_adam(1e-3, 1e-4)
  optimizer.build(copies)
  with context:
    tf.function(lambda: optimizer.apply_gradients(zip(gradients, copies)))()
  return [c - v for c, v in zip(copies, variables)]


def _compare_update(model, gradients, variant) -> dict:
  """One TorchAdam step from the same weights and gradients, model vs patched."""
  variables = model.trainable_variables
  updates = _adam_update(variables, gradients, contextlib.nullcontext())
  gc.collect()
  patched = _adam_update(variables, gradients, patches.VARIANTS[variant]())
  diffs = _relative_diffs(variables, updates, patched)
  return {
    "max_update_relative_diff": diffs["max"],
    "worst_update_variable": diffs["worst_variable"],
    "global_update_relative_diff": diffs["global"],
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
  reference = variant in patches.REFERENCE_OF
  result = {
    "config": name,
    "batch_size": batch,
    "variant": variant,
    "optimisation": patches.optimisation(variant),
    "role": "reference" if reference else "proposal",
    "load_at_start": common.load_average(),
  }
  trainer = common.make_trainer(config, batch)
  video = common.synthetic_video(config, batch)
  try:
    if patches.NUMERICS[variant]:
      result.update(compare_numerics(trainer.model, video, variant))
      gc.collect()  # drop the compared gradients before a second Trainer is built
    else:
      result["numerics"] = "not compared: the variant has other parameters"
    # A second Trainer built and traced under the patch (a Trainer's step
    # functions are traced once and cached, so the patch must be active then).
    with patches.VARIANTS[variant]():
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
      r.get("max_update_relative_diff"),
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
      "max rel. update diff",
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


def main(argv=None):
  parser = common.base_parser(__doc__.split("\n")[0], "optimizations")
  parser.add_argument(
    "--cases",
    default=DEFAULT_CASES,
    help="config:batch[:variant+variant...],... (no variants: --variants).",
  )
  parser.add_argument(
    "--variants",
    default=",".join(patches.VARIANTS),
    help=f"Comma list of {list(patches.VARIANTS)}; {list(patches.ALIASES)} name the "
    "reference patches of those optimisations.",
  )
  args = parser.parse_args(argv)
  variants = [patches.variant_named(v) for v in common.csv_list(args.variants)]
  cases = []
  for name, batch, named in common.config_cases(
    args.cases, "variant+variant...", optional=True
  ):
    chosen = (
      None
      if named is None
      else [patches.variant_named(v) for v in named.split("+")]
    )
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
