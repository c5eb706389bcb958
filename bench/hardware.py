"""Hardware efficiency: FLOPs per train step, achieved FLOP/s, fraction of measured peak.

  python -m bench.hardware                       # ~3 min on 2 CPU cores
  python -m bench.hardware --cases=bair_h3:1 --matmul_size=8192

FLOPs per step: XLA's HLO of the train step (Trainer.train_step's Python
function: ELBO, gradients, Adam update) before optimisation, counted by
`bench.hlo_flops` (convolutions + dots, multiply-add = 2 FLOPs, padding not
counted; elementwise ops listed apart). The same count holds for every
execution mode; achieved FLOP/s divides it by the median time of the plain
tf.function train step (Trainer.train_step, the fastest mode on CPU here; see
bench.train_step) or of --mode.
Peak: the median FLOP/s of a large float32 matmul (--matmul_size^3, 2 FLOPs
per multiply-add), measured at the start and at the end of the run (the
machine may be shared: both are reported, the fraction uses the larger);
also a bfloat16 matmul and one large 3x3 convolution as achievable references.
"""

import time

from absl import flags
import tensorflow as tf

from bench import cli
from bench import common
from bench import hlo_flops
from bench import train_step as train_step_bench

DEFAULT_CASES = "smmnist_quick:8,bair_h1_d1:1"

FLAGS = cli.define_flags("hardware")
flags.DEFINE_string(
  "cases", DEFAULT_CASES, "config:batch,...", flag_values=FLAGS
)
flags.DEFINE_enum(
  "mode",
  "function",
  train_step_bench.MODES,
  "Execution mode timed for achieved FLOP/s.",
  flag_values=FLAGS,
)
flags.DEFINE_integer(
  "matmul_size",
  None,
  "Peak matmul side (default 4096 on CPU, 8192 on GPU).",
  flag_values=FLAGS,
)
flags.DEFINE_string(
  "conv_shape",
  "4,64,64,256",
  "batch,size,channels_in,channels_out of the reference 3x3 conv.",
  flag_values=FLAGS,
)


def matmul_peak(size: int, dtype, warmup: int, repeats: int) -> dict:
  a = tf.random.stateless_uniform([size, size], seed=[1, 2], dtype=tf.float32)
  b = tf.random.stateless_uniform([size, size], seed=[3, 4], dtype=tf.float32)
  a, b = tf.cast(a, dtype), tf.cast(b, dtype)
  matmul = tf.function(lambda a, b: tf.linalg.matmul(a, b))
  timing = common.time_calls(
    lambda: matmul(a, b), warmup=max(warmup, 1), repeats=max(repeats, 3)
  )
  flops = 2 * size**3
  return {
    "kind": f"matmul {size}x{size}x{size} {tf.as_dtype(dtype).name}",
    "flops": flops,
    "timing": timing,
    "flops_per_s": flops / timing["median_s"],
  }


def conv_peak(
  batch: int,
  size: int,
  channels_in: int,
  channels_out: int,
  warmup: int,
  repeats: int,
) -> dict:
  x = tf.random.stateless_uniform([batch, size, size, channels_in], seed=[1, 2])
  k = tf.random.stateless_uniform(
    [3, 3, channels_in, channels_out], seed=[3, 4]
  )
  conv = lambda x, k: tf.nn.conv2d(x, k, 1, "SAME")
  flops = hlo_flops.function_flops(conv, x, k)["flops"]
  compiled = tf.function(conv)
  timing = common.time_calls(
    lambda: compiled(x, k), warmup=max(warmup, 1), repeats=max(repeats, 3)
  )
  return {
    "kind": f"conv3x3 [{batch},{size},{size},{channels_in}]->{channels_out} float32",
    "flops": flops,
    "timing": timing,
    "flops_per_s": flops / timing["median_s"],
  }


def flops_case(
  name: str, batch: int, mode: str, warmup: int, repeats: int
) -> dict:
  config = common.model_config(name)
  result = {
    "config": name,
    "batch_size": batch,
    "mode": mode,
    "device": "GPU" if common.gpu_devices() else "CPU",
    "load_at_start": common.load_average(),
  }
  print(f"[hardware] {name} batch {batch}: building", flush=True)
  trainer = common.make_trainer(config, batch)
  result["parameters"] = common.num_parameters(
    trainer.model.trainable_variables
  )
  video = common.synthetic_video(config, batch)
  try:
    print("  lowering the train step to HLO and counting FLOPs", flush=True)
    start = time.perf_counter()
    result.update(hlo_flops.train_step_flops(trainer, video))
    result["hlo_seconds"] = time.perf_counter() - start
    print(
      f"  {result['flops'] / 1e9:.2f} GFLOP per step; timing mode {mode}",
      flush=True,
    )
    fn = train_step_bench.step_function(trainer, mode)
    timing = common.time_calls(
      lambda: fn(video)[0]["loss"], warmup=warmup, repeats=repeats
    )
    result.update(
      status="ok",
      timing=timing,
      ms_per_step=1e3 * timing["median_s"],
      achieved_flops_per_s=result["flops"] / timing["median_s"],
      flops_per_sequence=result["flops"] / batch,
      flops_per_parameter=result["flops"] / result["parameters"],
    )
  except Exception as e:  # pylint: disable=broad-except
    result.update(status="failed", error=common.error_text(e))
  del trainer
  common.release_memory()
  return result


def start_peaks(matmul_size, conv_shape, warmup, repeats) -> dict:
  """The float32 and bfloat16 matmul peaks and the 3x3 conv reference."""
  print("[hardware] peak: float32 matmul", flush=True)
  peaks = {
    "matmul_float32_start": matmul_peak(
      matmul_size, tf.float32, warmup, repeats
    )
  }
  try:
    peaks["matmul_bfloat16"] = matmul_peak(
      matmul_size, tf.bfloat16, warmup, repeats
    )
  except Exception as e:  # pylint: disable=broad-except
    peaks["matmul_bfloat16"] = {"error": common.error_text(e)}
  peaks["conv3x3_float32"] = conv_peak(*conv_shape, warmup, repeats)
  return peaks


def add_fractions(record) -> None:
  """Each result's achieved FLOP/s as a fraction of the peaks."""
  peaks = record["peaks"]
  for r in record["results"]:
    if r.get("achieved_flops_per_s"):
      r["fraction_of_matmul_peak"] = (
        r["achieved_flops_per_s"] / record["peak_flops_per_s"]
      )
      r["fraction_of_conv_reference"] = (
        r["achieved_flops_per_s"] / peaks["conv3x3_float32"]["flops_per_s"]
      )


def run(
  cases, mode, matmul_size, conv_shape, warmup, repeats, output, argv=None
):
  record = common.start_record(
    "hardware",
    argv,
    {
      "cases": [list(c) for c in cases],
      "mode": mode,
      "matmul_size": matmul_size,
      "conv_shape": conv_shape,
      "warmup": warmup,
      "repeats": repeats,
    },
  )
  record["output"] = output
  peaks = start_peaks(matmul_size, conv_shape, warmup, repeats)
  for name, batch in cases:
    record["results"].append(flops_case(name, batch, mode, warmup, repeats))
    record.setdefault("configs", {})[name] = common.config_record(
      name, common.model_config(name)
    )
  print("[hardware] peak: float32 matmul again", flush=True)
  peaks["matmul_float32_end"] = matmul_peak(
    matmul_size, tf.float32, warmup, repeats
  )
  record["peaks"] = peaks
  record["peak_flops_per_s"] = max(
    peaks["matmul_float32_start"]["flops_per_s"],
    peaks["matmul_float32_end"]["flops_per_s"],
  )
  add_fractions(record)
  return common.finish_record(record, tables(record))


def _gflops(x):
  return None if x is None else x / 1e9


def peak_table(peaks) -> str:
  rows = [
    [
      p.get("kind", key),
      _gflops(p.get("flops")),
      p.get("timing", {}).get("median_s"),
      _gflops(p.get("flops_per_s")) if "flops_per_s" in p else p.get("error"),
    ]
    for key, p in peaks.items()
  ]
  return common.markdown_table(
    ["peak reference", "GFLOP", "s (median)", "GFLOP/s"], rows
  )


def case_table(results) -> str:
  rows = [
    [
      r["config"],
      r["batch_size"],
      r["mode"],
      (r.get("parameters") or 0) / 1e6,
      _gflops(r.get("flops")),
      r.get("ms_per_step"),
      _gflops(r.get("achieved_flops_per_s")),
      r.get("fraction_of_matmul_peak"),
      r.get("fraction_of_conv_reference"),
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
      "mode",
      "params (M)",
      "GFLOP/step",
      "ms/step",
      "achieved GFLOP/s",
      "of matmul peak",
      "of conv reference",
      "status",
    ],
    rows,
  )


def breakdown_rows(results) -> list:
  """FLOPs per direction and component, and the uncounted elementwise ops."""
  rows = []
  for r in results:
    if r.get("flops"):
      parts = {
        **{f"fwd/bwd {k}": v for k, v in r["flops_by_direction"].items()},
        **r["flops_by_component"],
      }
      rows += [
        [r["config"], k, _gflops(v), v / r["flops"]] for k, v in parts.items()
      ]
      rows.append(
        [
          r["config"],
          "elementwise ops (not in FLOPs)",
          _gflops(r["elementwise_ops"] + r["transcendental_ops"]),
          (r["elementwise_ops"] + r["transcendental_ops"]) / r["flops"],
        ]
      )
  return rows


def tables(record) -> list:
  out = [peak_table(record["peaks"]), case_table(record["results"])]
  rows = breakdown_rows(record["results"])
  if rows:
    out.append(
      common.markdown_table(["config", "part", "GFLOP", "share"], rows)
    )
  return out


def main(argv=None):
  args = cli.parse_flags(FLAGS, argv, __doc__)
  cases = common.config_cases(args.cases)
  size = args.matmul_size or (8192 if common.gpu_devices() else 4096)
  return run(
    cases,
    args.mode,
    size,
    cli.int_list(args.conv_shape),
    args.warmup,
    args.repeats,
    args.output,
    argv,
  )


if __name__ == "__main__":
  main()
