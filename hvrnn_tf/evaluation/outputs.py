"""What `hvrnn_tf.eval` writes: metrics.json, TensorBoard scalars, the
per-timestep and KL plots, and GIF / PNG strips of the kept sequences."""

import contextlib
import json
import os

import numpy as np
import tensorflow as tf

from hvrnn_tf.evaluation import plots
from hvrnn_tf.evaluation import visualize
from hvrnn_tf.evaluation.metrics import best_of_n
from hvrnn_tf.training import hparams
from hvrnn_tf.utils import atomic_write


def _write_curves(output_dir, metrics, step, context_frames) -> None:
  """The best-of-N per-timestep curves as scalars `per_timestep/<metric>`
  with step = frame number, in the run OUTPUT_DIR/per_timestep_step_<step>
  (one run per evaluated checkpoint, so that curves overlay)."""
  logdir = os.path.join(output_dir, f"per_timestep_step_{step}")
  writer = tf.summary.create_file_writer(logdir)
  with contextlib.closing(writer), writer.as_default():
    for name in best_of_n.HIGHER_IS_BETTER:
      for t, value in enumerate(metrics.get(name, {}).get("per_timestep", [])):
        tf.summary.scalar(
          f"per_timestep/{name}", value, step=context_frames + 1 + t
        )


def _write_scalars(output_dir, metrics, step) -> None:
  """TensorBoard scalars of the metrics present in `metrics` at `step`."""
  writer = tf.summary.create_file_writer(output_dir)
  with contextlib.closing(writer), writer.as_default(step=step):
    for name in best_of_n.HIGHER_IS_BETTER:
      if name in metrics:
        tf.summary.scalar(hparams.best_of_n_tag(name), metrics[name]["mean"])
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


def write(output_dir, metrics, visuals, model_config, step, fps=4.0) -> None:
  """Writes metrics.json, TensorBoard scalars (at `step`), plots, GIFs and
  PNG strips.

  Args:
    output_dir: created if missing.
    metrics: the evaluation's metrics, with its "protocol" block.
    visuals: (video, best sample, random sample) per kept sequence.
    model_config: the evaluated model's ModelConfig.
    step: the checkpoint's step.
    fps: frame rate of the GIFs.
  """
  c = model_config.context_frames
  tf.io.gfile.makedirs(output_dir)
  atomic_write.write_text(
    os.path.join(output_dir, "metrics.json"), json.dumps(metrics, indent=2)
  )

  _write_scalars(output_dir, metrics, step)
  _write_curves(output_dir, metrics, step, c)
  plots.plot_per_timestep(
    {
      name: metrics[name]["per_timestep"]
      for name in best_of_n.HIGHER_IS_BETTER
      if name in metrics
    },
    c + 1,
    os.path.join(output_dir, "per_timestep.png"),
    metrics["protocol"]["num_samples"],
  )
  if "kl" in metrics:
    plots.plot_kl_per_channel(
      [np.array(k) for k in metrics["kl"]["per_channel"]],
      model_config.latent_resolutions,
      os.path.join(output_dir, "kl_per_channel.png"),
    )
  for i, (video, best, random) in enumerate(visuals):
    visualize.write_comparison(
      os.path.join(output_dir, f"sequence_{i}"), video, [best, random], c, fps
    )
