"""Numerical parity with the authors' release: same weights, same noise, same numbers.

    python -m bench.parity --release_dir=runs/improved_vrnn \
        --torch_python=runs/peer_venv/bin/python --mnist_dir=../shared/data/mnist

The release (s2s_big_hier_v4, run by bench/parity_torch_driver.py under
--torch_python) is built at --n_hid with torch.manual_seed(--seed); its state
dict is converted (hvrnn_tf.model.release_weights, as hvrnn_tf.convert does) into
our model with ModelConfig.release_group_counts. On SM-MNIST batches (64x64,
5 context + 10 predicted frames, Bernoulli likelihood, the analytic KL on
both sides) and the same posterior noise:
  step 1: decoder outputs, every level's prior and posterior mean and
          variance, NLL, KL, and every gradient (relative L2 error per
          tensor, the worst reported);
  step 2: one Adam step each (same recipe), then the updated weights;
  train:  --train_steps steps each from the same init on the same batches
          and noise; the per-step relative loss difference, plotted.
Also writes the release's per-tensor init statistics
(tests/data/release_init_stats.json, for tests/test_initialization.py).
"""

import functools
import gc
import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags
import keras
import numpy as np
import tensorflow as tf

from bench import parity_torch_driver as driver
from hvrnn_tf.data import inputs
from hvrnn_tf.model import release_weights
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.model.vrnn import HierarchicalVRNN
from hvrnn_tf.training import schedules
from hvrnn_tf.training.config import TrainConfig
from hvrnn_tf.training.trainer import Trainer

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = flags.FLAGS


def define_flags():
  """Defined when run as a binary (release_study adds its own): binaries
  imported by one test process share absl's flags."""
  flags.DEFINE_string(
    "release_dir", "runs/improved_vrnn", "The release's checkout."
  )
  flags.DEFINE_string(
    "torch_python", "runs/peer_venv/bin/python", "A Python with torch."
  )
  flags.DEFINE_string("mnist_dir", "../shared/data/mnist", "MNIST IDX folder.")
  flags.DEFINE_integer(
    "n_hid", 16, "Width (the release needs a multiple of 16)."
  )
  flags.DEFINE_integer("seed", 0, "Release init seed and noise seed.")
  flags.DEFINE_integer("batch", 4, "Sequences per batch.")
  flags.DEFINE_integer("train_steps", 200, "Training-parity steps (0: skip).")
  flags.DEFINE_float("learning_rate", 5e-4, "Constant learning rate.")
  flags.DEFINE_float("beta", 1.0, "KL weight.")
  flags.DEFINE_string("workdir", "runs/parity", "Scratch files.")
  flags.DEFINE_bool(
    "reuse_release_train", False, "Reuse --workdir's release training record."
  )
  flags.DEFINE_string("out", "bench/results/parity.json", "Result JSON.")
  flags.DEFINE_string(
    "control",
    "",
    "Release record after a 1e-7 weight nudge (driver --perturb).",
  )
  flags.DEFINE_bool(
    "replot", False, "Only add --control to --out's record and redraw."
  )
  flags.DEFINE_string("plot", "docs/results/parity_training.png", "Loss plot.")
  flags.DEFINE_string(
    "stats_out", "tests/data/release_init_stats.json", "Release init stats."
  )


def model_config() -> ModelConfig:
  """SM-MNIST at FLAGS.n_hid with the release's group counts (smmnist.gin)."""
  n = FLAGS.n_hid
  return ModelConfig(
    channels=1,
    context_frames=5,
    future_frames=10,
    n_hid=n,
    latent_channels=(8 * n, 8 * n, 2 * n),
    reconstruction_loss="bernoulli",
    release_group_counts=True,
  )


def run_driver(command: str, **options) -> dict:
  """Runs the torch driver's `command`; returns its JSON reply."""
  done = subprocess.run(
    driver_argv(command, **_recipe(), **options),
    check=True,
    capture_output=True,
    text=True,
  )
  return json.loads(done.stdout.strip().splitlines()[-1])


def make_trainer(config: ModelConfig) -> Trainer:
  """Our trainer with the driver's recipe: constant lr and beta, Adam(0.5, 0.9)."""
  recipe = TrainConfig(
    num_steps=FLAGS.train_steps or 1,
    batch_size=FLAGS.batch,
    learning_rate=FLAGS.learning_rate,
    lr_reference_batch=FLAGS.batch,
    lr_warmup_epochs=0,
    beta=FLAGS.beta,
    beta_warmup_epochs=0,
    optimizer=functools.partial(schedules.torch_adam, beta_1=0.5, beta_2=0.9),
  )
  return Trainer(config, recipe)


def sm_mnist_batches(config: ModelConfig, count: int) -> np.ndarray:
  """[count, B, c + F, 64, 64, 1] training batches of real-MNIST SM-MNIST."""
  dataset = inputs.make_dataset(
    "train",
    FLAGS.batch,
    config.sequence_length,
    config.image_size,
    config.channels,
    mnist_dir=FLAGS.mnist_dir,
    split_test_file_at=8000,
    seed=FLAGS.seed,
  )
  return np.stack([b.numpy() for b in dataset.take(count)])


def relative_differences(ours, theirs) -> list[float]:
  """|ours - theirs| / |theirs|, per step of two loss curves."""
  return [abs(a - b) / abs(b) for a, b in zip(ours, theirs)]


def relative_error(ours, theirs) -> float:
  """||ours - theirs|| / ||theirs|| (float64)."""
  ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
  scale = np.linalg.norm(theirs)
  return float(np.linalg.norm(ours - theirs) / (scale if scale else 1.0))


def compare_tensors(model, release: dict, prefix: str, ours: list) -> dict:
  """Per release tensor, the relative error of `ours` (aligned with the
  model's trainable variables) against release[prefix + name]."""
  index = {id(v): i for i, v in enumerate(model.trainable_variables)}
  errors = {}
  for name, targets in release_weights.mapping(model).items():
    theirs = release_weights.keras_layout(targets, release[prefix + name])
    mine = [ours[index[id(t.variable)]] for t in targets]
    errors[name] = relative_error(
      np.concatenate([np.ravel(m) for m in mine]),
      np.concatenate([np.ravel(t) for t in theirs]),
    )
  return errors


def worst(errors: dict) -> dict:
  name = max(errors, key=errors.get)
  return {
    "max": errors[name],
    "argmax": name,
    "median": float(np.median(list(errors.values()))),
    "count": len(errors),
  }


def forward_errors(outputs, release: dict) -> dict:
  """Relative errors of the outputs and distribution parameters."""
  errors = {
    "decoder_output": relative_error(
      outputs.reconstruction.numpy(), release["preds"]
    ),
    "nll": relative_error(outputs.nll.numpy(), release["nll"]),
    "kl": relative_error(outputs.kl.numpy(), release["kl"]),
    "loss": relative_error(outputs.loss.numpy(), release["loss"]),
  }
  for kind in ("prior", "posterior"):
    for level, dist in enumerate(getattr(outputs, f"{kind}s")):
      key = f"{kind}_{level}"
      errors[f"{key}_mean"] = relative_error(
        dist.loc.numpy(), release[f"{key}_mean"]
      )
      errors[f"{key}_variance"] = relative_error(
        np.square(dist.scale.numpy()), np.exp(release[f"{key}_logvar"])
      )
  return errors


def forward_and_gradients(model, video, noise):
  """Our ELBO outputs and gradients (numpy, per trainable variable)."""
  dtype = model.trainable_variables[0].dtype
  noise = [tf.constant(n, dtype) for n in noise]
  with tf.GradientTape() as tape:
    outputs = model.elbo(
      tf.constant(video, dtype), beta=FLAGS.beta, noise=noise
    )
  gradients = tape.gradient(outputs.loss, model.trainable_variables)
  return outputs, [g.numpy() for g in gradients]


def release_step(video, noise, float64=False) -> dict:
  """The driver's step outputs on this batch and noise."""
  path = os.path.join(FLAGS.workdir, "step_inputs.npz")
  np.savez(
    path,
    video=video,
    levels=len(noise),
    **{f"noise_{i}": n for i, n in enumerate(noise)},
  )
  out = os.path.join(FLAGS.workdir, "release_step.npz")
  options = dict(state=_state_path(), inputs=path, out=out)
  run_driver("step", **options, **({"float64": 1} if float64 else {}))
  return dict(np.load(out))


def one_step(trainer, video: np.ndarray, noise: list) -> dict:
  """Step 1 and step 2 against the release on one batch."""
  release = release_step(video, noise)
  outputs, gradients = forward_and_gradients(trainer.model, video, noise)
  gradient_errors = compare_tensors(trainer.model, release, "grad/", gradients)
  variables = trainer.model.trainable_variables
  before = [v.numpy() for v in variables]
  trainer.train_step_with_noise(
    tf.constant(video), [tf.constant(n) for n in noise]
  )
  updates = [v.numpy() - b for v, b in zip(variables, before)]
  state = _release_state()
  for name in state:
    if f"updated/{name}" in release:
      release[f"update/{name}"] = release[f"updated/{name}"] - state[name]
  update_errors = compare_tensors(trainer.model, release, "update/", updates)
  weight_errors = compare_tensors(
    trainer.model, release, "updated/", [v.numpy() for v in variables]
  )
  worst_update = max(update_errors, key=update_errors.get)
  return {
    "forward": forward_errors(outputs, release),
    "gradients": worst(gradient_errors),
    "gradients_over_1e-3": sum(v > 1e-3 for v in gradient_errors.values()),
    "updates": worst(update_errors),
    "worst_update_gradient_error": gradient_errors[worst_update],
    "updated_weights": worst(weight_errors),
  }


def float64_step(config, video, noise) -> dict:
  """Step 1 with both sides in float64: what float32 rounding accounts for."""
  keras.mixed_precision.set_global_policy("float64")
  try:
    model = HierarchicalVRNN(config)
    model.initialize()
  finally:
    keras.mixed_precision.set_global_policy("float32")
  release_weights.assign(model, _release_state())
  release = release_step(video, noise, float64=True)
  outputs, gradients = forward_and_gradients(model, video, noise)
  return {
    "forward": forward_errors(outputs, release),
    "gradients": worst(compare_tensors(model, release, "grad/", gradients)),
  }


def _state_path() -> str:
  return os.path.join(FLAGS.workdir, f"release_n{FLAGS.n_hid}.pth")


def init_release(trainer) -> dict:
  """Builds the release, saves its state dict and stats, converts it."""
  state = _state_path()
  npz = state.replace(".pth", ".npz")
  reply = run_driver("init", out=state, npz=npz, stats=FLAGS.stats_out)
  skipped = release_weights.assign(trainer.model, _release_state())
  return {**reply, "skipped": len(skipped)}


def _release_state() -> dict:
  return dict(np.load(_state_path().replace(".pth", ".npz")))


def level_shapes(config: ModelConfig) -> np.ndarray:
  return np.array(list(zip(config.latent_resolutions, config.latent_channels)))


def train_parity(config, batches: np.ndarray) -> dict:
  """--train_steps steps on both sides from the converted init; the
  per-step losses and their relative differences."""
  path = os.path.join(FLAGS.workdir, "train_inputs.npz")
  np.savez(path, videos=batches, level_shapes=level_shapes(config))
  out = os.path.join(FLAGS.workdir, "release_train.json")
  argv_steps = dict(state=_state_path(), inputs=path, out=out)
  with open(os.path.join(FLAGS.workdir, "release_train.log"), "a") as log:
    release = None
    if not FLAGS.reuse_release_train:
      release = subprocess.Popen(
        driver_argv(
          "train", steps=FLAGS.train_steps, threads=1, **_recipe(), **argv_steps
        ),
        stdout=log,
      )
    ours = our_training(config, batches)
    if release and release.wait():
      raise RuntimeError(f"the release's training run failed: see {log.name}")
  with open(out) as f:
    theirs = [r["loss"] for r in json.load(f)]
  return {
    "ours": ours,
    "release": theirs,
    "relative_difference": relative_differences(ours, theirs),
  }


def driver_argv(command: str, **options) -> list[str]:
  """The torch driver's `command` for the release at --n_hid and --seed."""
  return [
    FLAGS.torch_python,
    os.path.join(_REPO, "bench", "parity_torch_driver.py"),
    command,
    f"--release_dir={FLAGS.release_dir}",
    f"--n_hid={FLAGS.n_hid}",
    f"--seed={FLAGS.seed}",
  ] + [f"--{k}={v}" for k, v in options.items()]


def _recipe() -> dict:
  """The driver options of this bench's recipe (make_trainer's)."""
  return {"lr": FLAGS.learning_rate, "beta": FLAGS.beta}


def our_training(config, batches) -> list[float]:
  trainer = make_trainer(config)
  release_weights.assign(trainer.model, _release_state())
  frames = config.future_frames
  losses = []
  for step in range(FLAGS.train_steps):
    video = batches[step % len(batches)]
    noise = driver.noise(
      FLAGS.seed, step, len(video), frames, level_shapes(config)
    )
    metrics, _ = trainer.train_step_with_noise(
      tf.constant(video), [tf.constant(n) for n in noise]
    )
    losses.append(float(metrics["loss"]))
  return losses


def plot(training: dict, path: str) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=import-outside-toplevel

  fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
  top.plot(training["release"], label="release (PyTorch)")
  top.plot(training["ours"], "--", label="hvrnn_tf")
  top.set_ylabel("-ELBO (train batch)")
  top.legend()
  bottom.semilogy(training["relative_difference"], label="hvrnn_tf vs release")
  if "control_relative_difference" in training:
    bottom.semilogy(
      training["control_relative_difference"],
      ":",
      label="release vs release, weights x (1 + 1e-7 N(0, 1))",
    )
    bottom.legend()
  bottom.set_ylabel("|ours - release| / release")
  bottom.set_xlabel("step")
  fig.tight_layout()
  fig.savefig(path, dpi=80)


def add_control(record: dict, path: str) -> None:
  """The control run's per-step relative distance from the release's run."""
  with open(path) as f:
    control = [r["loss"] for r in json.load(f)]
  record["train"]["control_relative_difference"] = relative_differences(
    control, record["train"]["release"]
  )


def _replot() -> None:
  with open(FLAGS.out) as f:
    record = json.load(f)
  add_control(record, FLAGS.control)
  plot(record["train"], FLAGS.plot)
  with open(FLAGS.out, "w") as f:
    json.dump(record, f, indent=1)


def _commit() -> str:
  done = subprocess.run(
    ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
  )
  return done.stdout.strip()


def main(argv):
  del argv
  if FLAGS.replot:
    _replot()
    return
  os.makedirs(FLAGS.workdir, exist_ok=True)
  tf.keras.utils.set_random_seed(FLAGS.seed)
  config = model_config()
  trainer = make_trainer(config)
  started = time.time()
  record = {
    "command": " ".join(sys.argv),
    "date": time.strftime("%F %T UTC", time.gmtime()),
    "commit": _commit(),
  }
  record["init"] = init_release(trainer)
  batches = sm_mnist_batches(config, max(FLAGS.train_steps, 1))
  noise = driver.noise(
    FLAGS.seed, 0, FLAGS.batch, config.future_frames, level_shapes(config)
  )
  record["step"] = one_step(trainer, batches[0], noise)
  del trainer  # our_training builds its own: one model in memory at a time
  record["step_float64"] = float64_step(config, batches[0], noise)
  gc.collect()
  if FLAGS.train_steps:
    record["train"] = train_parity(config, batches)
    if FLAGS.control:
      add_control(record, FLAGS.control)
    plot(record["train"], FLAGS.plot)
  record["seconds"] = round(time.time() - started, 1)
  with open(FLAGS.out, "w") as f:
    json.dump(record, f, indent=1)
  print(
    json.dumps(
      {k: record[k] for k in ("init", "step", "step_float64")}, indent=1
    )
  )


if __name__ == "__main__":
  define_flags()
  app.run(main)
