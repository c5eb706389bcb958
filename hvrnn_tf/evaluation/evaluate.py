"""Evaluates a training run's checkpoint with the paper's protocol (sec.
5.2.1) and writes the results: what `python -m hvrnn_tf.eval` does.

For every test sequence N futures are drawn from its context in one model
call; SSIM (tf.image.ssim, and `ssim_svg`: SVG's scikit-image SSIM, which the
paper's SM-MNIST table follows), PSNR and LPIPS keep the best of the N
(highest / highest / highest / lowest, by the mean over predicted frames);
FVD compares all test sequences with one random sample per sequence (context
included), repeated eval.fvd_repeats times; the test ELBO and KL per latent
channel come from the posterior pass. Writes to WORKDIR/eval (or
eval.output_dir): metrics.json, TensorBoard scalars, per_timestep.png,
kl_per_channel.png and, for the first eval.num_visualized sequences,
sequence_<i>.gif / .png showing ground truth, the best-SSIM sample and a
random sample (predicted frames have a red border).

eval.baseline = 'copy_last_frame' scores a trivial predictor (see
`baselines`) on the run's test data with the same code instead of the
checkpoint (no ELBO/KL).

LPIPS and FVD need pretrained networks (eval.lpips_weights,
eval.i3d_handle); when one cannot be loaded the metric is skipped, the reason
is logged and stored in metrics.json, and the other metrics are still
computed. An empty value skips the metric on purpose.
"""

import dataclasses
import os

from absl import logging
import tensorflow as tf

from hvrnn_tf.data import digits as digits_lib
from hvrnn_tf.data import inputs
from hvrnn_tf.evaluation import baselines
from hvrnn_tf.evaluation import outputs
from hvrnn_tf.evaluation import protocol
from hvrnn_tf.evaluation.config import EvalConfig
from hvrnn_tf.evaluation.metrics import best_of_n
from hvrnn_tf.evaluation.metrics import lpips
from hvrnn_tf.training import hparams
from hvrnn_tf.training import progress as progress_lib
from hvrnn_tf.training import workdir as workdir_lib
from hvrnn_tf.utils import filesystems
from hvrnn_tf.utils import paths

STAND_IN_WARNING = (
  "evaluated on the offline stand-in digits (scikit-learn's "
  "8x8 digits upsampled), not MNIST: these numbers are not "
  "comparable with MNIST ones"
)


@dataclasses.dataclass(frozen=True)
class _Run:
  """What is evaluated: the run's workdir, checkpoint step and the gin
  overrides it was loaded with (recorded in metrics.json)."""

  workdir: str
  step: int
  gin_files: tuple = ()
  gin_params: tuple = ()


def _test_dataset(model_config, config: EvalConfig):
  """Test batches [B, c + future_frames, S, S, C], the first max_sequences."""
  dataset = inputs.dataset_for_config(
    model_config,
    config.split,
    config.batch_size,
    future_frames=config.future_frames,
  )
  if config.max_sequences is None:
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
      raise ValueError(
        f"split {config.split!r} is infinite: set eval.max_sequences"
      )
    return dataset
  return dataset.unbatch().take(config.max_sequences).batch(config.batch_size)


def _lpips_protocol(config: EvalConfig) -> dict | None:
  """Which LPIPS was computed (None when skipped on purpose)."""
  if config.lpips_weights == "":  # pylint: disable=g-explicit-bool-comparison
    return None
  lin, backbone = lpips.weight_files(
    config.lpips_net, config.lpips_weights, config.lpips_backbone_weights
  )
  return {
    "version": "v0.1",
    "net": config.lpips_net,
    "weights": lin,
    "backbone_weights": backbone,
  }


def _protocol(metrics, model_config, config: EvalConfig, run: _Run) -> dict:
  """The protocol block of metrics.json: what was evaluated, and how."""
  future_frames = config.future_frames
  return {
    "checkpoint_step": run.step,
    "workdir": paths.absolute(run.workdir),
    "predictor": config.baseline or "model",
    "num_samples": config.num_samples,
    "context_frames": model_config.context_frames,
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
      "i3d_handle": config.i3d_handle or None,
      "repeats": config.fvd_repeats,
      "samples": "one random sample per sequence, context included",
    },
    "lpips": _lpips_protocol(config),
    "seed": config.seed,
    "dataset": {
      "split": config.split,
      "num_sequences": metrics["ssim"]["num_sequences"],
      "sequence_length": model_config.context_frames + future_frames,
      "image_size": model_config.image_size,
      "channels": model_config.channels,
      "digits": inputs.digits_source(config.split),
      "gin_files": list(run.gin_files),
      "gin_params": list(run.gin_params),
    },
  }


def _evaluate(predictor, dataset, config: EvalConfig, run: _Run):
  """(Evaluation fed every test batch, skipped metrics), logging progress."""
  logging.info(
    "Evaluating %s (%s) at step %d: %d context -> %d predicted frames, "
    "best of %d",
    run.workdir,
    config.baseline or "model",
    run.step,
    predictor.config.context_frames,
    config.future_frames,
    config.num_samples,
  )
  lpips_metric, i3d, skipped = protocol.load_optional_metrics(config)
  evaluation = protocol.Evaluation(
    predictor,
    config.num_samples,
    lpips_metric,
    i3d,
    config.fvd_repeats,
    config.num_visualized,
    config.seed,
    with_elbo=config.baseline is None,
  )
  progress = progress_lib.Progress(0, config.max_sequences, unit="sequences")
  done = 0
  for batch_index, video in enumerate(dataset):
    evaluation.add(video, batch_index)
    done += video.shape[0]
    logging.info(
      "eval: %d sequences x %d samples, %s",
      done,
      config.num_samples,
      progress.report(done),
    )
  return evaluation, skipped


def _for_model(config: EvalConfig, model):
  """(predictor, config): the model or the configured baseline, and
  `config` with its defaults filled in (a baseline draws one sample)."""
  model_config = model.config
  config = dataclasses.replace(
    config, future_frames=config.future_frames or model_config.future_frames
  )
  if config.baseline is None:
    return model, config
  predictor = baselines.BASELINES[config.baseline](model_config)
  return predictor, dataclasses.replace(config, num_samples=1)


def run(
  workdir: str,
  config: EvalConfig | None = None,
  gin_files=(),
  gin_params=(),
  checkpoint: int | None = None,
) -> dict:
  """Restores the run in `workdir`, evaluates it and writes the outputs.

  Args:
    workdir: the training run.
    config: the settings; None: EvalConfig() as gin binds it once the run's
      operative config, `gin_files` and `gin_params` are parsed.
    gin_files, gin_params: gin overrides of the run's configuration (e.g.
      evaluation data, `eval.*` settings), recorded in metrics.json.
    checkpoint: the step to evaluate; None: the latest checkpoint.
  Returns:
    The metrics dict written to metrics.json.
  Raises:
    ValueError, OSError: bad settings (the message names them), a run
      that cannot be loaded or an output directory that cannot be written
      (checked before evaluating).
  """
  model, step = workdir_lib.load_model(
    workdir, gin_files, gin_params, checkpoint
  )
  predictor, config = _for_model(config or EvalConfig(), model)
  run_info = _Run(workdir, step, tuple(gin_files), tuple(gin_params))
  dataset = _test_dataset(model.config, config)
  output_dir = config.output_dir or os.path.join(workdir, hparams.EVAL_GROUP)
  filesystems.check_writable(output_dir, "eval.output_dir")
  evaluation, skipped = _evaluate(predictor, dataset, config, run_info)
  metrics = evaluation.metrics()
  metrics["skipped"] = skipped
  metrics["protocol"] = _protocol(metrics, model.config, config, run_info)
  if digits_lib.is_stand_in(metrics["protocol"]["dataset"]["digits"]):
    metrics["warning"] = STAND_IN_WARNING
    logging.warning(STAND_IN_WARNING)
  try:
    outputs.write(
      output_dir, metrics, evaluation.visuals, model.config, step, config.fps
    )
  except tf.errors.OpError as e:
    raise OSError(filesystems.error_line(output_dir, e, "cannot write")) from e
  logging.info("Wrote %s", os.path.join(output_dir, "metrics.json"))
  return metrics


def summary(metrics: dict) -> dict:
  """The headline numbers of `metrics`: each metric's mean and the -ELBO."""
  headline = {
    k: v["mean"]
    for k, v in metrics.items()
    if isinstance(v, dict) and "mean" in v
  }
  if "elbo" in metrics:
    headline["neg_elbo"] = metrics["elbo"]["neg_elbo"]
  return headline
