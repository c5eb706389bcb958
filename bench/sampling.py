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
   baseline (`make_naive_sampler`): for every new frame it re-encodes the whole
   sequence so far and re-runs the prior and the decoder over it from the
   initial states, O(T^2) network evaluations. time(2T)/time(T) should be ~2 for
   O(T) and ~4 for the naive sampler. Each sampler is warmed up at its
   longest T, then timed at every T (--naive_max_length caps the naive one). With the same seed both draw the same
   noise per step, so their outputs agree (max_abs_diff in the JSON).
Weights are freshly initialised (speed does not depend on them).
"""

import sys
import time

import tensorflow as tf

from bench import common
from hvrnn_tf.model import vrnn
from hvrnn_tf.model.vrnn import HierarchicalVRNN

DEFAULT_PROTOCOL = "smmnist_quick:100,bair_h1_d1:4"


def make_naive_sampler(model: HierarchicalVRNN):
  """The O(T^2) baseline: re-runs the network over the whole sequence per new frame.

  Returns a tf.function(context [B, c, S, S, C], num_future (int32 scalar),
  num_samples (Python int), seed int32 [2]) -> [B, N, F, S, S, C] with the
  same per-step noise as `model.sample`, hence the same frames. Only
  the last frame of each re-run is kept, as in the authors' release.
  """
  config = model.config
  c = config.context_frames
  resolutions = config.latent_resolutions
  size, channels = config.image_size, config.channels

  def one_frame(context, generated, seed, rows):
    """Re-runs everything over context + generated; returns the next frame."""
    video = tf.concat([context, generated], axis=1)
    features = model.encode(video)
    states = model._initial_states(  # pylint: disable=protected-access
      {
        r: tf.ensure_shape(f[:, :c], [rows, c] + f.shape[2:])
        for r, f in features.items()
      },
      ("prior",),
    )
    previous = {r: f[:, c - 1 :] for r, f in features.items()}
    num_steps = tf.shape(generated)[1] + 1

    def step(k, states, logits):
      del logits
      inputs = {r: f[:, k][:, None] for r, f in previous.items()}
      noise = model.noise(vrnn.fold_in(seed, k), rows, 1)
      hidden, prior_states = model.latents.recur(
        "prior", inputs, states["prior"]
      )
      _, samples = model.latents.sample("prior", hidden, noise)
      logits, decoder_states = model.decoder(
        inputs, dict(zip(resolutions, samples)), states["decoder"]
      )
      return k + 1, {"prior": prior_states, "decoder": decoder_states}, logits

    logits = tf.zeros([rows, 1, size, size, channels])
    _, _, logits = tf.while_loop(
      lambda k, *_: k < num_steps, step, (tf.constant(0), states, logits)
    )
    return tf.sigmoid(logits[:, 0])

  @tf.function
  def naive_sample(context, num_future, num_samples, seed):
    batch_size = context.shape[0]
    rows = batch_size * num_samples
    context = tf.repeat(context, num_samples, axis=0)
    frames = tf.TensorArray(
      tf.float32, size=num_future, element_shape=[rows, size, size, channels]
    )

    def body(t, frames):
      generated = tf.transpose(frames.gather(tf.range(t)), [1, 0, 2, 3, 4])
      return t + 1, frames.write(t, one_frame(context, generated, seed, rows))

    _, frames = tf.while_loop(
      lambda t, _: t < num_future, body, (tf.constant(0), frames)
    )
    frames = tf.transpose(frames.stack(), [1, 0, 2, 3, 4])
    return tf.reshape(
      frames, [batch_size, num_samples, -1, size, size, channels]
    )

  return naive_sample


def build_model(config):
  start = time.perf_counter()
  model = HierarchicalVRNN(config)
  model.initialize()
  return model, time.perf_counter() - start


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
  results = []

  def add(variant, samples_timed, fn):
    print(
      f"[sampling] {name} {variant}: {samples_timed} samples x {future} frames",
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
      frames = sequences * samples_timed * future
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
    results.append(result)

  add(
    "batched",
    num_samples,
    lambda: model.sample(context, num_future, num_samples, seed),
  )
  if per_sample_max > 0:
    n = min(num_samples, per_sample_max)
    add(
      "per_sample",
      n,
      lambda: [
        model.sample(context, num_future, 1, seed + i) for i in range(n)
      ],
    )
  if xla:
    xla_sample = tf.function(model.sample.python_function, jit_compile=True)
    add(
      "xla", num_samples, lambda: xla_sample(context, future, num_samples, seed)
    )
    if (
      results[-1]["status"] == "ok"
    ):  # same seed: XLA should draw the same frames
      plain = model.sample(context, num_future, num_samples, seed)
      results[-1]["max_abs_diff_vs_batched"] = float(
        tf.reduce_max(
          tf.abs(plain - xla_sample(context, future, num_samples, seed))
        )
      )
  model = None  # frees its variables
  common.release_memory()
  return results


def scaling_case(
  name: str,
  num_samples: int,
  lengths: list,
  naive_max: int,
  warmup: int,
  repeats: int,
) -> list:
  config = common.model_config(name)
  model, _ = build_model(config)
  naive = make_naive_sampler(model)
  context = common.synthetic_video(config, 1, config.context_frames, seed=1)
  seed = tf.constant([0, 1])
  samplers = {"carried_states_O(T)": model.sample, "naive_O(T^2)": naive}
  results = []
  check = None
  for variant, sampler in samplers.items():
    fn = lambda t, s=sampler: s(context, tf.constant(t), num_samples, seed)
    todo = [
      t for t in lengths if not (variant.startswith("naive") and t > naive_max)
    ]
    # One trace serves every T (num_future is a tensor); kernels (oneDNN
    # primitives, allocations) are set up per input shape, and the naive
    # sampler meets the shapes of every length up to T: warming up at the
    # longest T warms up every shorter one.
    print(
      f"[sampling] scaling {name} {variant}: warm-up at T={max(todo)}",
      flush=True,
    )
    for _ in range(warmup):
      common.sync(fn(max(todo)))
    for t in todo:
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
        timing = common.time_calls(
          lambda fn=fn, t=t: fn(t), warmup=0, repeats=repeats
        )
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
  try:
    t = lengths[0]
    a = samplers["carried_states_O(T)"](
      context, tf.constant(t), num_samples, seed
    )
    b = naive(context, tf.constant(t), num_samples, seed)
    check = {
      "future_frames": t,
      "max_abs_diff": float(tf.reduce_max(tf.abs(a - b))),
    }
  except Exception as e:  # pylint: disable=broad-except
    check = {"error": common.error_text(e)}
  # Ratios time(2T)/time(T) and speed-ups.
  # Medians are the headline; ratios of the minima are reported too (on a
  # shared machine the minimum is the least disturbed run).
  for stat, suffix in (("seconds", ""), ("min_seconds", "_of_minima")):
    by = {(r["variant"], r["future_frames"]): r.get(stat) for r in results}
    for r in results:
      previous = by.get((r["variant"], r["future_frames"] // 2))
      if r.get(stat) and previous and r["future_frames"] % 2 == 0:
        r["ratio_vs_half_length" + suffix] = r[stat] / previous
      naive_s = by.get(("naive_O(T^2)", r["future_frames"]))
      if r["variant"].startswith("carried") and naive_s and r.get(stat):
        r["speedup_over_naive" + suffix] = naive_s / r[stat]
  model = None  # frees its variables
  common.release_memory()
  return results, check


def run(
  protocol,
  future,
  sequences,
  per_sample_max,
  xla,
  scaling_config,
  scaling_samples,
  lengths,
  naive_max,
  warmup,
  repeats,
  output,
  argv=None,
):
  record = common.start_record(
    "sampling",
    argv,
    {
      "protocol": protocol,
      "future_frames": future,
      "sequences": sequences,
      "per_sample_max": per_sample_max,
      "xla": xla,
      "scaling_config": scaling_config,
      "scaling_samples": scaling_samples,
      "lengths": lengths,
      "naive_max_length": naive_max,
      "warmup": warmup,
      "repeats": repeats,
    },
  )
  record["output"] = output
  configs = {}
  for name, n in protocol:
    record["results"] += protocol_case(
      name, n, future, sequences, per_sample_max, xla, warmup, repeats
    )
    configs[name] = common.config_record(name, common.model_config(name))
  if scaling_config:
    results, check = scaling_case(
      scaling_config, scaling_samples, lengths, naive_max, warmup, repeats
    )
    record["results"] += results
    record["naive_equals_carried"] = check
    configs[scaling_config] = common.config_record(
      scaling_config, common.model_config(scaling_config)
    )
  record["configs"] = configs

  status = lambda r: (
    r["status"]
    if r["status"] == "ok"
    else f"{r['status']}: {r.get('error', '')[:100]}"
  )
  tables = []
  rows = [
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
      status(r),
    ]
    for r in record["results"]
    if r["section"] == "protocol"
  ]
  if rows:
    tables.append(
      common.markdown_table(
        [
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
        ],
        rows,
      )
    )
  rows = [
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
      status(r),
    ]
    for r in record["results"]
    if r["section"] == "scaling"
  ]
  if rows:
    tables.append(
      common.markdown_table(
        [
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
        ],
        rows,
      )
    )
    tables.append(
      f"naive vs carried-state samples, same seed: {record['naive_equals_carried']}"
    )
  return common.finish_record(record, tables)


def main(argv=None):
  parser = common.base_parser(__doc__.split("\n")[0], "sampling")
  parser.add_argument(
    "--protocol",
    default=DEFAULT_PROTOCOL,
    help="config:num_samples,... for the protocol section ('' to skip).",
  )
  parser.add_argument(
    "--future_frames", type=int, default=28, help="Predicted frames (protocol)."
  )
  parser.add_argument(
    "--sequences",
    type=int,
    default=1,
    help="Test sequences per call (protocol).",
  )
  parser.add_argument(
    "--per_sample_max",
    type=int,
    default=2,
    help="Samples drawn one call at a time for the per_sample variant (0: skip).",
  )
  parser.add_argument(
    "--xla", action="store_true", help="Also time the XLA-compiled sampler."
  )
  parser.add_argument(
    "--scaling_config",
    default="smmnist_quick",
    help="'' to skip the scaling section.",
  )
  parser.add_argument(
    "--scaling_samples", type=int, default=4, help="Samples per call (scaling)."
  )
  parser.add_argument(
    "--lengths", default="7,14,28,56", help="Numbers of predicted frames T."
  )
  parser.add_argument(
    "--naive_max_length",
    type=int,
    default=28,
    help="Longest T for the naive sampler (56 takes ~6 min here).",
  )
  args = parser.parse_args(argv)
  protocol = common.config_cases(args.protocol)
  if args.scaling_config:
    common.model_config(args.scaling_config)
  return run(
    protocol,
    args.future_frames,
    args.sequences,
    args.per_sample_max,
    args.xla,
    args.scaling_config,
    args.scaling_samples,
    common.int_list(args.lengths),
    args.naive_max_length,
    args.warmup,
    args.repeats,
    args.output,
    argv if argv is not None else sys.argv[1:],
  )


if __name__ == "__main__":
  main()
