r"""Reduced-scale (or full-scale) reproduction of the paper's ablation tables.

    python -m hvrnn_tf.experiments.ablation --study=hierarchy --scale=small \
        --workdir=runs/ablation [--seeds=0,1] [--num_steps=N] [--n_hid=N] \
        [--mnist_dir=DIR] [--rows=KEY,KEY] [--gin_param=...]

Each row of a study is one gin file of gin/ablations/ (the paper-size model).
A scale shrinks it to what the machine can train, the same way for every row
(`row_bindings`): on Stochastic Moving MNIST (--dataset=smmnist: 1 channel,
Bernoulli likelihood) at a reduced width n_hid (latent channels scaled by
n_hid / 64), with the scale's frames,
batch size, steps and learning rate; schedules given in epochs (beta and
learning-rate warmup) keep their length relative to training, one "epoch"
being num_steps / scale.epochs steps. --dataset=gin keeps each gin file's data
(BAIR) and frame settings and only changes width and training length.

For every row and seed the script trains with hvrnn_tf.train, then evaluates
with hvrnn_tf.eval: the test ELBO (beta = 1), KL per level, active units,
best-of-N SSIM / PSNR on the test split; and the ELBO of the trained model
on sequences of the training stream (`training_elbo`). LPIPS and
FVD are skipped (they need downloaded networks; run hvrnn_tf.eval on a row's
workdir for them). It writes, under WORKDIR/<study>/:

  report.md            table, the paper's directional claims checked, plots
  results.json         every number of the report
  elbo.png, active_units.png, ssim_per_timestep.png
  <row>/seed_<s>/      the training workdir, result.json, and eval_test/:
                       eval.py's outputs (metrics.json, plots, GIFs)

Scales (SCALES; every field can be overridden by its flag): tiny (tests,
seconds per row), small (a 2-core CPU, minutes per row), medium (one GPU,
hours per row), full (the paper's width and SM-MNIST recipe). With
--dataset=gin --scale=full the rows train as their gin files say, e.g. on
BAIR: --num_steps=500000 --epochs=185 --gin_param=
"data.make_dataset.file_pattern='/data/bair/{split}-*'".

Re-running the same command reuses finished rows (result.json) and resumes
unfinished training from its checkpoint. Processes given disjoint --rows or
--seeds may share a workdir (e.g. one per GPU); each report includes every
finished (row, seed) of the same settings found there.

MNIST: --mnist_dir is a folder of MNIST IDX files. If it holds only the test
split (t10k-*), its 10,000 digits are split into 8,000 training and 2,000
held-out test digits (data.make_dataset.split_test_file_at). Without
--mnist_dir the digits come from TFDS or, offline, scikit-learn's stand-in
(see hvrnn_tf.data.digits), which the report says.
"""

import dataclasses
import datetime
import json
import math
import os
import pathlib
import platform
import shlex
import sys
import time

from absl import app
from absl import flags
from absl import logging
import gin
import numpy as np
import tensorflow as tf

from hvrnn_tf import checkpointing
from hvrnn_tf import encoder
from hvrnn_tf import paper
from hvrnn_tf import paths
from hvrnn_tf import eval as eval_lib
from hvrnn_tf import train as train_lib
from hvrnn_tf.config import ModelConfig
from hvrnn_tf.data import digits as digits_lib
from hvrnn_tf.data import inputs
from hvrnn_tf.data import smmnist

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
ABLATION_DIR = "gin/ablations"
PAPER_N_HID = 64


# --------------------------------------------------------------------------
# The paper's tables.


@dataclasses.dataclass(frozen=True)
class Row:
  """One row of a paper table.

  key: short identifier (directory name, --rows).
  label: as in the paper.
  gin_file: the row's config, relative to the repository root.
  paper_params_m: the paper's parameter count (millions), None if not given.
  paper_elbo: the paper's (train, test) negative ELBO on BAIR, or None.
  """
  key: str
  label: str
  gin_file: str
  paper_params_m: float | None = None
  paper_elbo: tuple[float, float] | None = None


@dataclasses.dataclass(frozen=True)
class Study:
  name: str
  title: str
  rows: tuple[Row, ...]

  def row(self, key: str) -> Row:
    for row in self.rows:
      if row.key == key:
        return row
    raise KeyError(f"study {self.name!r} has no row {key!r}; rows: "
                   f"{[r.key for r in self.rows]}")


def _gin(name):
  return f"{ABLATION_DIR}/{name}.gin"


def _paper(name):
  return paper.PARAMETERS[name].millions


STUDIES = {
    "likelihood": Study(
        "likelihood",
        "Table 1: likelihood (decoder) capacity, one latent level at 1x1",
        (Row("convlstm1", "1 ConvLSTM", _gin("table1_decoder_1convlstm"),
             _paper("table1_decoder_1convlstm"), (3237, 3826)),
         Row("convlstm3", "3 ConvLSTM", _gin("table1_decoder_3convlstm"),
             _paper("table1_decoder_3convlstm"), (1948, 2355)),
         Row("convlstm6", "6 ConvLSTM", _gin("table1_decoder_6convlstm"),
             _paper("table1_decoder_6convlstm"), (1279, 1731)),
         Row("convlstm6_wider", "6 ConvLSTM, higher capacity",
             _gin("table1_decoder_6convlstm_wider"),
             _paper("table1_decoder_6convlstm_wider"), (1113, 1590)))),
    "hierarchy": Study(
        "hierarchy", "Table 2: number of latent levels",
        (Row("levels_1", "[1]", _gin("table2_hierarchy_1"),
             _paper("table2_hierarchy_1"),
             (1142, 1537)),
         Row("levels_1_8", "[1, 8]", _gin("table2_hierarchy_1_8"),
             _paper("table2_hierarchy_1_8"),
             (989, 1313)),
         Row("levels_1_8_32", "[1, 8, 32]", _gin("table2_hierarchy_1_8_32"),
             _paper("table2_hierarchy_1_8_32"), (883, 1162)),
         Row("levels_1_8_16_32", "[1, 8, 16, 32]",
             _gin("table2_hierarchy_1_8_16_32"),
             _paper("table2_hierarchy_1_8_16_32"), (957, 1256)))),
    "training": Study(
        "training", "Table 2: training techniques for [1, 8, 32]",
        (Row("naive", "naive", _gin("table2_training_naive"), None,
             (1127, 1441)),
         Row("beta_warmup", "beta warmup", _gin("table2_training_beta_warmup"),
             None, (1101, 1441)),
         Row("dense", "dense connectivity", _gin("table2_training_dense"),
             None, (1183, 1547)),
         Row("beta_warmup_dense", "beta warmup + dense",
             _gin("table2_training_beta_warmup_dense"), None, (883, 1162)))),
}


# --------------------------------------------------------------------------
# Scales.


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


SCALES = {
    # For tests: seconds per row; a constant learning rate of 7.5e-4.
    "tiny": Scale("test-sized: 32x32, n_hid 4, 20 steps", n_hid=4,
                  image_size=32, context_frames=2, future_frames=3,
                  batch_size=4, num_steps=20, epochs=4, lr=(7.5e-4, 4),
                  lr_warmup_epochs=0, eval_sequences=4,
                  train_eval_sequences=4, num_samples=2, seeds=(0,)),
    # A 2-core CPU: minutes per row (recipe of gin/smmnist_quick.gin: the
    # learning rate warms up 1.25e-4 -> 1e-3 at batch 8).
    "small": Scale("2-core CPU: 64x64, n_hid 8, 2 -> 6 frames, batch 8",
                   n_hid=8, image_size=64, context_frames=2, future_frames=6,
                   batch_size=8, num_steps=300, epochs=20, lr=(1.25e-4, 1),
                   lr_warmup_epochs=1, eval_sequences=64,
                   train_eval_sequences=64, num_samples=10, seeds=(0, 1)),
    # One GPU, hours per row: half width, the paper's frames and schedules.
    "medium": Scale("one GPU: 64x64, n_hid 32, 5 -> 10 frames, batch 16",
                    n_hid=32, image_size=64, context_frames=5,
                    future_frames=10, batch_size=16, num_steps=50000,
                    epochs=20, lr=None, lr_warmup_epochs=None,
                    eval_sequences=256, train_eval_sequences=256,
                    num_samples=100, seeds=(0, 1)),
    # The paper's models and SM-MNIST recipe (gin/smmnist.gin): days per row.
    "full": Scale("paper: 64x64, n_hid 64, 5 -> 10 frames, batch 16, 300k "
                  "steps", n_hid=None, image_size=64, context_frames=5,
                  future_frames=10, batch_size=16, num_steps=300000,
                  epochs=120, lr=None, lr_warmup_epochs=None,
                  eval_sequences=256, train_eval_sequences=256,
                  num_samples=100, seeds=(0, 1)),
}

DATASETS = ("smmnist", "gin")

FLAGS = flags.FLAGS


def define_flags():
  """Flags of the binary; --workdir, --gin_file, --gin_param come from
  hvrnn_tf.train (imported above), and apply to every row."""
  flags.DEFINE_enum("study", None, sorted(STUDIES), "Which table to run.")
  flags.DEFINE_enum("scale", "small", sorted(SCALES), "Preset of sizes.")
  flags.DEFINE_enum("dataset", "smmnist", DATASETS,
                    "smmnist: Stochastic Moving MNIST at the scale's frame "
                    "size; gin: the rows' own data (BAIR; bind "
                    "data.make_dataset.file_pattern with --gin_param).")
  flags.DEFINE_list("seeds", None, "Seeds, e.g. 0,1 (default: the scale's).")
  flags.DEFINE_list("rows", None, "Subset of the study's row keys.")
  flags.DEFINE_integer("num_steps", None, "Training steps per row.")
  flags.DEFINE_float("epochs", None, "Epochs the run is divided into (the "
                     "unit of the warmup schedules): steps_per_epoch = "
                     "num_steps / epochs. BAIR as in gin/bair.gin: "
                     "--num_steps=500000 --epochs=185.")
  flags.DEFINE_integer("n_hid", None, "Base width (paper: 64).")
  flags.DEFINE_integer("batch_size", None, "Training batch size.")
  flags.DEFINE_integer("eval_sequences", None, "Test sequences evaluated.")
  flags.DEFINE_integer("train_eval_sequences", None,
                       "Training sequences for the train ELBO.")
  flags.DEFINE_integer("num_samples", None, "N of best-of-N.")
  flags.DEFINE_string("mnist_dir", None, "MNIST IDX folder (see module doc).")


def scale_with_overrides(scale: Scale, **overrides) -> Scale:
  """`scale` with the non-None overrides applied."""
  return dataclasses.replace(
      scale, **{k: v for k, v in overrides.items() if v is not None})


# --------------------------------------------------------------------------
# Configuration of one row.


def paper_config(row: Row, gin_params=()) -> ModelConfig:
  """The ModelConfig of `row`'s gin file (plus `gin_params`), unscaled."""
  paths.register_gin_search_paths()
  gin.clear_config()
  checkpointing.parse_gin([str(REPO_ROOT / row.gin_file)], gin_params)
  return ModelConfig()


def _literal(value) -> str:
  if isinstance(value, str):
    return repr(value)
  if isinstance(value, (tuple, list)):
    return "(" + ", ".join(_literal(v) for v in value) + ("," if len(value) == 1
                                                          else "") + ")"
  return repr(value)


def scaled_latent_channels(config: ModelConfig, n_hid: int) -> tuple:
  """Latent channels at width n_hid: each level's scale with n_hid /
  config.n_hid (at least 1), as they are the encoder's widths there."""
  return tuple(max(1, round(z * n_hid / config.n_hid))
               for z in config.latent_channels)


def row_bindings(config: ModelConfig, scale: Scale, dataset: str,
                 seed: int) -> list[str]:
  """Gin bindings that shrink the paper-size `config` of a row to `scale`."""
  b = {}
  model = "model.ModelConfig."
  if dataset == "smmnist":
    resolutions = encoder.pyramid_resolutions(scale.image_size)
    # The multipliers of the coarsest len(resolutions) stages of the gin file.
    multipliers = config.channel_multipliers[-len(resolutions):]
    missing = set(config.latent_resolutions) - set(resolutions)
    if missing:
      raise ValueError(f"image_size {scale.image_size} has no latent "
                       f"resolutions {sorted(missing)}")
    b.update({
        model + "image_size": scale.image_size, model + "channels": 1,
        model + "context_frames": scale.context_frames,
        model + "future_frames": scale.future_frames,
        model + "channel_multipliers": multipliers,
        model + "decoder_convlstm_layers": min(config.decoder_convlstm_layers,
                                               len(resolutions)),
        model + "reconstruction_loss": "bernoulli",
        "data.make_dataset.source": "smmnist",
        # SVG's layout where the frames fit its 32x32 digits (not at tiny).
        "data.make_dataset.smmnist_style": (
            "svg" if scale.image_size > sum(smmnist.STYLES["svg"])
            else "mnist28"),
        "data.make_dataset.num_test_sequences": max(
            scale.eval_sequences, 1)})
  if scale.n_hid is not None:
    b[model + "n_hid"] = scale.n_hid
    b[model + "latent_channels"] = scaled_latent_channels(config, scale.n_hid)
  steps = scale.num_steps
  b.update({"train.num_steps": steps, "train.batch_size": scale.batch_size,
            "train.seed": seed,
            "train.log_every": max(1, min(steps // 10, 1000)),
            "train.summary_every": max(1, min(steps // 20, 100)),
            "train.checkpoint_every": max(1, min(steps // 5, 5000)),
            "train.image_summary_every": 0,  # eval draws the samples
            "train.sample_sequences": 0})
  if scale.epochs:
    b["train.steps_per_epoch"] = max(1, round(steps / scale.epochs))
  if scale.lr:
    b["train.learning_rate"], b["train.lr_reference_batch"] = scale.lr
  if scale.lr_warmup_epochs is not None:
    b["train.lr_warmup_epochs"] = scale.lr_warmup_epochs
  return [f"{k} = {_literal(v)}" for k, v in b.items()]


def configure_row(row: Row, scale: Scale, dataset: str, seed: int,
                  gin_files=(), gin_params=()) -> ModelConfig:
  """Parses the row's gin file, the scale's bindings, then the user's
  `gin_files` / `gin_params` (which win). Returns the resulting ModelConfig."""
  base = paper_config(row, gin_params)
  bindings = row_bindings(base, scale, dataset, seed)
  gin.clear_config()
  checkpointing.parse_gin([str(REPO_ROOT / row.gin_file), *gin_files],
                          bindings + list(gin_params))
  return ModelConfig()


# --------------------------------------------------------------------------
# Data.


def prepare_mnist(mnist_dir: str | None) -> tuple[list[str], str]:
  """(gin bindings selecting the digits, their description for the report).

  A folder with only MNIST's test file is split in two: its first
  digits_lib.TEST_FILE_SPLIT digits train, the rest test.
  """
  if not mnist_dir:
    digits, source = digits_lib.load_digits(None, "test")
    return [], (f"{source} (no --mnist_dir; train/test from the source's "
                f"own splits, {len(digits)} test digits)")
  names = set(os.listdir(mnist_dir))
  has = lambda prefix: any(n.startswith(f"{prefix}-images-idx3-ubyte")
                           for n in names)
  bindings = [f"data.make_dataset.mnist_dir = {mnist_dir!r}"]
  if has("train") and has("t10k"):
    return bindings, f"MNIST IDX files in {mnist_dir} (train / t10k splits)"
  if not has("t10k"):
    raise FileNotFoundError(f"--mnist_dir={mnist_dir!r} has no MNIST images")
  at = digits_lib.TEST_FILE_SPLIT
  test, _ = digits_lib.load_digits(mnist_dir, "test", split_test_file_at=at)
  bindings.append(f"data.make_dataset.split_test_file_at = {at}")
  return bindings, (f"real MNIST digits: the {at + len(test)} digits of the "
                    f"MNIST test split in {mnist_dir}, first {at} for "
                    f"training, last {len(test)} held out for testing (the "
                    "MNIST train split was not available)")


# --------------------------------------------------------------------------
# Running a row.

TRAIN_ELBO_SEED = 0


def training_elbo(model, num_sequences: int) -> dict:
  """-ELBO (beta = 1), NLL and KL in nats per sequence, averaged over the
  first `num_sequences` sequences of the training stream of seed
  TRAIN_ELBO_SEED (training digits; the same sequences for every row).

  Uses the gin-configured data (call while the row's bindings are parsed).
  """
  config = model.config
  batch_size = min(8, num_sequences)
  dataset = inputs.make_dataset(
      split="train", batch_size=batch_size,
      sequence_length=config.sequence_length, image_size=config.image_size,
      channels=config.channels, seed=TRAIN_ELBO_SEED)

  @tf.function
  def elbo(video, seed):
    out = model.elbo(video, seed)
    return out.nll, out.kl

  nll, kl = [], []
  for i, video in enumerate(dataset.take(math.ceil(num_sequences /
                                                   batch_size))):
    batch_nll, batch_kl = elbo(video, tf.constant([TRAIN_ELBO_SEED, i]))
    nll.append(batch_nll.numpy())
    kl.append(batch_kl.numpy())
  nll = np.concatenate(nll)[:num_sequences]
  kl = np.concatenate(kl)[:num_sequences]
  return {"neg_elbo": float(np.mean(nll + kl)), "nll": float(np.mean(nll)),
          "kl": float(np.mean(kl))}


def run_settings(row: Row, scale: Scale, dataset: str, seed: int,
                 gin_files=(), gin_params=()) -> dict:
  """Everything that determines a (row, seed) result, JSON-normalised."""
  settings = {"row": row.key, "seed": seed, "dataset": dataset,
              "scale": dataclasses.asdict(scale), "gin_files": list(gin_files),
              "gin_params": list(gin_params)}
  settings["scale"]["seeds"] = None  # not a setting of one run
  return json.loads(json.dumps(settings))


def load_result(row_dir: str, settings: dict) -> dict | None:
  """The stored result in `row_dir` if it was made with `settings`."""
  path = os.path.join(row_dir, "result.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    stored = json.load(f)
  return stored if stored.get("settings") == settings else None


class Interrupted(Exception):
  """Training was stopped by a signal (after saving a checkpoint)."""


def run_row(row: Row, scale: Scale, dataset: str, seed: int, row_dir: str,
            gin_files=(), gin_params=(),
            command: str = "") -> dict:
  """Trains and evaluates one row for one seed; returns (and stores) its
  result. A stored result of the same settings is reused."""
  result_path = os.path.join(row_dir, "result.json")
  settings = run_settings(row, scale, dataset, seed, gin_files,
                          gin_params)
  stored = load_result(row_dir, settings)
  if stored is not None:
    logging.info("Reusing %s", result_path)
    return stored
  config = configure_row(row, scale, dataset, seed, gin_files,
                         gin_params)
  logging.info("Row %s, seed %d: %s", row.key, seed, config)
  start = time.time()
  trainer = train_lib.train(row_dir)  # seeds the weights with train.seed
  if getattr(trainer, "interrupted_by", None):
    raise Interrupted(f"{trainer.interrupted_by} received while training "
                      f"{row_dir}; re-run the same command to resume")
  train_seconds = time.time() - start
  num_params = int(sum(np.prod(v.shape)
                       for v in trainer.model.trainable_variables))
  start = time.time()
  train_elbo = training_elbo(trainer.model, scale.train_eval_sequences)
  del trainer
  test = eval_lib.run(
      row_dir, output_dir=os.path.join(row_dir, "eval_test"), split="test",
      num_samples=scale.num_samples, max_sequences=scale.eval_sequences,
      batch_size=min(8, scale.eval_sequences), num_visualized=2,
      i3d_handle="", lpips_weights="", seed=seed)
  eval_seconds = time.time() - start
  result = {
      "settings": settings,
      "command": command,
      "finished": _now(),
      "num_params": num_params,
      "latent_resolutions": list(config.latent_resolutions),
      "latent_channels": list(config.latent_channels),
      "train_seconds": train_seconds, "eval_seconds": eval_seconds,
      "train": train_elbo,
      "test": {k: test["elbo"][k] for k in ("neg_elbo", "nll", "kl")},
      # Nats per sequence: per-element means x elements per channel.
      "kl_per_level": [
          float(np.sum(k)) * r * r * test["protocol"]["future_frames"]
          for k, r in zip(test["kl"]["per_channel"],
                          config.latent_resolutions)],
      "active": test["kl"]["active"],
      "maximally_active": test["kl"]["maximally_active"],
      "channels": test["kl"]["channels"],
      "ssim": test["ssim"]["mean"], "psnr": test["psnr"]["mean"],
      "ssim_per_timestep": test["ssim"]["per_timestep"],
      "num_test_sequences": test["protocol"]["dataset"]["num_sequences"],
  }
  with open(result_path + ".tmp", "w") as f:
    json.dump(result, f, indent=2)
  os.replace(result_path + ".tmp", result_path)
  return result


# --------------------------------------------------------------------------
# Claims.

METRICS = {
    # name: (how to read it from a result, lower is better, label)
    "train_elbo": (lambda r: r["train"]["neg_elbo"], True, "train -ELBO"),
    "test_elbo": (lambda r: r["test"]["neg_elbo"], True, "test -ELBO"),
    "active": (lambda r: sum(r["active"]), False, "active latent channels"),
    "ssim": (lambda r: r["ssim"], False, "best-of-N SSIM"),
    "psnr": (lambda r: r["psnr"], False, "best-of-N PSNR"),
}


@dataclasses.dataclass
class Comparison:
  """Whether row `better` beats row `worse` on `metric`, seed by seed."""
  metric: str
  better: str
  worse: str
  per_seed: list  # (value of better, value of worse) per seed
  paper: tuple | None = None  # the paper's (better, worse) values, if any

  @property
  def wins(self) -> int:
    lower = METRICS[self.metric][1]
    return sum((a < b) if lower else (a > b) for a, b in self.per_seed)

  @property
  def verdict(self) -> str:
    """held / did not hold / inconclusive (seeds disagree), with a note when
    there is a single seed."""
    n = len(self.per_seed)
    if self.wins == n:
      verdict = "held"
    elif self.wins == 0:
      verdict = "did not hold"
    else:
      verdict = "inconclusive"
    return verdict + (" (1 seed)" if n == 1 else f" ({self.wins}/{n} seeds)")

  def describe(self, labels) -> str:
    label = METRICS[self.metric][2]
    pairs = ", ".join(f"{_fmt(a)} vs {_fmt(b)}" for a, b in self.per_seed)
    paper = (f"; paper {_fmt(self.paper[0])} vs {_fmt(self.paper[1])}"
             if self.paper else "")
    relation = "<" if METRICS[self.metric][1] else ">"
    return (f"{label}: {labels[self.better]} {relation} {labels[self.worse]}"
            f" — {self.verdict} [{pairs}{paper}]")


def _fmt(x) -> str:
  if isinstance(x, float) and abs(x) < 10:
    return f"{x:.3f}"
  return f"{x:.0f}" if isinstance(x, (int, float)) else str(x)


def compare(results, metric, better, worse, paper=None) -> Comparison:
  """results: {row: {seed: result}}; compares on the seeds both rows have."""
  get = METRICS[metric][0]
  seeds = sorted(set(results[better]) & set(results[worse]))
  return Comparison(metric, better, worse,
                    [(get(results[better][s]), get(results[worse][s]))
                     for s in seeds], paper)


def _paper_elbo(study, key, split):
  elbo = study.row(key).paper_elbo
  return None if elbo is None else elbo[0 if split == "train" else 1]


@dataclasses.dataclass
class Claim:
  """A directional claim of the paper and the comparisons that test it.

  fixed_verdict: set by claims not made of pairwise comparisons.
  """
  statement: str
  comparisons: list
  note: str = ""
  fixed_verdict: str | None = None

  @property
  def verdict(self) -> str:
    if self.fixed_verdict:
      return self.fixed_verdict
    if not self.comparisons:
      return "not run (rows missing)"
    verdicts = [c.verdict.split(" (")[0] for c in self.comparisons]
    if all(v == "held" for v in verdicts):
      return "held"
    if all(v == "did not hold" for v in verdicts):
      return "did not hold"
    if "held" in verdicts or "inconclusive" in verdicts:
      return "partly held / inconclusive"
    return "did not hold"


def check_claims(study: Study, results) -> list:
  """The paper's directional claims for `study`, checked on `results`
  ({row key: {seed: result}}). Comparisons need both rows to have run."""
  ran = lambda *keys: all(k in results and results[k] for k in keys)

  def chain(keys, metric, split=None):
    out = []
    for worse, better in zip(keys, keys[1:]):
      if ran(worse, better):
        paper = ((_paper_elbo(study, better, split),
                  _paper_elbo(study, worse, split)) if split else None)
        out.append(compare(results, metric, better, worse, paper))
    return out

  claims = []
  if study.name == "likelihood":
    keys = [r.key for r in study.rows]
    for split in ("train", "test"):
      claims.append(Claim(
          f"more decoder capacity -> lower {split} ELBO "
          "(1 < 3 < 6 < 6 wider ConvLSTM)",
          chain(keys, f"{split}_elbo", split)))
  elif study.name == "hierarchy":
    keys = ["levels_1", "levels_1_8", "levels_1_8_32"]
    for split in ("train", "test"):
      claims.append(Claim(
          f"more latent levels -> lower {split} ELBO ([1] > [1,8] > [1,8,32])",
          chain(keys, f"{split}_elbo", split)))
    claims.append(_diminishing_returns(study, results))
    if ran("levels_1_8_32", "levels_1_8_16_32"):
      claims.append(Claim(
          "a 4th level does not help: [1,8,32] has a lower test ELBO than "
          "[1,8,16,32] (the paper's Table 2)",
          [compare(results, "test_elbo", "levels_1_8_32", "levels_1_8_16_32",
                   (_paper_elbo(study, "levels_1_8_32", "test"),
                    _paper_elbo(study, "levels_1_8_16_32", "test")))]))
    if ran("levels_1_8_32", "levels_1"):
      psnr = compare(results, "psnr", "levels_1_8_32", "levels_1")
      claims.append(Claim(
          "the hierarchical model's samples beat the single-level model "
          "trained with the same budget on best-of-N SSIM",
          [compare(results, "ssim", "levels_1_8_32", "levels_1")],
          "same steps and batch size; the hierarchical model has more "
          "parameters (see the table). Not part of the claim, for context: "
          "best-of-N PSNR [1, 8, 32] vs [1]: " + ", ".join(
              f"{a:.2f} vs {b:.2f}" for a, b in psnr.per_seed)))
  elif study.name == "training":
    comparisons = [compare(results, "active", key, "naive")
                   for key in ("beta_warmup_dense",) if ran(key, "naive")]
    claims.append(Claim(
        "beta warmup + dense connectivity -> more active latent channels "
        "than naive training (paper Fig. 4)", comparisons,
        "active: average KL per channel > 0.01 nats on the test set, "
        "summed over levels; per level in the table"))
    for split in ("train", "test"):
      claims.append(Claim(
          f"beta warmup + dense -> lower {split} ELBO than each technique "
          "alone and than naive",
          [compare(results, f"{split}_elbo", "beta_warmup_dense", key,
                   (_paper_elbo(study, "beta_warmup_dense", split),
                    _paper_elbo(study, key, split)))
           for key in ("naive", "beta_warmup", "dense")
           if ran("beta_warmup_dense", key)]))
  return claims


def _diminishing_returns(study, results) -> Claim:
  """Test -ELBO gain of each added level, checked seed by seed (the
  paper's 4th level even has a negative gain)."""
  keys = [r.key for r in study.rows]
  if not all(k in results and results[k] for k in keys):
    return Claim("diminishing returns: each added level gains less than "
               "the one before", [], "needs all four rows")
  get = METRICS["test_elbo"][0]
  seeds = sorted(set.intersection(*(set(results[k]) for k in keys)))
  gains = []  # per seed: test -ELBO gain of [1,8], [1,8,32], [1,8,16,32]
  for s in seeds:
    values = [get(results[k][s]) for k in keys]
    gains.append([a - b for a, b in zip(values, values[1:])])
  paper = [study.row(k).paper_elbo[1] for k in keys]
  paper_gains = [a - b for a, b in zip(paper, paper[1:])]
  holds = [g[2] < g[1] < g[0] for g in gains]
  verdict = ("held" if all(holds) else
             "did not hold" if not any(holds) else "inconclusive")
  note = ("test -ELBO gain per added level, per seed: " + "; ".join(
      "seed %d: %s" % (s, ", ".join(f"{x:+.1f}" for x in g))
      for s, g in zip(seeds, gains)) +
          f" (paper: {', '.join(f'{x:+.0f}' for x in paper_gains)}) — "
          f"{verdict} ({sum(holds)}/{len(holds)} seeds)")
  return Claim("diminishing returns: each added level gains less than the "
               "one before ([1]->[1,8] > [1,8]->[1,8,32] > "
               "[1,8,32]->[1,8,16,32])", [], note, fixed_verdict=verdict)


# --------------------------------------------------------------------------
# Report.


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime(
      "%Y-%m-%d %H:%M UTC")


def _mean_spread(values) -> str:
  values = [v for v in values if v is not None]
  if not values:
    return "–"
  mean = float(np.mean(values))
  digits = 3 if abs(mean) < 10 else 1
  if len(values) == 1:
    return f"{mean:.{digits}f}"
  return f"{mean:.{digits}f} ± {np.std(values) :.{digits}f}"


def _count_spread(values) -> str:
  """Counts over seeds: "7" when equal, else "6.5 (6–7)"."""
  if min(values) == max(values):
    return str(values[0])
  return f"{np.mean(values):.1f} ({min(values)}–{max(values)})"


def results_table(study: Study, results) -> str:
  lines = [
      "| row | params | train -ELBO | test -ELBO | test NLL | test KL | "
      "test KL per level | active channels per level | maximally active | "
      "SSIM (best of N) | PSNR (best of N) | paper -ELBO train / test | "
      "train time |",
      "|" + "---|" * 13]
  for row in study.rows:
    runs = list(results.get(row.key, {}).values())
    if not runs:
      continue
    levels = len(runs[0]["active"])
    per_level = lambda name, fmt=_mean_spread: " / ".join(
        fmt([r[name][l] for r in runs]) for l in range(levels))
    paper = (f"{row.paper_elbo[0]} / {row.paper_elbo[1]}" if row.paper_elbo
             else "–")
    lines.append(" | ".join([
        f"| {row.label}", f"{runs[0]['num_params'] / 1e3:.0f}k",
        _mean_spread([r["train"]["neg_elbo"] for r in runs]),
        _mean_spread([r["test"]["neg_elbo"] for r in runs]),
        _mean_spread([r["test"]["nll"] for r in runs]),
        _mean_spread([r["test"]["kl"] for r in runs]),
        per_level("kl_per_level"),
        per_level("active", _count_spread) + " of " + " / ".join(
            str(c) for c in runs[0]["channels"]),
        per_level("maximally_active", _count_spread),
        _mean_spread([r["ssim"] for r in runs]),
        _mean_spread([r["psnr"] for r in runs]),
        paper,
        f"{np.mean([r['train_seconds'] for r in runs]) / 60:.1f} min |"]))
  return "\n".join(lines)


def per_seed_table(study: Study, results) -> str:
  lines = ["| row | seed | train -ELBO | test -ELBO | active per level | "
           "SSIM | PSNR |", "|---|---|---|---|---|---|---|"]
  for row in study.rows:
    for seed, r in sorted(results.get(row.key, {}).items()):
      lines.append(
          f"| {row.label} | {seed} | {r['train']['neg_elbo']:.1f} | "
          f"{r['test']['neg_elbo']:.1f} | "
          f"{'/'.join(str(a) for a in r['active'])} | {r['ssim']:.4f} | "
          f"{r['psnr']:.2f} |")
  return "\n".join(lines)


def write_plots(study: Study, results, out_dir: str) -> list[str]:
  """elbo.png, active_units.png, ssim_per_timestep.png; returns the names."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  rows = [r for r in study.rows if results.get(r.key)]
  if not rows:
    return []
  labels = [r.label for r in rows]
  x = np.arange(len(rows))
  names = []

  fig = Figure(figsize=(1.8 * len(rows) + 3, 3.5), layout="constrained")
  axes = fig.subplots(1, 2)
  for ax, split in zip(axes, ("train", "test")):
    for i, row in enumerate(rows):
      values = [r[split]["neg_elbo"] for r in results[row.key].values()]
      ax.bar(i, np.mean(values), color="C0", alpha=0.6)
      ax.plot([i] * len(values), values, "k.", markersize=6)
    ax.set_xticks(x, labels, rotation=20, fontsize="small")
    ax.set_title(f"{split} -ELBO (nats/sequence; dots: seeds)")
    lo = min(r[split]["neg_elbo"] for row in rows
             for r in results[row.key].values())
    hi = max(r[split]["neg_elbo"] for row in rows
             for r in results[row.key].values())
    ax.set_ylim(lo - 0.15 * (hi - lo + 1), hi + 0.15 * (hi - lo + 1))
    ax.grid(axis="y", alpha=0.3)
  fig.savefig(os.path.join(out_dir, "elbo.png"), dpi=100)
  names.append("elbo.png")

  fig = Figure(figsize=(1.8 * len(rows) + 2, 3.5), layout="constrained")
  ax = fig.subplots()
  max_levels = max(len(next(iter(results[r.key].values()))["active"])
                   for r in rows)
  width = 0.8 / max_levels
  for level in range(max_levels):
    means = []
    for row in rows:
      runs = list(results[row.key].values())
      means.append(np.mean([r["active"][level] / r["channels"][level]
                            for r in runs])
                   if level < len(runs[0]["active"]) else np.nan)
    ax.bar(x + (level - (max_levels - 1) / 2) * width, means, width,
           label=f"level {level + 1}")
  ax.set_xticks(x, labels, rotation=20, fontsize="small")
  ax.set_ylabel("fraction of channels active (KL > 0.01)")
  ax.set_ylim(0, 1.05)
  ax.legend(fontsize="small")
  fig.savefig(os.path.join(out_dir, "active_units.png"), dpi=100)
  names.append("active_units.png")

  fig = Figure(figsize=(5, 3.5), layout="constrained")
  ax = fig.subplots()
  for row in rows:
    curves = np.array([r["ssim_per_timestep"]
                       for r in results[row.key].values()])
    ax.plot(np.arange(1, curves.shape[1] + 1), curves.mean(0), marker="o",
            markersize=3, label=row.label)
  ax.set_xlabel("predicted frame")
  ax.set_ylabel("SSIM, best of N (mean over seeds)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize="small")
  fig.savefig(os.path.join(out_dir, "ssim_per_timestep.png"), dpi=100)
  names.append("ssim_per_timestep.png")
  return names


def write_report(study: Study, scale: Scale, dataset: str, results, out_dir,
                 command: str, digits: str, started: str,
                 wall_seconds: float) -> str:
  """Writes report.md and results.json in `out_dir`; returns the markdown."""
  labels = {r.key: r.label for r in study.rows}
  claims = check_claims(study, results)
  plots = write_plots(study, results, out_dir)
  seeds = sorted({s for per_row in results.values() for s in per_row})
  any_run = next(r for per_row in results.values() for r in per_row.values())
  runs = [r for per_row in results.values() for r in per_row.values()]
  finished = {}  # command -> times its rows finished
  for r in runs:
    finished.setdefault(r.get("command") or "?", []).append(
        r.get("finished") or "?")
  compute = sum(r["train_seconds"] + r["eval_seconds"] for r in runs) / 60
  data = (f"Stochastic Moving MNIST, 2 digits, {scale.image_size}x"
          f"{scale.image_size}, {scale.context_frames} -> "
          f"{scale.future_frames} frames; {digits}" if dataset == "smmnist"
          else f"each row's gin data ({digits})")
  lines = [
      f"# Ablation study: {study.title}", "",
      f"- report written {_now()} by `{command}` (started {started}, "
      f"{wall_seconds / 60:.1f} min wall time)",
      *[f"- {len(times)} row run(s) by `{c}`, finished {min(times)} to "
        f"{max(times)}" for c, times in sorted(finished.items())],
      f"- training + evaluation time of the rows reported: {compute:.1f} min",

      f"- machine: {platform.platform()}, {os.cpu_count()} CPU cores visible, "
      f"GPUs: {len(tf.config.list_physical_devices('GPU'))}; "
      f"TensorFlow {tf.__version__}",
      f"- scale: {scale.description}",
      f"- data: {data}",
      f"- steps {scale.num_steps}, batch {scale.batch_size}, n_hid "
      f"{scale.n_hid or PAPER_N_HID}, seeds {seeds}; test: "
      f"{any_run['num_test_sequences']} sequences, best of "
      f"{scale.num_samples} samples; train -ELBO on "
      f"{scale.train_eval_sequences} training-stream sequences",
      "- -ELBO = NLL + KL in nats per sequence (beta = 1), lower is better. "
      "The paper's numbers are on BAIR with the full-size models: compare "
      "directions, not values.", "",
      "## Results (mean ± std over seeds)", "",
      results_table(study, results), "",
      "Per seed:", "", per_seed_table(study, results), "",
      "## The paper's claims at this scale", ""]
  for claim in claims:
    lines.append(f"- **{claim.statement}: {claim.verdict}**")
    for c in claim.comparisons:
      if c.per_seed:
        lines.append(f"  - {c.describe(labels)}")
    if claim.note:
      lines.append(f"  - {claim.note}")
  lines += ["", "Verdicts count seeds: \"held\" when every seed agrees with "
            "the paper's direction, \"inconclusive\" when seeds disagree. "
            "With one or two seeds and short training, a held claim is weak "
            "evidence and a failed one is not a refutation.", ""]
  if plots:
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
  lines += ["Per-row outputs: `<row>/seed_<s>/eval_test/` (metrics.json, "
            "per_timestep.png, kl_per_channel.png, sample GIFs).", ""]
  markdown = "\n".join(lines)
  with open(os.path.join(out_dir, "report.md"), "w") as f:
    f.write(markdown)
  with open(os.path.join(out_dir, "results.json"), "w") as f:
    json.dump({"study": study.name, "command": command, "started": started,
               "wall_seconds": wall_seconds, "digits": digits,
               "scale": dataclasses.asdict(scale), "dataset": dataset,
               "claims": [{"statement": c.statement,
                           "verdict": c.verdict, "note": c.note,
                           "comparisons": [dataclasses.asdict(x)
                                           for x in c.comparisons]}
                          for c in claims],
               "results": results}, f, indent=2)
  return markdown


# --------------------------------------------------------------------------
# The study.


def run_study(study_name: str, scale: Scale, workdir: str,
              dataset: str = "smmnist", rows=None, mnist_dir=None,
              gin_files=(), gin_params=(), command: str = "") -> dict:
  """Runs every (row, seed) of a study and writes the report.

  Returns {"results": {row: {seed: result}}, "claims": [...], "report": path}.
  """
  if dataset not in DATASETS:
    raise ValueError(f"dataset={dataset!r} is not one of {DATASETS}")
  study = STUDIES[study_name]
  selected = [study.row(k) for k in rows] if rows else list(study.rows)
  out_dir = os.path.join(workdir, study.name)
  os.makedirs(out_dir, exist_ok=True)
  started = _now()
  start = time.time()
  digits = "the rows' own datasets"
  if dataset == "smmnist":
    # The digits' bindings come first: the user's gin_params win.
    data_bindings, digits = prepare_mnist(mnist_dir)
    gin_params = [*data_bindings, *gin_params]
  results = {}
  for seed in scale.seeds:
    for row in selected:
      logging.info("=== %s / %s / seed %d ===", study.name, row.key, seed)
      results.setdefault(row.key, {})[seed] = run_row(
          row, scale, dataset, seed,
          os.path.join(out_dir, row.key, f"seed_{seed}"), gin_files,
          gin_params, command)
  # Seeds of the same settings finished by earlier invocations.
  for row in study.rows:
    row_root = os.path.join(out_dir, row.key)
    for name in sorted(os.listdir(row_root)) if os.path.isdir(row_root) else []:
      if not name.startswith("seed_") or not name[5:].isdigit():
        continue
      seed = int(name[5:])
      if seed in results.get(row.key, {}):
        continue
      stored = load_result(os.path.join(row_root, name), run_settings(
          row, scale, dataset, seed, gin_files, gin_params))
      if stored is not None:
        results.setdefault(row.key, {})[seed] = stored
  write_report(study, scale, dataset, results, out_dir, command, digits,
               started, time.time() - start)
  gin.clear_config()
  return {"results": results, "claims": check_claims(study, results),
          "report": os.path.join(out_dir, "report.md")}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  scale = scale_with_overrides(
      SCALES[FLAGS.scale], num_steps=FLAGS.num_steps, n_hid=FLAGS.n_hid,
      epochs=FLAGS.epochs,
      batch_size=FLAGS.batch_size, eval_sequences=FLAGS.eval_sequences,
      train_eval_sequences=FLAGS.train_eval_sequences,
      num_samples=FLAGS.num_samples,
      seeds=tuple(int(s) for s in FLAGS.seeds) if FLAGS.seeds else None)
  command = "python -m hvrnn_tf.experiments.ablation " + " ".join(
      shlex.quote(a) for a in sys.argv[1:])
  try:
    out = run_study(FLAGS.study, scale, FLAGS.workdir, FLAGS.dataset,
                    FLAGS.rows, FLAGS.mnist_dir, FLAGS.gin_file,
                    FLAGS.gin_param, command)
  except (ValueError, OSError, KeyError, Interrupted) as e:
    sys.exit(f"hvrnn_tf.experiments.ablation: error: {e}")
  print(open(out["report"]).read())


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["study", "workdir"])
  app.run(main)
