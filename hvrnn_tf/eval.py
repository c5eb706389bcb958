"""Evaluates a trained checkpoint with the paper's protocol (sec. 5.2.1).

    python -m hvrnn_tf.eval --workdir=DIR --num_samples=100 --split=test \
        [--gin_file=... --gin_param=...] [--max_sequences=N] \
        [--future_frames=28] [--i3d_handle=...] [--lpips_weights=...]

For every test sequence N futures are drawn from its context in one model
call; SSIM (tf.image.ssim, and `ssim_svg`: SVG's scikit-image SSIM, which the
paper's SM-MNIST table follows), PSNR and LPIPS keep the best of the N
(highest / highest / highest / lowest, by the mean over predicted frames); FVD compares all test sequences
with one random sample per sequence (context included), repeated
--fvd_repeats times; the test ELBO and KL per latent channel come from the
posterior pass. Writes to DIR/eval (or --output_dir): metrics.json,
TensorBoard scalars, per_timestep.png, kl_per_channel.png and, for the first
--num_visualized sequences, sequence_<i>.gif / .png showing ground truth, the
best-SSIM sample and a random sample (predicted frames have a red border).

--baseline=copy_last_frame scores a trivial predictor (see `baselines`) on the
run's test data with the same code instead of the checkpoint (no ELBO/KL).

LPIPS and FVD need pretrained networks (see --lpips_weights, --i3d_handle);
when one cannot be loaded the metric is skipped, the reason is logged and
stored in metrics.json, and the other metrics are still computed. An empty
flag value skips the metric on purpose.
"""

from hvrnn_tf.utils import allocator

if __name__ == "__main__":
  # Restart under TCMalloc before TensorFlow is imported: afterwards the
  # restart would pay for that import twice.
  allocator.reexec_with_tcmalloc()

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from hvrnn_tf.data import digits as digits_lib
from hvrnn_tf.data import inputs
from hvrnn_tf.evaluation import baselines
from hvrnn_tf.evaluation import plots
from hvrnn_tf.evaluation import visualize
from hvrnn_tf.evaluation.metrics import best_of_n
from hvrnn_tf.evaluation.metrics import fvd
from hvrnn_tf.evaluation.metrics import lpips
from hvrnn_tf.evaluation.protocol import Evaluation
from hvrnn_tf.evaluation.protocol import load_optional_metrics
from hvrnn_tf.training import checkpointing
from hvrnn_tf.training import progress as progress_lib
from hvrnn_tf.utils import atomic_write

FLAGS = flags.FLAGS
STAND_IN_WARNING = (
  "evaluated on the offline stand-in digits (scikit-learn's "
  "8x8 digits upsampled), not MNIST: these numbers are not "
  "comparable with MNIST ones"
)


def define_flags():
  """Defines the command-line flags (only when run as a binary, so that other
  binaries' flags of the same name can be imported alongside)."""
  flags.DEFINE_string(
    "workdir", None, "Training workdir (checkpoints, operative_config.gin)."
  )
  flags.DEFINE_multi_string(
    "gin_file",
    [],
    "Gin files parsed after the run's operative config (e.g. evaluation data).",
  )
  flags.DEFINE_multi_string(
    "gin_param", [], "Gin bindings, e.g. data.make_dataset.file_pattern='...'."
  )
  flags.DEFINE_string(
    "output_dir", None, "Where to write; default WORKDIR/eval."
  )
  flags.DEFINE_string("split", "test", "Dataset split to evaluate.")
  flags.DEFINE_integer(
    "num_samples", 100, "Samples N per sequence (best of N)."
  )
  flags.DEFINE_integer(
    "future_frames",
    None,
    "Predicted frames; default the model's training value (BAIR protocol: 28).",
  )
  flags.DEFINE_integer(
    "max_sequences",
    None,
    "Evaluate only the first N sequences (required for an infinite dataset).",
  )
  flags.DEFINE_integer("batch_size", 8, "Sequences per model call.")
  flags.DEFINE_integer("seed", 0, "Seed of the samples and random picks.")
  flags.DEFINE_integer("num_visualized", 8, "Sequences written as GIF / PNG.")
  flags.DEFINE_float("fps", 4.0, "Frame rate of the GIFs.")
  _define_metric_flags()


def _define_metric_flags():
  """The flags of the networks behind FVD and LPIPS, and of baselines."""
  flags.DEFINE_string(
    "i3d_handle",
    fvd.I3D_HANDLE,
    "TF-Hub handle or local SavedModel dir of I3D; empty to skip FVD.",
  )
  flags.DEFINE_integer(
    "i3d_batch_size", fvd.I3D_BATCH_SIZE, "Videos per I3D call."
  )
  flags.DEFINE_integer("fvd_repeats", 5, "FVD repeats (mean and std reported).")
  flags.DEFINE_enum(
    "lpips_net",
    "alex",
    list(lpips.NETS),
    "LPIPS v0.1 backbone: alex (SAVP's and the paper's comparisons) or vgg.",
  )
  flags.DEFINE_string(
    "lpips_weights",
    None,
    "LPIPS v0.1 calibration weights "
    "of --lpips_net (path or URL, .pth or .npz); default the "
    "official release; empty to skip LPIPS.",
  )
  flags.DEFINE_string(
    "lpips_backbone_weights",
    None,
    "torchvision weights of "
    "the backbone LPIPS was calibrated on (path or URL); "
    "default the official ones.",
  )
  flags.DEFINE_enum(
    "baseline",
    None,
    list(baselines.BASELINES),
    "Score this "
    "trivial predictor instead of the checkpoint (same data "
    "and metrics; no ELBO).",
  )


def _write_scalars(output_dir, metrics, step):
  """TensorBoard scalars of the metrics present in `metrics`."""
  with tf.summary.create_file_writer(output_dir).as_default(step=step):
    for name in best_of_n.HIGHER_IS_BETTER:
      if name in metrics:
        tf.summary.scalar(f"{name}_best_of_n", metrics[name]["mean"])
    if "fvd" in metrics:
      tf.summary.scalar("fvd_mean", metrics["fvd"]["mean"])
      tf.summary.scalar("fvd_std", metrics["fvd"]["std"])
    if "elbo" not in metrics:
      return
    for name in ("neg_elbo", "nll", "kl"):
      tf.summary.scalar(f"elbo/{name}", metrics["elbo"][name])
    for level, (active, maximal) in enumerate(
      zip(metrics["kl"]["active"], metrics["kl"]["maximally_active"])
    ):
      tf.summary.scalar(f"active_units/level_{level + 1}", active)
      tf.summary.scalar(f"maximally_active_units/level_{level + 1}", maximal)


def write_outputs(
  output_dir,
  metrics,
  visuals,
  context_frames,
  latent_resolutions,
  step,
  fps=4.0,
):
  """Writes metrics.json, TensorBoard scalars, plots, GIFs and PNG strips."""
  os.makedirs(output_dir, exist_ok=True)
  atomic_write.write_text(
    os.path.join(output_dir, "metrics.json"), json.dumps(metrics, indent=2)
  )

  _write_scalars(output_dir, metrics, step)
  plots.plot_per_timestep(
    {
      name: metrics[name]["per_timestep"]
      for name in best_of_n.HIGHER_IS_BETTER
      if name in metrics
    },
    context_frames + 1,
    os.path.join(output_dir, "per_timestep.png"),
    metrics["protocol"]["num_samples"],
  )
  if "kl" in metrics:
    plots.plot_kl_per_channel(
      [np.array(k) for k in metrics["kl"]["per_channel"]],
      latent_resolutions,
      os.path.join(output_dir, "kl_per_channel.png"),
    )
  c = context_frames
  for i, (video, best, random) in enumerate(visuals):
    visualize.write_comparison(
      os.path.join(output_dir, f"sequence_{i}"), video, [best, random], c, fps
    )


def _test_dataset(config, split, batch_size, future_frames, max_sequences):
  """Test batches [B, c + future_frames, S, S, C], the first max_sequences."""
  dataset = inputs.dataset_for_config(
    config, split, batch_size, future_frames=future_frames
  )
  if max_sequences is None:
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
      raise ValueError(f"split {split!r} is infinite: pass max_sequences")
    return dataset
  return dataset.unbatch().take(max_sequences).batch(batch_size)


def _lpips_protocol(args) -> dict | None:
  """Which LPIPS was computed (None when skipped on purpose)."""
  if args["lpips_weights"] == "":  # pylint: disable=g-explicit-bool-comparison
    return None
  lin, backbone = lpips.weight_files(
    args["lpips_net"], args["lpips_weights"], args["lpips_backbone_weights"]
  )
  return {
    "version": "v0.1",
    "net": args["lpips_net"],
    "weights": lin,
    "backbone_weights": backbone,
  }


def _protocol(metrics, config, checkpoint_step, args) -> dict:
  """The protocol block of metrics.json: what was evaluated, and how."""
  future_frames = args["future_frames"]
  return {
    "checkpoint_step": checkpoint_step,
    "workdir": os.path.abspath(args["workdir"]),
    "predictor": args["baseline"] or "model",
    "num_samples": args["num_samples"],
    "context_frames": config.context_frames,
    "future_frames": future_frames,
    "horizon": (
      f"{future_frames} predicted frames (SVG's SM-MNIST "
      "evaluation: 25; the paper does not state its SM-MNIST "
      "horizon)"
    ),
    "best_of_n": best_of_n.SELECTION,
    "ssim": "tf.image.ssim: Gaussian 11x11, sigma 1.5, max_val 1",
    "ssim_svg": (
      "SVG's evaluation (scikit-image 0.14 compare_ssim "
      "defaults): uniform 7x7, sample covariance, data_range 2"
    ),
    "fvd": {
      "i3d_handle": args["i3d_handle"] or None,
      "repeats": args["fvd_repeats"],
      "samples": "one random sample per sequence, context included",
    },
    "lpips": _lpips_protocol(args),
    "seed": args["seed"],
    "dataset": {
      "split": args["split"],
      "num_sequences": metrics["ssim"]["num_sequences"],
      "sequence_length": config.context_frames + future_frames,
      "image_size": config.image_size,
      "channels": config.channels,
      "digits": inputs.digits_source(args["split"]),
      "gin_files": list(args["gin_files"]),
      "gin_params": list(args["gin_params"]),
    },
  }


def _check_args(
  num_samples, batch_size, fvd_repeats, max_sequences, i3d_handle
):
  for name, value in (
    ("num_samples", num_samples),
    ("batch_size", batch_size),
    ("fvd_repeats", fvd_repeats),
  ):
    if value < 1:
      raise ValueError(f"{name}={value} must be >= 1")
  if max_sequences is not None and max_sequences < (2 if i3d_handle else 1):
    raise ValueError(
      f"max_sequences={max_sequences}: FVD needs >= 2 "
      "sequences (or skip it with an empty i3d_handle)"
    )


def _evaluate(model, dataset, networks, args, checkpoint_step) -> Evaluation:
  """Feeds every test batch to a new Evaluation (settings from `run`'s
  `args`; networks: the LPIPS metric and I3D, or None), logging progress."""
  logging.info(
    "Evaluating %s (%s) at step %d: %d context -> %d predicted frames, "
    "best of %d",
    args["workdir"],
    args["baseline"] or "model",
    checkpoint_step,
    model.config.context_frames,
    args["future_frames"],
    args["num_samples"],
  )
  lpips_metric, i3d = networks
  evaluation = Evaluation(
    model,
    args["num_samples"],
    lpips_metric,
    i3d,
    args["fvd_repeats"],
    args["num_visualized"],
    args["seed"],
    with_elbo=args["baseline"] is None,
  )
  progress = progress_lib.Progress(0, args["max_sequences"], unit="sequences")
  done = 0
  for batch_index, video in enumerate(dataset):
    evaluation.add(video, batch_index)
    done += video.shape[0]
    logging.info(
      "eval: %d sequences x %d samples, %s",
      done,
      args["num_samples"],
      progress.report(done),
    )
  return evaluation


def _metrics(evaluation, skipped, config, checkpoint_step, args) -> dict:
  """The evaluation's metrics with what was skipped, the protocol and, on
  stand-in digits, a warning."""
  metrics = evaluation.metrics()
  metrics["skipped"] = skipped
  metrics["protocol"] = _protocol(metrics, config, checkpoint_step, args)
  if digits_lib.is_stand_in(metrics["protocol"]["dataset"]["digits"]):
    metrics["warning"] = STAND_IN_WARNING
    logging.warning(STAND_IN_WARNING)
  return metrics


def run(
  workdir,
  output_dir=None,
  gin_files=(),
  gin_params=(),
  split="test",
  num_samples=100,
  future_frames=None,
  max_sequences=None,
  batch_size=8,
  seed=0,
  i3d_handle=fvd.I3D_HANDLE,
  i3d_batch_size=fvd.I3D_BATCH_SIZE,
  fvd_repeats=5,
  lpips_net="alex",
  lpips_weights=None,
  lpips_backbone_weights=None,
  num_visualized=8,
  fps=4.0,
  baseline=None,
):
  """Restores the run in `workdir`, evaluates it and writes the outputs.

  With `baseline` (a `baselines.BASELINES` name) that predictor is scored on
  the run's test data instead of the checkpoint, with one sample per
  sequence (it is deterministic) and no ELBO.

  Returns the metrics dict written to metrics.json.
  """
  args = dict(locals())
  _check_args(num_samples, batch_size, fvd_repeats, max_sequences, i3d_handle)
  model, checkpoint_step = checkpointing.restore_model(
    workdir, gin_files, gin_params
  )
  config = model.config
  if baseline is not None:
    model, num_samples = baselines.BASELINES[baseline](config), 1
    args["num_samples"] = num_samples
  args["future_frames"] = future_frames = future_frames or config.future_frames
  dataset = _test_dataset(
    config, split, batch_size, future_frames, max_sequences
  )
  lpips_metric, i3d, skipped = load_optional_metrics(
    lpips_weights, lpips_backbone_weights, i3d_handle, i3d_batch_size, lpips_net
  )
  evaluation = _evaluate(
    model, dataset, (lpips_metric, i3d), args, checkpoint_step
  )
  metrics = _metrics(evaluation, skipped, config, checkpoint_step, args)
  output_dir = output_dir or os.path.join(workdir, "eval")
  write_outputs(
    output_dir,
    metrics,
    evaluation.visuals,
    config.context_frames,
    config.latent_resolutions,
    checkpoint_step,
    fps,
  )
  logging.info("Wrote %s", os.path.join(output_dir, "metrics.json"))
  return metrics


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    metrics = run(
      FLAGS.workdir,
      output_dir=FLAGS.output_dir,
      gin_files=FLAGS.gin_file,
      gin_params=FLAGS.gin_param,
      split=FLAGS.split,
      num_samples=FLAGS.num_samples,
      future_frames=FLAGS.future_frames,
      max_sequences=FLAGS.max_sequences,
      batch_size=FLAGS.batch_size,
      seed=FLAGS.seed,
      i3d_handle=FLAGS.i3d_handle,
      i3d_batch_size=FLAGS.i3d_batch_size,
      fvd_repeats=FLAGS.fvd_repeats,
      lpips_weights=FLAGS.lpips_weights,
      lpips_net=FLAGS.lpips_net,
      lpips_backbone_weights=FLAGS.lpips_backbone_weights,
      num_visualized=FLAGS.num_visualized,
      fps=FLAGS.fps,
      baseline=FLAGS.baseline,
    )
  except (ValueError, OSError) as e:
    sys.exit(f"hvrnn_tf.eval: error: {e}")
  summary = {
    k: v["mean"]
    for k, v in metrics.items()
    if isinstance(v, dict) and "mean" in v
  }
  if "elbo" in metrics:
    summary["neg_elbo"] = metrics["elbo"]["neg_elbo"]
  print(json.dumps(summary))


if __name__ == "__main__":
  define_flags()
  flags.mark_flag_as_required("workdir")
  app.run(main)
