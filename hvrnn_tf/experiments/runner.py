"""Runs a study: trains and evaluates every (row, seed), reusing finished ones.

For every row and seed: hvrnn_tf.train, then hvrnn_tf.eval on the test split
(ELBO with beta = 1, KL per level, active units, best-of-N SSIM / PSNR; no
LPIPS or FVD) and the ELBO on sequences of the training stream. The result is
stored as <row>/seed_<s>/result.json with the settings that made it; a run
of the same settings reuses it, and unfinished training resumes from its
checkpoint.
"""

import dataclasses
import json
import math
import os
import time

from absl import logging
import numpy as np
import tensorflow as tf

import gin
from hvrnn_tf.data import digits as digits_lib
from hvrnn_tf.data import inputs
from hvrnn_tf.evaluation import evaluate
from hvrnn_tf.evaluation.config import EvalConfig
from hvrnn_tf.experiments import claims as claims_lib
from hvrnn_tf.experiments import report
from hvrnn_tf.experiments import scales
from hvrnn_tf.experiments import studies
from hvrnn_tf.model import losses
from hvrnn_tf.training import task
from hvrnn_tf.utils import atomic_write

TRAIN_ELBO_SEED = 0


class Interrupted(Exception):
  """Training was stopped by a signal (after saving a checkpoint)."""


def prepare_mnist(mnist_dir: str | None) -> tuple[list[str], str]:
  """(gin bindings selecting the digits, their description for the report).

  A folder with only MNIST's test file is split in two: its first
  digits_lib.TEST_FILE_SPLIT digits train, the rest test.
  """
  if not mnist_dir:
    digits, source = digits_lib.load_digits(None, "test")
    return [], (
      f"{source} (no --mnist_dir; train/test from the source's "
      f"own splits, {len(digits)} test digits)"
    )
  names = set(tf.io.gfile.listdir(mnist_dir))
  has = lambda prefix: any(
    n.startswith(f"{prefix}-images-idx3-ubyte") for n in names
  )
  bindings = [f"data.make_dataset.mnist_dir = {mnist_dir!r}"]
  if has("train") and has("t10k"):
    return bindings, f"MNIST IDX files in {mnist_dir} (train / t10k splits)"
  if not has("t10k"):
    raise FileNotFoundError(f"--mnist_dir={mnist_dir!r} has no MNIST images")
  at = digits_lib.TEST_FILE_SPLIT
  test, _ = digits_lib.load_digits(mnist_dir, "test", split_test_file_at=at)
  bindings.append(f"data.make_dataset.split_test_file_at = {at}")
  return bindings, (
    f"real MNIST digits: the {at + len(test)} digits of the "
    f"MNIST test split in {mnist_dir}, first {at} for "
    f"training, last {len(test)} held out for testing (the "
    "MNIST train split was not available)"
  )


def training_elbo(model, num_sequences: int) -> dict:
  """-ELBO (beta = 1), NLL and KL in nats per sequence, averaged over the
  first `num_sequences` sequences of the training stream of seed
  TRAIN_ELBO_SEED (training digits; the same sequences for every row).

  Uses the gin-configured data (call while the row's bindings are parsed).
  """
  batch_size = min(8, num_sequences)
  dataset = inputs.dataset_for_config(
    model.config, "train", batch_size, seed=TRAIN_ELBO_SEED
  )

  @tf.function
  def elbo(video, seed):
    out = model.elbo(video, seed)
    return out.nll, out.kl

  nll, kl = [], []
  for i, video in enumerate(
    dataset.take(math.ceil(num_sequences / batch_size))
  ):
    batch_nll, batch_kl = elbo(video, tf.constant([TRAIN_ELBO_SEED, i]))
    nll.append(batch_nll.numpy())
    kl.append(batch_kl.numpy())
  nll = np.concatenate(nll)[:num_sequences]
  kl = np.concatenate(kl)[:num_sequences]
  return {
    "neg_elbo": float(np.mean(losses.negative_elbo(nll, kl))),
    "nll": float(np.mean(nll)),
    "kl": float(np.mean(kl)),
  }


def run_settings(
  row: studies.Row,
  scale: scales.Scale,
  dataset: str,
  seed: int,
  gin_files=(),
  gin_params=(),
) -> dict:
  """Everything that determines a (row, seed) result, JSON-normalised."""
  settings = {
    "row": row.key,
    "seed": seed,
    "dataset": dataset,
    "scale": dataclasses.asdict(scale),
    "gin_files": list(gin_files),
    "gin_params": list(gin_params),
  }
  settings["scale"]["seeds"] = None  # not a setting of one run
  return json.loads(json.dumps(settings))


def load_result(row_dir: str, settings: dict) -> dict | None:
  """The stored result in `row_dir` if it was made with `settings`."""
  path = os.path.join(row_dir, "result.json")
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    stored = json.load(f)
  return stored if stored.get("settings") == settings else None


def _train(row_dir: str):
  """Trains the gin-configured row: (its model, seconds taken)."""
  start = time.time()
  outcome = task.train(row_dir)  # seeds the weights with train.seed
  if outcome.interrupted_by:
    raise Interrupted(
      f"{outcome.interrupted_by} received while training "
      f"{row_dir}; re-run the same command to resume"
    )
  return outcome.trainer.model, time.time() - start


def _evaluate(
  row_dir: str, scale: scales.Scale, seed: int, latent_resolutions
) -> dict:
  """hvrnn_tf.eval of the trained row on the test split, as a result's
  entries."""
  test = evaluate.run(
    row_dir,
    EvalConfig(
      output_dir=os.path.join(row_dir, "eval_test"),
      split="test",
      num_samples=scale.num_samples,
      max_sequences=scale.eval_sequences,
      batch_size=min(8, scale.eval_sequences),
      num_visualized=2,
      i3d_handle="",
      lpips_weights="",
      seed=seed,
    ),
  )
  return {
    "test": {k: test["elbo"][k] for k in ("neg_elbo", "nll", "kl")},
    # Nats per sequence: per-element means x elements per channel.
    "kl_per_level": [
      float(np.sum(k)) * r * r * test["protocol"]["future_frames"]
      for k, r in zip(test["kl"]["per_channel"], latent_resolutions)
    ],
    "active": test["kl"]["active"],
    "maximally_active": test["kl"]["maximally_active"],
    "channels": test["kl"]["channels"],
    "ssim": test["ssim"]["mean"],
    "psnr": test["psnr"]["mean"],
    "ssim_per_timestep": test["ssim"]["per_timestep"],
    "num_test_sequences": test["protocol"]["dataset"]["num_sequences"],
  }


def run_row(
  row: studies.Row,
  scale: scales.Scale,
  dataset: str,
  seed: int,
  row_dir: str,
  gin_files=(),
  gin_params=(),
  command: str = "",
) -> dict:
  """Trains and evaluates one row for one seed; returns (and stores) its
  result. A stored result of the same settings is reused."""
  result_path = os.path.join(row_dir, "result.json")
  settings = run_settings(row, scale, dataset, seed, gin_files, gin_params)
  stored = load_result(row_dir, settings)
  if stored is not None:
    logging.info("Reusing %s", result_path)
    return stored
  config = scales.configure_row(
    row, scale, dataset, seed, gin_files, gin_params
  )
  logging.info("Row %s, seed %d: %s", row.key, seed, config)
  model, train_seconds = _train(row_dir)
  num_params = int(sum(np.prod(v.shape) for v in model.trainable_variables))
  start = time.time()
  train_elbo = training_elbo(model, scale.train_eval_sequences)
  del model
  evaluated = _evaluate(row_dir, scale, seed, config.latent_resolutions)
  result = {
    "settings": settings,
    "command": command,
    "finished": report.now(),
    "num_params": num_params,
    "latent_resolutions": list(config.latent_resolutions),
    "latent_channels": list(config.latent_channels),
    "train_seconds": train_seconds,
    "eval_seconds": time.time() - start,
    "train": train_elbo,
    **evaluated,
  }
  atomic_write.write_text(result_path, json.dumps(result, indent=2))
  return result


def _earlier_results(study: studies.Study, out_dir: str, results, settings):
  """Adds to `results` the seeds of `study`'s rows finished in `out_dir` by
  earlier invocations, where `settings(row, seed)` made them."""
  for row in study.rows:
    row_root = os.path.join(out_dir, row.key)
    names = tf.io.gfile.listdir(row_root) if tf.io.gfile.isdir(row_root) else []
    for name in sorted(n.rstrip("/") for n in names):
      if not name.startswith("seed_") or not name[5:].isdigit():
        continue
      seed = int(name[5:])
      if seed in results.get(row.key, {}):
        continue
      stored = load_result(os.path.join(row_root, name), settings(row, seed))
      if stored is not None:
        results.setdefault(row.key, {})[seed] = stored


def run_study(
  study_name: str,
  scale: scales.Scale,
  workdir: str,
  dataset: str = "smmnist",
  rows=None,
  mnist_dir=None,
  gin_files=(),
  gin_params=(),
  command: str = "",
) -> dict:
  """Runs every (row, seed) of a study and writes the report.

  Returns {"results": {row: {seed: result}}, "claims": [...], "report": path}.
  """
  if dataset not in scales.DATASETS:
    raise ValueError(f"dataset={dataset!r} is not one of {scales.DATASETS}")
  study = studies.STUDIES[study_name]
  selected = [study.row(k) for k in rows] if rows else list(study.rows)
  out_dir = os.path.join(workdir, study.name)
  tf.io.gfile.makedirs(out_dir)
  started, start = report.now(), time.time()
  digits = "the rows' own datasets"
  if dataset == "smmnist":
    # The digits' bindings come first: the user's gin_params win.
    data_bindings, digits = prepare_mnist(mnist_dir)
    gin_params = [*data_bindings, *gin_params]
  results = {}
  for seed in scale.seeds:
    for row in selected:
      logging.info("=== %s / %s / seed %d ===", study.name, row.key, seed)
      row_dir = os.path.join(out_dir, row.key, f"seed_{seed}")
      results.setdefault(row.key, {})[seed] = run_row(
        row, scale, dataset, seed, row_dir, gin_files, gin_params, command
      )
  _earlier_results(
    study,
    out_dir,
    results,
    lambda row, seed: run_settings(
      row, scale, dataset, seed, gin_files, gin_params
    ),
  )
  report.write_report(
    study,
    scale,
    dataset,
    results,
    out_dir,
    command,
    digits,
    started,
    time.time() - start,
  )
  gin.clear_config()
  return {
    "results": results,
    "claims": claims_lib.check_claims(study, results),
    "report": os.path.join(out_dir, "report.md"),
  }
