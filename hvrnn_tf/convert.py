"""Imports a checkpoint of the authors' PyTorch release as a training workdir.

    python -m hvrnn_tf.convert --release_checkpoint=model.pth \
        --gin_file=bair.gin --workdir=runs/bair_release

The input is a state dict saved by the release's main.py
(`torch.save(model.state_dict())`, keys with or without DataParallel's
`module.` prefix) of s2s_big_hier_v4 (64x64: bair.gin, smmnist.gin, the
Table 2 configs) or s2s_big_hier_128 (cityscapes.gin). The width is read from
the state dict; convert sets what the release's model needs besides the gin
file (n_hid, latent channels = the encoder's width at each level,
model.ModelConfig.release_group_counts = True) and records it in the
workdir's operative_config.gin. The workdir then holds checkpoint 0, which
train (to continue training), eval, sample and export accept as their own.

Every release tensor fills exactly one variable (release_weights) and every
variable is filled, else one line names the first mismatch and nothing is
written. torch is needed only here, and is no dependency of the project.
"""

import io
import os
import sys

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

import gin
from hvrnn_tf.data import inputs  # noqa: F401 (the gin files bind data.*)
from hvrnn_tf.model import release_weights
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.training import checkpointing
from hvrnn_tf.training.config import TrainConfig
from hvrnn_tf.training.trainer import Trainer
from hvrnn_tf.utils import atomic_write
from hvrnn_tf.utils import filesystems
from hvrnn_tf.utils import gin_parsing

FLAGS = flags.FLAGS


def define_flags():
  """Defined when run as a binary: train's --workdir is the same flag name."""
  flags.DEFINE_string(
    "release_checkpoint", None, "The release's state dict (.pth)."
  )
  flags.DEFINE_string("workdir", None, "New workdir to create.")
  flags.DEFINE_multi_string("gin_file", [], "Gin config files (the model's).")
  flags.DEFINE_multi_string("gin_param", [], "Further gin bindings.")


TORCH_HINT = (
  "torch is needed to read the release's checkpoint and is no dependency of "
  "hvrnn_tf: install it next to it (pip install torch) or in its own "
  "virtualenv and run convert there"
)
STEM_KEY = "emb_net.0.weight"


def load_state_dict(path: str) -> dict:
  """{name: float32 numpy array} of a PyTorch state dict file."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError(TORCH_HINT) from e
  try:
    with tf.io.gfile.GFile(path, "rb") as f:
      data = io.BytesIO(f.read())
  except tf.errors.NotFoundError as e:
    raise FileNotFoundError(f"release checkpoint {path} not found") from e
  except tf.errors.OpError as e:
    raise OSError(filesystems.error_line(path, e, "cannot be read")) from e
  try:
    state = torch.load(data, map_location="cpu", weights_only=True)
  except Exception as e:  # torch raises many types for a damaged file
    raise ValueError(
      f"cannot read {path} as a PyTorch state dict (truncated or not a "
      f".pth?): {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    ) from e
  if not isinstance(state, dict) or not all(
    hasattr(v, "numpy") for v in state.values()
  ):
    raise ValueError(f"{path} holds no state dict of tensors")
  return {k: v.float().numpy() for k, v in state.items()}


def release_bindings(state: dict) -> list[str]:
  """Gin bindings for the model whose weights `state` holds."""
  if STEM_KEY not in state:
    raise release_weights.ConversionError(
      f"the state dict has no {STEM_KEY}: not a checkpoint of the release's "
      "s2s_big_hier_v4 or s2s_big_hier_128"
    )
  n_hid = int(state[STEM_KEY].shape[0])
  base = ModelConfig()
  widths = dict(
    zip(base.resolutions, [n_hid * m for m in base.channel_multipliers])
  )
  latent_channels = tuple(widths[r] for r in base.latent_resolutions)
  return [
    f"model.ModelConfig.n_hid = {n_hid}",
    f"model.ModelConfig.latent_channels = {latent_channels}",
    "model.ModelConfig.release_group_counts = True",
  ]


def _check_new_workdir(workdir: str) -> None:
  try:
    used = tf.io.gfile.exists(workdir) and tf.io.gfile.listdir(workdir)
  except tf.errors.OpError as e:
    raise OSError(
      "workdir " + filesystems.error_line(workdir, e, "cannot be read")
    ) from e
  if used:
    raise FileExistsError(
      f"workdir {workdir} exists and is not empty: convert writes a new one"
    )


def convert(release_checkpoint, workdir, gin_files=(), gin_params=()) -> str:
  """Writes `workdir` with checkpoint 0 from the release's state dict file.

  Returns the checkpoint's path. Raises (before writing anything):
    ImportError: no torch. ValueError (ConversionError): a state dict that
    does not fit the configured model, a bad file or a bad gin setting.
    FileExistsError: a non-empty workdir.
  """
  _check_new_workdir(workdir)
  state = load_state_dict(release_checkpoint)
  return convert_state(
    state, workdir, gin_files, gin_params, release_checkpoint
  )


def convert_state(
  state, workdir, gin_files=(), gin_params=(), source=""
) -> str:
  """`convert` from a state dict already read ({name: numpy array})."""
  _check_new_workdir(workdir)
  state = release_weights.strip_prefix(state)
  gin.clear_config()
  gin_parsing.parse_gin(gin_files, gin_params)
  bindings = release_bindings(state)
  gin_parsing.parse_gin((), bindings)
  trainer = Trainer(ModelConfig(), TrainConfig())
  skipped = release_weights.assign(trainer.model, state)
  if skipped:
    logging.info(
      "Skipped %d tensors of the release's never-called module: %s",
      len(skipped),
      ", ".join(skipped),
    )
  config = "".join(
    [
      f"# Converted by hvrnn_tf.convert from {source or 'a state dict'}, which set\n"
    ]
    + [f"#   {binding}\n" for binding in bindings]
    + ["\n", gin.config_str()]
  )
  return _write(workdir, trainer, config)


def _write(workdir: str, trainer: Trainer, config: str) -> str:
  """Writes the checkpoint and config into a scratch folder, then moves it."""
  workdir = workdir.rstrip("/")

  def write(scratch: str) -> None:
    manager = tf.train.CheckpointManager(
      checkpointing.checkpoint(**trainer.checkpoint_objects()),
      os.path.join(scratch, checkpointing.CHECKPOINT_DIR),
      max_to_keep=None,
    )
    checkpointing.save(manager, 0)
    atomic_write.write_text(
      os.path.join(scratch, checkpointing.OPERATIVE_CONFIG), config
    )
    if tf.io.gfile.isdir(workdir):
      tf.io.gfile.rmtree(workdir)  # empty (_check_new_workdir)

  try:
    atomic_write.write_with(workdir, write)
  except tf.errors.OpError as e:
    raise OSError(
      "workdir " + filesystems.error_line(workdir, e, "cannot be written")
    ) from e
  return tf.train.latest_checkpoint(
    os.path.join(workdir, checkpointing.CHECKPOINT_DIR)
  )


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    path = convert(
      FLAGS.release_checkpoint, FLAGS.workdir, FLAGS.gin_file, FLAGS.gin_param
    )
  except (ImportError, ValueError, OSError) as e:
    sys.exit(f"hvrnn_tf.convert: error: {e}")
  print(f"hvrnn_tf.convert: wrote {path}")


def run():
  """The `hvrnn-convert` console script (pyproject.toml)."""
  define_flags()
  flags.mark_flags_as_required(["release_checkpoint", "workdir"])
  app.run(main)


if __name__ == "__main__":
  run()
