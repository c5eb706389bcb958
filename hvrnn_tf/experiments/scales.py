"""Scales: how a study's paper-size rows are shrunk to what a machine trains.

A scale is a gin file, gin/scales/<name>.gin. It binds the sizes of a run
(SCALE_BINDINGS: frames, width, batch, steps, learning rate) the way any run
config does, so that it can include one (tiny.gin includes gin/tiny.gin), and
the study's own settings as `ablation.Scale.*`. Only those bindings are read:
every row keeps its latent levels, decoder and likelihood (`row_bindings`).
"""

import dataclasses
import pathlib

import gin
from hvrnn_tf.data import inputs  # noqa: F401  (registers data.*)
from hvrnn_tf.data import smmnist
from hvrnn_tf.experiments import studies
from hvrnn_tf.model import encoder
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.training import task  # noqa: F401  (registers train.*: scale files bind it)
from hvrnn_tf.utils import gin_parsing

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SCALE_DIR = "gin/scales"
NAMES = ("tiny", "small", "medium", "full")
DATASETS = ("smmnist", "gin")

# Scale field -> the run binding a scale file sets it with (unbound: None,
# the rows keep their gin files' values).
SCALE_BINDINGS = {
  "n_hid": "model.ModelConfig.n_hid",
  "image_size": "model.ModelConfig.image_size",
  "context_frames": "model.ModelConfig.context_frames",
  "future_frames": "model.ModelConfig.future_frames",
  "batch_size": "train.batch_size",
  "num_steps": "train.num_steps",
  "lr_warmup_epochs": "train.lr_warmup_epochs",
}
_REQUIRED = (
  "image_size",
  "context_frames",
  "future_frames",
  "batch_size",
  "num_steps",
)


@gin.configurable(
  module="ablation",
  allowlist=[
    "description",
    "epochs",
    "eval_sequences",
    "train_eval_sequences",
    "num_samples",
    "seeds",
  ],
)
@dataclasses.dataclass(frozen=True)
class Scale:
  """How a study is shrunk (None: keep the gin file's value).

  The frame settings (image_size, context_frames, future_frames) apply with
  --dataset=smmnist only. `epochs`: the run is num_steps / epochs steps per
  "epoch", the unit of the gin files' warmup schedules. `lr`:
  (train.learning_rate, train.lr_reference_batch), the base rate and the
  global batch at which the rate stays at the base rate (no ramp).
  """

  description: str
  n_hid: int | None
  image_size: int
  context_frames: int
  future_frames: int
  batch_size: int
  num_steps: int
  epochs: float | None
  lr: tuple[float, int] | None
  lr_warmup_epochs: float | None
  eval_sequences: int
  train_eval_sequences: int
  num_samples: int
  seeds: tuple[int, ...]


def _bound(key: str):
  try:
    return gin.query_parameter(key)
  except ValueError:  # not bound
    return None


def load(name: str) -> Scale:
  """The scale of gin/scales/`name`.gin.

  Raises:
    ValueError: an unknown scale, or a scale file that misses a size.
  """
  if name not in NAMES:
    raise ValueError(f"scale {name!r} is not one of {NAMES}")
  path = f"{SCALE_DIR}/{name}.gin"
  gin.clear_config()
  try:
    gin_parsing.parse_gin([str(REPO_ROOT / path)])
    run = {field: _bound(key) for field, key in SCALE_BINDINGS.items()}
    missing = [SCALE_BINDINGS[f] for f in _REQUIRED if run[f] is None]
    if missing:
      raise ValueError(f"{path} binds no {', '.join(missing)}")
    rate = _bound("train.learning_rate")
    run["lr"] = (
      None
      if rate is None
      else (rate, gin.query_parameter("train.lr_reference_batch"))
    )
    return Scale(**run)
  finally:
    gin.clear_config()


def with_overrides(scale: Scale, **overrides) -> Scale:
  """`scale` with the non-None overrides applied."""
  return dataclasses.replace(
    scale, **{k: v for k, v in overrides.items() if v is not None}
  )


def paper_config(row: studies.Row, gin_params=()) -> ModelConfig:
  """The ModelConfig of `row`'s gin file (plus `gin_params`), unscaled."""
  gin.clear_config()
  gin_parsing.parse_gin([str(REPO_ROOT / row.gin_file)], gin_params)
  return ModelConfig()


def scaled_latent_channels(config: ModelConfig, n_hid: int) -> tuple:
  """Latent channels at width n_hid: each level's scale with n_hid /
  config.n_hid (at least 1), as they are the encoder's widths there."""
  return tuple(
    max(1, round(z * n_hid / config.n_hid)) for z in config.latent_channels
  )


def _smmnist_bindings(config: ModelConfig, scale: Scale) -> dict:
  """Frames, 1 channel and a Bernoulli likelihood of SM-MNIST at `scale`."""
  resolutions = encoder.pyramid_resolutions(scale.image_size)
  missing = set(config.latent_resolutions) - set(resolutions)
  if missing:
    raise ValueError(
      f"image_size {scale.image_size} has no latent "
      f"resolutions {sorted(missing)}"
    )
  model = "model.ModelConfig."
  return {
    model + "image_size": scale.image_size,
    model + "channels": 1,
    model + "context_frames": scale.context_frames,
    model + "future_frames": scale.future_frames,
    # The multipliers of the coarsest len(resolutions) stages of the row.
    model + "channel_multipliers": config.channel_multipliers[
      -len(resolutions) :
    ],
    model + "decoder_convlstm_layers": min(
      config.decoder_convlstm_layers, len(resolutions)
    ),
    model + "reconstruction_loss": "bernoulli",
    "data.make_dataset.source": "smmnist",
    # SVG's layout where the frames fit its 32x32 digits (not at tiny).
    "data.make_dataset.smmnist_style": (
      "svg"
      if scale.image_size >= smmnist.STYLES["svg"].min_image_size
      else "mnist28"
    ),
    "data.make_dataset.num_test_sequences": max(scale.eval_sequences, 1),
  }


def _training_bindings(scale: Scale, seed: int) -> dict:
  """Steps, batch, seed, logging and schedules of a row's training run."""
  steps = scale.num_steps
  b = {
    "train.num_steps": steps,
    "train.batch_size": scale.batch_size,
    "train.seed": seed,
    "train.log_every": max(1, min(steps // 10, 1000)),
    "train.summary_every": max(1, min(steps // 20, 100)),
    "train.checkpoint_every": max(1, min(steps // 5, 5000)),
    "train.image_summary_every": 0,  # eval draws the samples
    "train.sample_sequences": 0,
  }
  if scale.epochs:
    b["train.steps_per_epoch"] = max(1, round(steps / scale.epochs))
  if scale.lr:
    b["train.learning_rate"], b["train.lr_reference_batch"] = scale.lr
  if scale.lr_warmup_epochs is not None:
    b["train.lr_warmup_epochs"] = scale.lr_warmup_epochs
  return b


def _literal(value) -> str:
  if isinstance(value, (tuple, list)):
    return (
      "("
      + ", ".join(_literal(v) for v in value)
      + ("," if len(value) == 1 else "")
      + ")"
    )
  return repr(value)


def row_bindings(
  config: ModelConfig, scale: Scale, dataset: str, seed: int
) -> list[str]:
  """Gin bindings that shrink the paper-size `config` of a row to `scale`."""
  b = _smmnist_bindings(config, scale) if dataset == "smmnist" else {}
  if scale.n_hid is not None:
    b["model.ModelConfig.n_hid"] = scale.n_hid
    b["model.ModelConfig.latent_channels"] = scaled_latent_channels(
      config, scale.n_hid
    )
  b.update(_training_bindings(scale, seed))
  return [f"{k} = {_literal(v)}" for k, v in b.items()]


def configure_row(
  row: studies.Row,
  scale: Scale,
  dataset: str,
  seed: int,
  gin_files=(),
  gin_params=(),
) -> ModelConfig:
  """Parses the row's gin file, the scale's bindings, then the user's
  `gin_files` / `gin_params` (which win). Returns the resulting ModelConfig."""
  base = paper_config(row, gin_params)
  bindings = row_bindings(base, scale, dataset, seed)
  gin.clear_config()
  gin_parsing.parse_gin(
    [str(REPO_ROOT / row.gin_file), *gin_files], bindings + list(gin_params)
  )
  return ModelConfig()
