"""The model's switchable speed paths, timed against the paths they replace.

  python -m bench.optimizations
  python -m bench.optimizations --cases=bair_h3:1:group_norm_xla_gradient
  python -m bench.optimizations --cases=smmnist_quick:16 --repeats=5

Each optimisation is a ModelConfig option (hvrnn_tf/ops/speed_paths.py):
OPTIMISATIONS maps its name to the settings that turn it off. For each
(config, batch, optimisation), "with" is the config as it is and "without"
the config with those settings:
  * numerics: loss and every gradient of one ELBO from the same weights and
    seed, with and without; max |loss diff|, the largest
    max|g_without - g_with| / max|g_with| over variables (and which), and
    ||g_without - g_with|| / ||g_with|| over all gradients;
  * speed: ms per Trainer train step (tf.function) of a Trainer built with
    each config, runs interleaved (with, without, with, ...) so that a shared
    machine's load hits both alike; medians. "speedup": time without / time
    with.
"""

import dataclasses
import gc
import statistics
import time

from absl import flags
import tensorflow as tf

from bench import cli
from bench import common
from hvrnn_tf.ops import speed_paths
from hvrnn_tf.testing import graphs

# Optimisation: the ModelConfig settings that turn it off.
OPTIMISATIONS = {
  "patch_matmul": {"patch_matmul_max_rows": speed_paths.CONVOLUTIONS_ONLY},
  "group_norm_xla_gradient": {"group_norm_xla_gradient": False},
}
DEFAULT_CASES = "smmnist_quick:8"
GRAPH_OPS = ("Conv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput", "MatMul")

FLAGS = cli.define_flags("optimizations")
flags.DEFINE_string(
  "cases",
  DEFAULT_CASES,
  "config:batch[:optimisation+optimisation...],... (none named: "
  "--optimisations).",
  flag_values=FLAGS,
)
flags.DEFINE_list(
  "optimisations",
  list(OPTIMISATIONS),
  f"Of {list(OPTIMISATIONS)}.",
  flag_values=FLAGS,
)


def loss_and_gradients(model, video, seed):
  with tf.GradientTape() as tape:
    loss = model.elbo(video, seed, 1.0).loss
  return loss, tape.gradient(loss, model.trainable_variables)


def _relative_diffs(variables, with_, without) -> dict:
  """Largest per-variable max|b - a| / max|a| (and where), and the global one."""
  relative, squared_diff, squared = [], 0.0, 0.0
  for var, a, b in zip(variables, with_, without):
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


def compare_numerics(with_, without, video) -> dict:
  """Loss and gradients of one ELBO of two models, `without` given the
  weights of `with_`."""
  for target, source in zip(without.weights, with_.weights):
    target.assign(source)
  seed = tf.constant([5, 6])
  fns = [
    tf.function(lambda v, m=model: loss_and_gradients(m, v, seed))
    for model in (with_, without)
  ]
  (loss_a, grads_a), (loss_b, grads_b) = [fn(video) for fn in fns]
  diffs = _relative_diffs(with_.trainable_variables, grads_a, grads_b)
  ops_with, ops_without = [
    graphs.op_counts(fn.get_concrete_function(video), GRAPH_OPS) for fn in fns
  ]
  return {
    "loss": float(loss_a),
    "loss_abs_diff": float(tf.abs(loss_a - loss_b)),
    "max_gradient_relative_diff": diffs["max"],
    "worst_variable": diffs["worst_variable"],
    "global_gradient_relative_diff": diffs["global"],
    "graph_ops_with": ops_with,
    "graph_ops_without": ops_without,
  }


def time_interleaved(steps: dict, warmup: int, repeats: int) -> dict:
  """{name: timing} of the callables `steps`, their timed runs interleaved."""
  first = {}
  for name, fn in steps.items():
    for i in range(max(warmup, 1)):
      start = time.perf_counter()
      common.sync(fn())
      if i == 0:
        first[name] = time.perf_counter() - start
  runs = {name: [] for name in steps}
  for _ in range(repeats):
    for name, fn in steps.items():
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
  name: str, batch: int, optimisation: str, warmup: int, repeats: int
) -> dict:
  # "with": the speed paths bound explicitly, since the config's default is
  # by device (the plain ops on a GPU, where "with" would equal "without").
  config = dataclasses.replace(
    common.model_config(name), **dataclasses.asdict(speed_paths.DEFAULT)
  )
  settings = OPTIMISATIONS[optimisation]
  result = {
    "config": name,
    "batch_size": batch,
    "optimisation": optimisation,
    "settings_without": settings,
    "load_at_start": common.load_average(),
  }
  trainers = {
    "with": common.make_trainer(config, batch),
    "without": common.make_trainer(
      dataclasses.replace(config, **settings), batch
    ),
  }
  video = common.synthetic_video(config, batch)
  try:
    result.update(
      compare_numerics(trainers["with"].model, trainers["without"].model, video)
    )
    gc.collect()  # drop the compared gradients before timing
    timing = time_interleaved(
      {
        k: (lambda t=t: t.train_step(video)[0]["loss"])
        for k, t in trainers.items()
      },
      warmup,
      repeats,
    )
    result.update(
      status="ok",
      timing=timing,
      ms_per_step_with=1e3 * timing["with"]["median_s"],
      ms_per_step_without=1e3 * timing["without"]["median_s"],
      speedup=timing["without"]["median_s"] / timing["with"]["median_s"],
      speedup_of_minima=timing["without"]["min_s"] / timing["with"]["min_s"],
    )
  except Exception as e:  # pylint: disable=broad-except
    result.update(status="failed", error=common.error_text(e))
  trainers = None
  common.release_memory()
  return result


def _table(results: list) -> str:
  rows = [
    [
      r["config"],
      r["batch_size"],
      r["optimisation"],
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
    for r in results
  ]
  return common.markdown_table(
    [
      "config",
      "batch",
      "optimisation",
      "ms/step without",
      "ms/step with",
      "speed-up",
      "speed-up (minima)",
      "abs loss diff",
      "max rel. grad diff",
      "global rel. grad diff",
      "status",
    ],
    rows,
  )


def run(cases, optimisations, warmup, repeats, output, argv=None):
  """cases: [(config, batch, [optimisation, ...] or None: `optimisations`)]."""
  record = common.start_record(
    "optimizations",
    argv,
    {
      "cases": [list(c) for c in cases],
      "optimisations": optimisations,
      "warmup": warmup,
      "repeats": repeats,
    },
  )
  record["output"] = output
  for name, batch, named in cases:
    for optimisation in named or optimisations:
      print(f"[optimizations] {name} batch {batch}: {optimisation}", flush=True)
      record["results"].append(
        run_case(name, batch, optimisation, warmup, repeats)
      )
      common.write_partial(record)
    record.setdefault("configs", {})[name] = common.config_record(
      name, common.model_config(name)
    )
  return common.finish_record(record, [_table(record["results"])])


def _known(names) -> list:
  unknown = sorted(set(names) - set(OPTIMISATIONS))
  if unknown:
    raise ValueError(
      f"Unknown optimisations {unknown}; known: {list(OPTIMISATIONS)}"
    )
  return list(names)


def main(argv=None):
  args = cli.parse_flags(FLAGS, argv, __doc__)
  cases = [
    (name, batch, named and _known(named.split("+")))
    for name, batch, named in common.config_cases(
      args.cases, "optimisation+optimisation...", optional=True
    )
  ]
  return run(
    cases,
    _known(args.optimisations),
    args.warmup,
    args.repeats,
    args.output,
    argv,
  )


if __name__ == "__main__":
  main()
