"""Train-step throughput: sequences/s and ms/step per config, batch and execution mode.

  python -m bench.train_step                      # default cases, ~3-4 min on 2 CPU cores
  python -m bench.train_step --configs=bair_h3 --modes=function --batch_size=2
  python -m bench.train_step --cases=smmnist_quick:16:xla,bair_h1:1:function

Modes (one optimisation step of `hvrnn_tf.training.trainer.Trainer` on a synthetic batch):
  eager           Trainer.train_step under tf.config.run_functions_eagerly(True)
  function        Trainer.train_step, a tf.function (what training uses)
  xla             Trainer(jit_compile=True).train_step (the replica step XLA-compiled)
  mixed_bf16      Trainer(precision="mixed_bfloat16"), tf.function
  mixed_bf16_xla  both
Reported: median seconds per step over --repeats calls after --warmup calls
(the first call, with tracing/compilation, is reported as first_s).
eager and function share one Trainer; the other modes build their own.
"""

import math
import time

from absl import flags
import tensorflow as tf

from bench import cli
from bench import common

MODES = ("eager", "function", "xla", "mixed_bf16", "mixed_bf16_xla")
DEFAULT_CASES = (
  "smmnist_quick:8:eager,smmnist_quick:8:function,smmnist_quick:8:xla,"
  "smmnist_quick:8:mixed_bf16,bair_h1_d1:1:function"
)

FLAGS = cli.define_flags("train_step")
flags.DEFINE_string(
  "cases",
  DEFAULT_CASES,
  "config:batch:mode,... (ignored when --configs/--modes/--batch_size are "
  "given).",
  flag_values=FLAGS,
)
flags.DEFINE_string(
  "configs", None, f"Comma list of {sorted(common.CONFIGS)}.", flag_values=FLAGS
)
flags.DEFINE_string("modes", None, f"Comma list of {MODES}.", flag_values=FLAGS)
flags.DEFINE_integer(
  "batch_size",
  None,
  "Batch for every config (default: per config, 8 for smmnist_quick, 1 for "
  "BAIR).",
  flag_values=FLAGS,
)


def parse_cases(args) -> list:
  """[(config, batch, mode)] from --cases or from --configs x --modes."""
  if args.configs or args.modes or args.batch_size:
    configs = cli.csv_list(args.configs or "smmnist_quick")
    modes = cli.csv_list(args.modes or "function")
    cases = [
      (c, args.batch_size or common.default_batch_size(c), m)
      for c in configs
      for m in modes
    ]
  else:
    cases = common.config_cases(args.cases, third="mode")
  for config, _, mode in cases:
    common.model_config(config)  # validates the name
    if mode not in MODES:
      raise ValueError(f"Unknown mode {mode!r}; known: {MODES}")
  return cases


def precision_of(mode: str) -> str:
  return "mixed_bfloat16" if mode.startswith("mixed") else "float32"


def jit_of(mode: str) -> bool:
  return mode.endswith("xla")


def step_function(trainer, mode: str):
  """The callable timed for `mode`, from a Trainer built for that mode."""
  if mode == "eager":

    def eager_step(video):
      tf.config.run_functions_eagerly(True)
      try:
        return trainer.train_step(video)
      finally:
        tf.config.run_functions_eagerly(False)

    return eager_step
  return trainer.train_step


def build_trainer(config, batch_size: int, precision: str, jit_compile: bool):
  """(trainer, seconds to build)."""
  start = time.perf_counter()
  trainer = common.make_trainer(
    config, batch_size, precision=precision, jit_compile=jit_compile
  )
  return trainer, time.perf_counter() - start


def run_case(
  trainer, config, batch_size: int, mode: str, warmup: int, repeats: int
) -> dict:
  video = common.synthetic_video(config, batch_size)
  step = step_function(trainer, mode)
  last = {}

  def call():
    metrics, _ = step(video)
    last["loss"] = metrics["loss"]
    return metrics["loss"]

  timing = common.time_calls(call, warmup=warmup, repeats=repeats)
  loss = float(last["loss"])
  seconds = timing["median_s"]
  return {
    "status": "ok" if math.isfinite(loss) else "non-finite loss",
    "loss": loss,
    "ms_per_step": 1e3 * seconds,
    "sequences_per_s": batch_size / seconds,
    "predicted_frames_per_s": batch_size * config.future_frames / seconds,
    "timing": timing,
  }


def run_group(record, config_name, batch, precision, jit, modes, timing):
  """Appends the results of `modes`, which share one Trainer, to the record."""
  config = common.model_config(config_name)
  base = {
    "config": config_name,
    "batch_size": batch,
    "precision": precision,
    "jit_compile": jit,
    "device": "GPU" if common.gpu_devices() else "CPU",
  }
  print(
    f"[train_step] {config_name} batch {batch} {precision}"
    f"{' XLA' if jit else ''}: building",
    flush=True,
  )
  try:
    trainer, build_s = build_trainer(config, batch, precision, jit)
  except Exception as e:  # pylint: disable=broad-except
    for mode in modes:
      record["results"].append(
        {
          **base,
          "mode": mode,
          "status": "failed at build",
          "error": common.error_text(e),
        }
      )
    print(f"  build failed: {common.error_text(e)}", flush=True)
    return
  params = common.num_parameters(trainer.model.trainable_variables)
  for mode in modes:
    print(f"  mode {mode} ...", flush=True)
    result = {
      **base,
      "mode": mode,
      "parameters": params,
      "build_s": build_s,
      "load_at_start": common.load_average(),
    }
    try:
      result.update(run_case(trainer, config, batch, mode, *timing))
    except Exception as e:  # pylint: disable=broad-except
      result.update(status="failed", error=common.error_text(e))
    print(
      f"    {result.get('status')}: {common.fmt(result.get('ms_per_step'))} ms/step",
      flush=True,
    )
    record["results"].append(result)
    common.write_partial(record)
  record.setdefault("configs", {})[config_name] = common.config_record(
    config_name, config
  )


def add_speedups(results: list) -> None:
  """Speed-up of each mode over the plain tf.function of the same config/batch."""
  reference = {
    (r["config"], r["batch_size"]): r.get("ms_per_step")
    for r in results
    if r["mode"] == "function" and r.get("ms_per_step")
  }
  for r in results:
    ref = reference.get((r["config"], r["batch_size"]))
    if ref and r.get("ms_per_step"):
      r["speedup_vs_function"] = ref / r["ms_per_step"]


def table(results: list) -> str:
  rows = [
    [
      r["config"],
      r["batch_size"],
      r["mode"],
      r.get("parameters", 0) / 1e6 if r.get("parameters") else None,
      r.get("ms_per_step"),
      r.get("sequences_per_s"),
      r.get("speedup_vs_function"),
      r.get("timing", {}).get("first_s"),
      r.get("build_s"),
      r["status"]
      if r["status"] == "ok"
      else f"{r['status']}: {r.get('error', '')[:120]}",
    ]
    for r in results
  ]
  return common.markdown_table(
    [
      "config",
      "batch",
      "mode",
      "params (M)",
      "ms/step (median)",
      "sequences/s",
      "x vs function",
      "first call (s)",
      "build (s)",
      "status",
    ],
    rows,
  )


def run(cases, warmup: int, repeats: int, output, argv=None) -> dict:
  record = common.start_record(
    "train_step",
    argv,
    {
      "cases": [list(c) for c in cases],
      "warmup": warmup,
      "repeats": repeats,
      "input": "synthetic uniform frames, fixed batch (no input pipeline)",
    },
  )
  record["output"] = output
  groups = {}  # modes sharing one Trainer
  for config_name, batch, mode in cases:
    groups.setdefault(
      (config_name, batch, precision_of(mode), jit_of(mode)), []
    ).append(mode)
  for key, modes in groups.items():
    run_group(record, *key, modes, (warmup, repeats))
    common.release_memory()
  add_speedups(record["results"])
  return common.finish_record(record, [table(record["results"])])


def main(argv=None):
  args = cli.parse_flags(FLAGS, argv, __doc__)
  return run(parse_cases(args), args.warmup, args.repeats, args.output, argv)


if __name__ == "__main__":
  main()
