"""Sampling throughput, and the O(T) scaling of sampling vs the naive O(T^2) sampler.

  python -m bench.sampling                     # ~4 min on 2 CPU cores
  python -m bench.sampling --protocol=smmnist_quick:100 --xla --scaling_config=
  python -m bench.sampling --protocol= --scaling_samples=10 --naive_max_length=56

1. Protocol (BAIR: N samples x 28 future frames from the config's 2 context
   frames, one test sequence): frames/s of `HierarchicalVRNN.sample`, which
   carries every ConvLSTM state (O(T)) and puts the N samples of a sequence in
   one batch ("batched"); "per_sample" draws the samples one call at a time
   (at most --per_sample_max of them, frames/s extrapolates); "xla" (--xla)
   wraps the same function in tf.function(jit_compile=True).
2. Scaling: seconds to sample T = 7, 14, 28, 56 frames, for `model.sample` and
   for the naive scheme of the authors' release, implemented here only as a
   baseline (bench/naive_sampler.py): for every new frame it re-encodes the whole
   sequence so far and re-runs the prior and the decoder over it from the
   initial states, O(T^2) network evaluations. time(2T)/time(T) should be ~2 for
   O(T) and ~4 for the naive sampler. Each sampler is warmed up at its
   longest T, then timed at every T (--naive_max_length caps the naive one). With the same seed both draw the same
   noise per step, so their outputs agree (max_abs_diff in the JSON).
Weights are freshly initialised (speed does not depend on them).
"""

import time

from absl import flags
import tensorflow as tf

from bench import cli
from bench import common
from bench import naive_sampler
from hvrnn_tf.model.vrnn import HierarchicalVRNN

DEFAULT_PROTOCOL = "smmnist_quick:100,bair_h1_d1:4"

FLAGS = cli.define_flags("sampling")
flags.DEFINE_string(
  "protocol",
  DEFAULT_PROTOCOL,
  "config:num_samples,... for the protocol section ('' to skip).",
  flag_values=FLAGS,
)
flags.DEFINE_integer(
  "future_frames", 28, "Predicted frames (protocol).", flag_values=FLAGS
)
flags.DEFINE_integer(
  "sequences", 1, "Test sequences per call (protocol).", flag_values=FLAGS
)
flags.DEFINE_integer(
  "per_sample_max",
  2,
  "Samples drawn one call at a time for the per_sample variant (0: skip).",
  flag_values=FLAGS,
)
flags.DEFINE_bool(
  "xla", False, "Also time the XLA-compiled sampler.", flag_values=FLAGS
)
flags.DEFINE_string(
  "scaling_config",
  "smmnist_quick",
  "'' to skip the scaling section.",
  flag_values=FLAGS,
)
flags.DEFINE_integer(
  "scaling_samples", 4, "Samples per call (scaling).", flag_values=FLAGS
)
flags.DEFINE_string(
  "lengths", "7,14,28,56", "Numbers of predicted frames T.", flag_values=FLAGS
)
flags.DEFINE_integer(
  "naive_max_length",
  28,
  "Longest T for the naive sampler (56 takes ~6 min here).",
  flag_values=FLAGS,
)


def build_model(config):
  start = time.perf_counter()
  model = HierarchicalVRNN(config)
  model.initialize()
  return model, time.perf_counter() - start


def time_variant(
  base, variant, num_samples, samples_timed, fn, warmup, repeats
) -> dict:
  """One protocol variant: `fn` draws `samples_timed` of the `num_samples`
  samples of each sequence."""
  future = base["future_frames"]
  print(
    f"[sampling] {base['config']} {variant}: {samples_timed} samples x {future} frames",
    flush=True,
  )
  result = {
    **base,
    "variant": variant,
    "num_samples": num_samples,
    "samples_timed": samples_timed,
    "load_at_start": common.load_average(),
  }
  try:
    timing = common.time_calls(fn, warmup=warmup, repeats=repeats)
    seconds = timing["median_s"]
    frames = base["sequences"] * samples_timed * future
    result.update(
      status="ok",
      timing=timing,
      seconds=seconds,
      frames_per_s=frames / seconds,
      ms_per_generation_step=1e3 * seconds / future,
      seconds_for_protocol=seconds * num_samples / samples_timed,
    )
  except Exception as e:  # pylint: disable=broad-except
    result.update(status="failed", error=common.error_text(e))
  return result


def xla_variant(model, base, context, num_samples, seed, warmup, repeats):
  """The batched variant under XLA, and its difference to the plain one."""
  future = base["future_frames"]
  xla_sample = tf.function(model.sample.python_function, jit_compile=True)
  result = time_variant(
    base,
    "xla",
    num_samples,
    num_samples,
    lambda: xla_sample(context, future, num_samples, seed),
    warmup,
    repeats,
  )
  if result["status"] == "ok":  # same seed: XLA should draw the same frames
    plain = model.sample(context, tf.constant(future), num_samples, seed)
    result["max_abs_diff_vs_batched"] = float(
      tf.reduce_max(
        tf.abs(plain - xla_sample(context, future, num_samples, seed))
      )
    )
  return result


def protocol_case(
  name: str,
  num_samples: int,
  future: int,
  sequences: int,
  per_sample_max: int,
  xla: bool,
  warmup: int,
  repeats: int,
) -> list:
  """The protocol section of one config: its batched, per_sample and xla variants."""
  config = common.model_config(name)
  model, build_s = build_model(config)
  context = common.synthetic_video(
    config, sequences, config.context_frames, seed=1
  )
  seed = tf.constant([0, 1])
  num_future = tf.constant(future)
  base = {
    "section": "protocol",
    "config": name,
    "context_frames": config.context_frames,
    "future_frames": future,
    "sequences": sequences,
    "build_s": build_s,
    "parameters": common.num_parameters(model.trainable_variables),
    "device": "GPU" if common.gpu_devices() else "CPU",
  }
  results = [
    time_variant(
      base,
      "batched",
      num_samples,
      num_samples,
      lambda: model.sample(context, num_future, num_samples, seed),
      warmup,
      repeats,
    )
  ]
  if per_sample_max > 0:
    n = min(num_samples, per_sample_max)
    one_at_a_time = lambda: [
      model.sample(context, num_future, 1, seed + i) for i in range(n)
    ]
    results.append(
      time_variant(
        base, "per_sample", num_samples, n, one_at_a_time, warmup, repeats
      )
    )
  if xla:
    results.append(
      xla_variant(model, base, context, num_samples, seed, warmup, repeats)
    )
  model = None  # frees its variables
  common.release_memory()
  return results


def time_lengths(name, variant, fn, lengths, num_samples, warmup, repeats):
  """One sampler `fn(T)`, warmed up at the longest T, timed at every T."""
  # One trace serves every T (num_future is a tensor); kernels (oneDNN
  # primitives, allocations) are set up per input shape, and the naive
  # sampler meets the shapes of every length up to T: warming up at the
  # longest T warms up every shorter one.
  print(
    f"[sampling] scaling {name} {variant}: warm-up at T={max(lengths)}",
    flush=True,
  )
  for _ in range(warmup):
    common.sync(fn(max(lengths)))
  results = []
  for t in lengths:
    print(f"[sampling] scaling {name} {variant} T={t}", flush=True)
    result = {
      "section": "scaling",
      "config": name,
      "variant": variant,
      "num_samples": num_samples,
      "future_frames": t,
      "load_at_start": common.load_average(),
    }
    try:
      timing = common.time_calls(lambda t=t: fn(t), warmup=0, repeats=repeats)
      result.update(
        status="ok",
        timing=timing,
        seconds=timing["median_s"],
        min_seconds=timing["min_s"],
        frames_per_s=num_samples * t / timing["median_s"],
      )
    except Exception as e:  # pylint: disable=broad-except
      result.update(status="failed", error=common.error_text(e))
    results.append(result)
  return results


def add_ratios(results) -> None:
  """Ratios time(2T)/time(T) and speed-ups over the naive sampler.

  Medians are the headline; ratios of the minima are reported too (on a
  shared machine the minimum is the least disturbed run).
  """
  for stat, suffix in (("seconds", ""), ("min_seconds", "_of_minima")):
    by = {(r["variant"], r["future_frames"]): r.get(stat) for r in results}
    for r in results:
      previous = by.get((r["variant"], r["future_frames"] // 2))
      if r.get(stat) and previous and r["future_frames"] % 2 == 0:
        r["ratio_vs_half_length" + suffix] = r[stat] / previous
      naive_s = by.get(("naive_O(T^2)", r["future_frames"]))
      if r["variant"].startswith("carried") and naive_s and r.get(stat):
        r["speedup_over_naive" + suffix] = naive_s / r[stat]


def scaling_case(
  name: str,
  num_samples: int,
  lengths: list,
  naive_max: int,
  warmup: int,
  repeats: int,
) -> tuple:
  """The scaling section: (results of both samplers at each T, their agreement)."""
  config = common.model_config(name)
  model, _ = build_model(config)
  naive = naive_sampler.make_naive_sampler(model)
  context = common.synthetic_video(config, 1, config.context_frames, seed=1)
  seed = tf.constant([0, 1])
  samplers = {"carried_states_O(T)": model.sample, "naive_O(T^2)": naive}
  results = []
  for variant, sampler in samplers.items():
    fn = lambda t, s=sampler: s(context, tf.constant(t), num_samples, seed)
    todo = [
      t for t in lengths if not (variant.startswith("naive") and t > naive_max)
    ]
    results += time_lengths(
      name, variant, fn, todo, num_samples, warmup, repeats
    )
  try:
    t = lengths[0]
    a = model.sample(context, tf.constant(t), num_samples, seed)
    b = naive(context, tf.constant(t), num_samples, seed)
    check = {
      "future_frames": t,
      "max_abs_diff": float(tf.reduce_max(tf.abs(a - b))),
    }
  except Exception as e:  # pylint: disable=broad-except
    check = {"error": common.error_text(e)}
  add_ratios(results)
  model = None  # frees its variables
  common.release_memory()
  return results, check


def _status(r) -> str:
  if r["status"] == "ok":
    return r["status"]
  return f"{r['status']}: {r.get('error', '')[:100]}"


PROTOCOL_COLUMNS = [
  "config",
  "variant",
  "N",
  "N timed",
  "F",
  "s per call (median)",
  "frames/s",
  "s per sequence (N x F)",
  "first call (s)",
  "status",
]
SCALING_COLUMNS = [
  "config",
  "sampler",
  "N",
  "T",
  "s (median)",
  "s (min)",
  "time(T)/time(T/2)",
  "same, of minima",
  "speed-up over naive",
  "frames/s",
  "status",
]


def tables(record) -> list:
  """The protocol and scaling sections' tables, where they ran."""
  results = record["results"]
  protocol = [
    [
      r["config"],
      r["variant"],
      r["num_samples"],
      r["samples_timed"],
      r["future_frames"],
      r.get("seconds"),
      r.get("frames_per_s"),
      r.get("seconds_for_protocol"),
      r.get("timing", {}).get("first_s"),
      _status(r),
    ]
    for r in results
    if r["section"] == "protocol"
  ]
  scaling = [
    [
      r["config"],
      r["variant"],
      r["num_samples"],
      r["future_frames"],
      r.get("seconds"),
      r.get("min_seconds"),
      r.get("ratio_vs_half_length"),
      r.get("ratio_vs_half_length_of_minima"),
      r.get("speedup_over_naive"),
      r.get("frames_per_s"),
      _status(r),
    ]
    for r in results
    if r["section"] == "scaling"
  ]
  out = [common.markdown_table(PROTOCOL_COLUMNS, protocol)] if protocol else []
  if scaling:
    check = record["naive_equals_carried"]
    out += [
      common.markdown_table(SCALING_COLUMNS, scaling),
      f"naive vs carried-state samples, same seed: {check}",
    ]
  return out


def run(protocol, scaling_config, output, argv=None, **settings):
  """Runs both sections; `settings` are main's other flags (future_frames,
  sequences, per_sample_max, xla, scaling_samples, lengths,
  naive_max_length, warmup, repeats)."""
  record = common.start_record(
    "sampling",
    argv,
    {"protocol": protocol, "scaling_config": scaling_config, **settings},
  )
  record["output"] = output
  warmup, repeats = settings["warmup"], settings["repeats"]
  configs = {}
  for name, n in protocol:
    record["results"] += protocol_case(
      name,
      n,
      settings["future_frames"],
      settings["sequences"],
      settings["per_sample_max"],
      settings["xla"],
      warmup,
      repeats,
    )
    configs[name] = common.config_record(name, common.model_config(name))
  if scaling_config:
    results, check = scaling_case(
      scaling_config,
      settings["scaling_samples"],
      settings["lengths"],
      settings["naive_max_length"],
      warmup,
      repeats,
    )
    record["results"] += results
    record["naive_equals_carried"] = check
    configs[scaling_config] = common.config_record(
      scaling_config, common.model_config(scaling_config)
    )
  record["configs"] = configs
  return common.finish_record(record, tables(record))


def main(argv=None):
  args = cli.parse_flags(FLAGS, argv, __doc__)
  protocol = common.config_cases(args.protocol)
  if args.scaling_config:
    common.model_config(args.scaling_config)
  settings = args.flag_values_dict()
  for name in ("protocol", "scaling_config", "output"):
    settings.pop(name)
  settings["lengths"] = cli.int_list(args.lengths)
  return run(protocol, args.scaling_config, args.output, argv, **settings)


if __name__ == "__main__":
  main()
