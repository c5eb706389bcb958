"""GPU bench: the paper's BAIR model at batch 16, fp32 / mixed bf16 / XLA, sampling, memory, MFU.

  python -m bench.gpu                   # one large GPU (H100/H200 class): < 5 min
  python -m bench.gpu --preset=tiny     # CPU smoke test (tests/test_bench_gpu.py)
  python -m bench.gpu --modes=mixed_bf16 --batch_size=32 --budget_s=600

Preset "paper": gin/bair.gin's model (bench config bair_h3, 224.4M parameters)
at batch 16, 12 frames 64x64; "tiny": the 8x8 micro config, no XLA. Any flag
given overrides the preset. In order:
  1. Peaks: a --matmul_size^3 bfloat16 and float32 matmul (on a GPU TF runs
     float32 matmuls on TF32 tensor cores unless
     tf.config.experimental.enable_tensor_float_32_execution(False)).
  2. Train step per --modes (bench.train_step's modes: function = float32
     tf.function, mixed_bf16, xla = float32 XLA, mixed_bf16_xla): a Trainer
     per mode, --warmup steps (tracing / compiling: first_s), --repeats
     timed; peak device memory of the mode (tf.config.experimental
     get_memory_info "peak" after reset_memory_stats; on a CPU the process's
     peak RSS). Model FLOPs per step: XLA's HLO count of the first mode's step
     (bench.hlo_flops; the same for every mode). MFU = model FLOPs / median
     step time / the measured matmul peak of the mode's precision; bf16 modes
     also against --spec_bf16_flops (H100/H200 SXM dense bfloat16: 989.4
     TFLOP/s, NVIDIA's datasheet).
  3. Sampling, right after the first float32 mode, with its model:
     model.sample, --samples x --sample_future frames from the 2 context
     frames of one sequence in one batch (the BAIR protocol per test
     sequence: 100 x 28); frames/s and peak memory.
Modes not started within --budget_s seconds are recorded as skipped; each
finished case is written to the JSON at once (a killed run keeps them).
"""

import resource
import time
import types

from absl import flags
import tensorflow as tf

from bench import cli
from bench import common
from bench import hardware
from bench import hlo_flops
from bench import train_step as train_step_bench

# Dense bfloat16 tensor-core peak of an H100 / H200 SXM (NVIDIA datasheet;
# 1,979 TFLOP/s is with 2:4 sparsity). Only a reference: MFU against the
# matmul peak measured in the same run is reported first.
H100_H200_SXM_BF16_FLOPS = 989.4e12

PRESETS = {
  "paper": dict(
    config="bair_h3",
    batch_size=16,
    modes="function,mixed_bf16,xla",
    samples=100,
    sample_future=28,
    matmul_size=8192,
    warmup=1,
    repeats=5,
    budget_s=270,
  ),
  # No XLA mode: compiling even the micro model's step takes minutes on a CPU.
  "tiny": dict(
    config="micro",
    batch_size=2,
    modes="function,mixed_bf16",
    samples=2,
    sample_future=2,
    matmul_size=128,
    warmup=1,
    repeats=1,
    budget_s=600,
  ),
}


FLAGS = cli.define_flags("gpu")
FLAGS.set_default("warmup", None)  # None: the preset's
FLAGS.set_default("repeats", None)
flags.DEFINE_enum(
  "preset",
  "paper",
  sorted(PRESETS),
  "Values of the flags not given.",
  flag_values=FLAGS,
)
flags.DEFINE_string(
  "config", None, f"One of {sorted(common.CONFIGS)}.", flag_values=FLAGS
)
flags.DEFINE_integer("batch_size", None, "Train batch.", flag_values=FLAGS)
flags.DEFINE_string(
  "modes",
  None,
  f"Comma list of {train_step_bench.MODES}.",
  flag_values=FLAGS,
)
flags.DEFINE_integer(
  "samples", None, "Samples per sequence (0: skip).", flag_values=FLAGS
)
flags.DEFINE_integer(
  "sample_future", None, "Predicted frames.", flag_values=FLAGS
)
flags.DEFINE_integer(
  "matmul_size", None, "Side of the peak matmuls.", flag_values=FLAGS
)
flags.DEFINE_float(
  "budget_s",
  None,
  "Sections not started within this many seconds are skipped.",
  flag_values=FLAGS,
)
flags.DEFINE_float(
  "spec_bf16_flops",
  H100_H200_SXM_BF16_FLOPS,
  "Documented bf16 peak for the second MFU (0: none).",
  flag_values=FLAGS,
)


def device() -> str:
  return "GPU:0" if common.gpu_devices() else "CPU:0"


def reset_peak_memory() -> None:
  if common.gpu_devices():
    tf.config.experimental.reset_memory_stats("GPU:0")


def peak_memory() -> dict:
  """Peak device memory since the last reset (GPU), else the process's peak RSS."""
  if common.gpu_devices():
    info = tf.config.experimental.get_memory_info("GPU:0")
    return {
      "gpu_peak_bytes": int(info["peak"]),
      "gpu_current_bytes": int(info["current"]),
    }
  return {
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  }


def train_case(name, config, batch, mode, warmup, repeats, count_flops) -> dict:
  """One mode: build, warm up, time; peak memory; FLOPs if `count_flops`."""
  precision = train_step_bench.precision_of(mode)
  jit = train_step_bench.jit_of(mode)
  result = {
    "section": "train",
    "config": name,
    "batch_size": batch,
    "mode": mode,
    "precision": precision,
    "jit_compile": jit,
    "device": device(),
    "load_at_start": common.load_average(),
  }
  print(f"[gpu] train {name} batch {batch} {mode}", flush=True)
  reset_peak_memory()
  trainer, result["build_s"] = train_step_bench.build_trainer(
    config, batch, precision, jit
  )
  result["parameters"] = common.num_parameters(
    trainer.model.trainable_variables
  )
  result.update(
    train_step_bench.run_case(trainer, config, batch, mode, warmup, repeats)
  )
  result.update(peak_memory())
  if count_flops:
    start = time.perf_counter()
    video = common.synthetic_video(config, batch)
    result["flops"] = hlo_flops.train_step_flops(trainer, video)["flops"]
    result["hlo_seconds"] = time.perf_counter() - start
  print(
    f"  {result['status']}: {result['ms_per_step']:.1f} ms/step", flush=True
  )
  return result, trainer


def sampling_case(
  name, model, config, samples, future, warmup, repeats
) -> dict:
  """model.sample: `samples` x `future` frames of one context sequence, one call."""
  print(
    f"[gpu] sampling {name}: {samples} samples x {future} frames", flush=True
  )
  reset_peak_memory()
  context = common.synthetic_video(config, 1, config.context_frames, seed=1)
  num_future, seed = tf.constant(future), tf.constant([0, 1])
  timing = common.time_calls(
    lambda: model.sample(context, num_future, samples, seed),
    warmup=warmup,
    repeats=repeats,
  )
  return {
    "section": "sampling",
    "config": name,
    "samples": samples,
    "future_frames": future,
    "context_frames": config.context_frames,
    "device": device(),
    "status": "ok",
    "timing": timing,
    "seconds_per_test_sequence": timing["median_s"],
    "frames_per_s": samples * future / timing["median_s"],
    **peak_memory(),
  }


def peaks(size, warmup, repeats) -> dict:
  out = {}
  for key, dtype in (("bfloat16", tf.bfloat16), ("float32", tf.float32)):
    print(f"[gpu] peak: {size}^3 {key} matmul", flush=True)
    try:
      out[key] = hardware.matmul_peak(size, dtype, warmup, repeats)
    except Exception as e:  # pylint: disable=broad-except
      out[key] = {"error": common.error_text(e)}
  return out


def add_mfu(result, record, spec_bf16) -> None:
  """Achieved model FLOP/s and its fractions of the peaks, when FLOPs are known."""
  flops = record.get("model_flops_per_step")
  if not (flops and result["section"] == "train" and result["status"] == "ok"):
    return
  achieved = flops / result["timing"]["median_s"]
  key = "bfloat16" if result["precision"].startswith("mixed") else "float32"
  peak = record["peaks"].get(key, {}).get("flops_per_s")
  result.update(
    model_flops_per_step=flops,
    achieved_flops_per_s=achieved,
    mfu_vs_measured_matmul=achieved / peak if peak else None,
    measured_peak_used=key,
  )
  if key == "bfloat16" and spec_bf16 and common.gpu_devices():
    result["mfu_vs_spec_bf16"] = achieved / spec_bf16


def failed(section, error, **fields) -> dict:
  """The result of a case that raised `error`."""
  return {
    "section": section,
    **fields,
    "status": "failed",
    "error": common.error_text(error),
  }


def mode_case(args, config, mode, count_flops):
  """train_case of one mode, or its failure; returns (result, trainer or None)."""
  try:
    return train_case(
      args.config,
      config,
      args.batch_size,
      mode,
      args.warmup,
      args.repeats,
      count_flops,
    )
  except Exception as e:  # pylint: disable=broad-except
    return failed("train", e, mode=mode), None


def sample_with(args, config, trainer) -> dict:
  """sampling_case with the trainer's model, or its failure."""
  try:
    return sampling_case(
      args.config,
      trainer.model,
      config,
      args.samples,
      args.sample_future,
      args.warmup,
      3,
    )
  except Exception as e:  # pylint: disable=broad-except
    return failed("sampling", e)


def run(args, argv=None) -> dict:
  config = common.model_config(args.config)
  modes = cli.csv_list(args.modes)
  record = common.start_record(
    "gpu", argv, {k: v for k, v in vars(args).items() if k != "output"}
  )
  record.update(
    output=args.output,
    configs={args.config: common.config_record(args.config, config)},
  )
  start = time.perf_counter()
  within_budget = lambda: time.perf_counter() - start < args.budget_s
  record["peaks"] = peaks(args.matmul_size, args.warmup, max(args.repeats, 3))
  sampled = not args.samples
  for mode in modes:
    if not within_budget():
      record["results"].append(
        {"section": "train", "mode": mode, "status": "skipped (budget)"}
      )
      continue
    result, trainer = mode_case(
      args, config, mode, "model_flops_per_step" not in record
    )
    record["results"].append(result)
    if result.get("flops"):
      record["model_flops_per_step"] = result["flops"]
    if trainer is not None and not sampled and result["precision"] == "float32":
      # The first float32 model samples, before the next mode is built.
      sampled = True
      record["results"].append(sample_with(args, config, trainer))
    del trainer
    common.release_memory()
    common.write_partial(record)
  for result in record["results"]:
    add_mfu(result, record, args.spec_bf16_flops)
  record["seconds"] = time.perf_counter() - start
  return common.finish_record(record, tables(record))


def _gflops(x):
  return None if x is None else x / 1e9


def _peak_gib(result):
  peak = result.get("gpu_peak_bytes") or result.get("peak_rss_bytes") or 0
  return peak / 2**30 or None


def train_table(record) -> str:
  rows = [
    [
      r["mode"],
      r.get("batch_size"),
      r.get("ms_per_step"),
      r.get("sequences_per_s"),
      r.get("timing", {}).get("first_s"),
      _gflops(r.get("achieved_flops_per_s")),
      r.get("mfu_vs_measured_matmul"),
      r.get("mfu_vs_spec_bf16"),
      _peak_gib(r),
      r["status"] if r["status"] != "failed" else f"failed: {r['error'][:100]}",
    ]
    for r in record["results"]
    if r["section"] == "train"
  ]
  return common.markdown_table(
    [
      "mode",
      "batch",
      "ms/step",
      "sequences/s",
      "first call (s)",
      "model GFLOP/s",
      "MFU (measured peak)",
      "MFU (bf16 spec)",
      "peak memory (GiB)",
      "status",
    ],
    rows,
  )


def sampling_rows(record) -> list:
  return [
    [
      r["samples"],
      r["future_frames"],
      r["timing"]["median_s"],
      r["frames_per_s"],
      _peak_gib(r),
    ]
    for r in record["results"]
    if r["section"] == "sampling" and r["status"] == "ok"
  ]


def tables(record) -> list:
  peak_rows = [
    [k, _gflops(p.get("flops_per_s")) or p.get("error")]
    for k, p in record["peaks"].items()
  ]
  out = [
    common.markdown_table(["matmul peak", "GFLOP/s"], peak_rows),
    train_table(record),
  ]
  sampling = sampling_rows(record)
  if sampling:
    out.append(
      common.markdown_table(
        [
          "samples",
          "frames",
          "s per test sequence",
          "frames/s",
          "peak memory (GiB)",
        ],
        sampling,
      )
    )
  flops = _gflops(record.get("model_flops_per_step"))
  memory = "GPU peak" if common.gpu_devices() else "process peak RSS"
  out.append(
    f"model FLOPs per step (XLA HLO): {flops} GFLOP; device memory: {memory}"
  )
  return out


def main(argv=None):
  args = types.SimpleNamespace(
    **cli.parse_flags(FLAGS, argv, __doc__).flag_values_dict()
  )
  for key, value in PRESETS[args.preset].items():
    if getattr(args, key) is None:
      setattr(args, key, value)
  common.model_config(args.config)
  unknown = set(cli.csv_list(args.modes)) - set(train_step_bench.MODES)
  if unknown:
    raise ValueError(
      f"--modes: unknown {sorted(unknown)}; known: {train_step_bench.MODES}"
    )
  return run(args, argv)


if __name__ == "__main__":
  main()
