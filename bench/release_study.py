"""Ours and the authors' release trained at the same budget on the same batches.

    python -m bench.release_study --stage=data      # the batch stream, once
    python -m bench.release_study --stage=release   # the release's training run
    python -m bench.release_study --stage=ours      # hvrnn_tf.train, same recipe
    python -m bench.release_study --stage=eval      # both, by our metric code

The task is gin/smmnist_cpu.gin's (SM-MNIST 64x64 from real MNIST digits,
5 -> 10 frames, Bernoulli likelihood, its schedules) at --n_hid with the
release's z widths and GroupNorm counts, so that both sides are the same
network (20.1M parameters at n_hid 16). Each side starts from its own
framework's default init and draws its own noise; the release keeps its own
one-sample KL (losses.kl_loss). Both read the same batches: the stream our
trainer reads (seed train.seed), dumped as uint8 for the release's driver.
Both runs resume from their checkpoints when started again.
"""

import json
import os
import subprocess

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

# --release_dir, --torch_python, --mnist_dir, --n_hid and --seed are bench.parity's.
from bench import parity
from hvrnn_tf.data import inputs
from hvrnn_tf.evaluation import visualize
from hvrnn_tf.evaluation.metrics import best_of_n
from hvrnn_tf.evaluation.metrics import image_metrics
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.training import checkpointing
from hvrnn_tf.training import config as train_config_lib
from hvrnn_tf.training import schedules
from hvrnn_tf.utils import gin_parsing

FLAGS = flags.FLAGS


def define_flags():
  """bench.parity's flags and the study's own, when run as a binary."""
  parity.define_flags()
  flags.DEFINE_enum(
    "stage",
    "data",
    ["data", "release", "ours", "eval", "pictures"],
    "What to run.",
  )
  flags.DEFINE_integer("test_sequences", 64, "Test sequences evaluated.")
  flags.DEFINE_integer(
    "steps",
    None,
    "Train to this step (default: train.num_steps); re-run to go on.",
  )
  flags.DEFINE_integer("num_samples", 20, "Samples per sequence (best of N).")
  flags.DEFINE_string("study_dir", "runs/study", "Where both runs live.")


GIN_FILE = "smmnist_cpu.gin"


def gin_params() -> list[str]:
  """smmnist_cpu.gin at FLAGS.n_hid as the release builds it."""
  n = FLAGS.n_hid
  steps = [f"train.num_steps = {FLAGS.steps}"] if FLAGS.steps else []
  return steps + [
    f"model.ModelConfig.n_hid = {n}",
    f"model.ModelConfig.latent_channels = {(8 * n, 8 * n, 2 * n)}",
    "model.ModelConfig.release_group_counts = True",
    f"data.make_dataset.mnist_dir = {FLAGS.mnist_dir!r}",
  ]


def _configs():
  gin_parsing.parse_gin([GIN_FILE], gin_params())
  return ModelConfig(), train_config_lib.TrainConfig()


def batches_path() -> str:
  return os.path.join(FLAGS.study_dir, "train_batches_uint8.npy")


def dump_batches() -> None:
  """The trainer's batch stream as uint8 [num_steps, B, T, S, S, C]."""
  model_config, config = _configs()
  dataset = inputs.dataset_for_config(
    model_config, "train", config.batch_size, seed=config.seed
  )
  os.makedirs(FLAGS.study_dir, exist_ok=True)
  shape = (config.num_steps, config.batch_size, model_config.sequence_length)
  shape += (model_config.image_size,) * 2 + (model_config.channels,)
  out = np.lib.format.open_memmap(
    batches_path() + ".tmp.npy", "w+", np.uint8, shape
  )
  for index, batch in enumerate(dataset.take(config.num_steps)):
    out[index] = np.round(batch.numpy() * 255.0).astype(np.uint8)
  out.flush()
  os.replace(batches_path() + ".tmp.npy", batches_path())


def release_command() -> list[str]:
  """The driver's study_train under the recipe of smmnist_cpu.gin."""
  model_config, config = _configs()
  return parity.driver_argv(
    "study_train",
    context_frames=model_config.context_frames,
    inputs=batches_path(),
    out=os.path.join(FLAGS.study_dir, "release"),
    steps=config.num_steps,
    checkpoint_every=config.checkpoint_every,
    threads=1,
    **schedule_options(config),
  )


def schedule_options(config) -> dict:
  """The driver's options for TrainConfig `config`'s recipe (its schedules:
  schedules.WarmupLearningRate and the beta warmup)."""
  peak = schedules.scaled_learning_rate(
    config.learning_rate, config.batch_size, config.lr_reference_batch
  )
  return {
    "lr": min(config.learning_rate, peak),
    "lr_peak": peak,
    "lr_warmup_steps": config.steps(config.lr_warmup_epochs),
    "beta": config.beta,
    "beta_warmup_steps": config.steps(config.beta_warmup_epochs),
    "weight_decay": config.weight_decay,
  }


def ours_command() -> list[str]:
  return [
    ".venv/bin/python",
    "-m",
    "hvrnn_tf.train",
    f"--gin_file={GIN_FILE}",
    f"--workdir={os.path.join(FLAGS.study_dir, 'ours')}",
  ] + [f"--gin_param={p}" for p in gin_params()]


def _test_videos() -> np.ndarray:
  """The first FLAGS.test_sequences test sequences, float32 in [0, 1]."""
  model_config, _ = _configs()
  dataset = inputs.dataset_for_config(
    model_config, "test", FLAGS.test_sequences
  )
  return next(iter(dataset)).numpy()


def score(truth: np.ndarray, samples: np.ndarray) -> dict:
  """Best-of-N SSIM and PSNR of samples [S, N, F, H, W, C] (our metric code)."""
  result = {}
  for name, per_frame in (
    ("ssim", image_metrics.ssim_per_frame),
    ("psnr", image_metrics.psnr_per_frame),
  ):
    scores = np.concatenate(
      [
        per_frame(truth[i : i + 8], samples[i : i + 8])
        for i in range(0, len(truth), 8)
      ]
    )
    kept = best_of_n.best_of_n(scores, best_of_n.HIGHER_IS_BETTER[name])
    result[name] = best_of_n.summarize(kept.per_timestep)
  return result


def evaluate_release(videos: np.ndarray) -> dict:
  path = os.path.join(FLAGS.study_dir, "test_videos_uint8.npy")
  np.save(path, np.round(videos * 255).astype(np.uint8))
  out = os.path.join(FLAGS.study_dir, "release_samples.npy")
  c = _configs()[0].context_frames
  command = parity.driver_argv(
    "study_eval",
    context_frames=c,
    state=os.path.join(FLAGS.study_dir, "release.pt"),
    inputs=path,
    out=out,
    samples=FLAGS.num_samples,
  )
  done = subprocess.run(command, check=True, capture_output=True, text=True)
  elbo = json.loads(done.stdout.strip().splitlines()[-1])
  return {**elbo, **score(videos[:, c:], np.load(out))}


def evaluate_ours() -> dict:
  workdir = os.path.join(FLAGS.study_dir, "ours")
  subprocess.run(
    [
      ".venv/bin/python",
      "-m",
      "hvrnn_tf.eval",
      f"--workdir={workdir}",
      f"--gin_param=eval.num_samples={FLAGS.num_samples}",
      f"--gin_param=eval.max_sequences={FLAGS.test_sequences}",
      "--gin_param=eval.i3d_handle=''",
      "--gin_param=eval.lpips_weights=''",
    ],
    check=True,
  )
  with open(os.path.join(workdir, "eval", "metrics.json")) as f:
    return json.load(f)


def pictures(path: str, sequences=(0, 1)) -> None:
  """Truth, ours' and the release's best-of-N sample (by SSIM) per sequence."""
  videos = _test_videos()[list(sequences)]
  c = _configs()[0].context_frames
  theirs = np.load(os.path.join(FLAGS.study_dir, "release_samples.npy"))
  model, _ = checkpointing.restore_model(os.path.join(FLAGS.study_dir, "ours"))
  ours = model.sample(
    videos[:, :c], videos.shape[1] - c, theirs.shape[1], tf.constant([0, 1])
  ).numpy()
  rows = []
  for i, index in enumerate(sequences):
    rows.append(videos[i, c:])
    for samples in (ours[i], theirs[index]):
      scores = image_metrics.ssim_per_frame(
        videos[i : i + 1, c:], samples[None]
      )
      rows.append(samples[int(np.argmax(np.mean(scores[0], axis=1)))])
  visualize.write_png(path, visualize.image_strip(np.stack(rows)))


def main(argv):
  del argv
  if FLAGS.stage == "data":
    dump_batches()
    return
  if FLAGS.stage == "pictures":
    pictures("docs/results/release_study.png")
    return
  if FLAGS.stage == "eval":
    result = {
      "release": evaluate_release(_test_videos()),
      "ours": evaluate_ours(),
    }
    with open(os.path.join(FLAGS.study_dir, "comparison.json"), "w") as f:
      json.dump(result, f, indent=1)
    return
  command = release_command() if FLAGS.stage == "release" else ours_command()
  env = dict(os.environ, TF_NUM_INTRAOP_THREADS="1", OMP_NUM_THREADS="1")
  subprocess.run(command, check=True, env=env)


if __name__ == "__main__":
  define_flags()
  app.run(main)
