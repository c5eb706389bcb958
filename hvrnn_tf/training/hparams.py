"""TensorBoard's HParams table: a run's settings and its final metrics.

A workdir is one HParams session (TensorBoard run WORKDIR): its events file
holds the settings (every ModelConfig and TrainConfig field, under its gin
name) and the experiment (those settings' names and the metrics). The
metrics are scalars of the session's sub-runs: the training curves in
WORKDIR/train (group "train", their last value) and eval's final numbers in
WORKDIR/eval (group "eval", written by evaluation/outputs.py). So
`tensorboard --logdir=runs` compares every run under runs/ in one table.
"""

import dataclasses

from tensorboard.plugins.hparams import api as hp

from hvrnn_tf.evaluation.metrics import best_of_n
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.training import summaries as summaries_lib
from hvrnn_tf.training.config import TrainConfig
from hvrnn_tf.training.config import reference

TRAIN_GROUP = "train"
EVAL_GROUP = "eval"
TRAIN_TAGS = ("loss", "nll", "kl", "grad_norm")


def best_of_n_tag(name: str) -> str:
  """The eval scalar of a best-of-N metric's mean (e.g. ssim_best_of_n)."""
  return f"{name}_best_of_n"


EVAL_TAGS = (
  *map(best_of_n_tag, best_of_n.HIGHER_IS_BETTER),
  "fvd_mean",
  "elbo/neg_elbo",
)


def _value(value):
  """A setting as an HParams value: bool, number or string."""
  if isinstance(value, (bool, int, float, str)):
    return value
  if callable(value):
    return reference(value)
  return str(value)


def settings(model_config: ModelConfig, train_config: TrainConfig) -> dict:
  """{gin name: value} of every model and training setting."""
  values = {}
  for scope, config in (
    ("model.ModelConfig", model_config),
    ("train", train_config),
  ):
    for field in dataclasses.fields(config):
      values[f"{scope}.{field.name}"] = _value(getattr(config, field.name))
  return values


def metrics() -> list:
  """The experiment's metrics: the TRAIN_TAGS and EVAL_TAGS of the session."""
  return [hp.Metric(tag, group=TRAIN_GROUP) for tag in TRAIN_TAGS] + [
    hp.Metric(tag, group=EVAL_GROUP) for tag in EVAL_TAGS
  ]


def write(
  workdir: str,
  model_config: ModelConfig,
  train_config: TrainConfig,
  chief: bool,
) -> None:
  """Writes the session (settings) and the experiment to WORKDIR's events."""
  values = settings(model_config, train_config)
  with summaries_lib.SummaryWriter(workdir, chief) as writer, writer.at(0):
    hp.hparams_config([hp.HParam(name) for name in values], metrics())
    hp.hparams(values, trial_id=workdir.rstrip("/"))
