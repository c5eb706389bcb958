r"""Reduced-scale (or full-scale) reproduction of the paper's ablation tables.

    python -m hvrnn_tf.experiments.ablation --study=hierarchy --scale=small \
        --workdir=runs/ablation [--seeds=0,1] [--num_steps=N] [--n_hid=N] \
        [--mnist_dir=DIR] [--rows=KEY,KEY] [--gin_param=...]

Each row of a study is one gin file of gin/ablations/ (the paper-size model).
A scale shrinks it to what the machine can train, the same way for every row
(scales.row_bindings): on Stochastic Moving MNIST (--dataset=smmnist: 1
channel, Bernoulli likelihood) at a reduced width n_hid (latent channels
scaled by n_hid / 64), with the scale's frames, batch size, steps and
learning rate; schedules given in epochs (beta and learning-rate warmup) keep
their length relative to training, one "epoch" being num_steps / scale.epochs
steps. --dataset=gin keeps each gin file's data
(BAIR) and frame settings and only changes width and training length.

For every row and seed the script trains with hvrnn_tf.train, then evaluates
with hvrnn_tf.eval: the test ELBO (beta = 1), KL per level, active units,
best-of-N SSIM / PSNR on the test split; and the ELBO of the trained model
on sequences of the training stream (runner.training_elbo). LPIPS and
FVD are skipped (they need downloaded networks; run hvrnn_tf.eval on a row's
workdir for them). It writes, under WORKDIR/<study>/:

  report.md            table, the paper's directional claims checked, plots
  results.json         every number of the report
  elbo.png, active_units.png, ssim_per_timestep.png
  <row>/seed_<s>/      the training workdir, result.json, and eval_test/:
                       eval.py's outputs (metrics.json, plots, GIFs)

Scales (gin/scales/<name>.gin; every field can be overridden by its flag):
tiny (tests, seconds per row), small (a 2-core CPU, minutes per row), medium
(one GPU, hours per row), full (the paper's width and SM-MNIST recipe). With
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

The pieces: studies (the tables' rows), scales (gin/scales/ and how a row is
shrunk), runner (train + evaluate a row, reuse finished ones), claims (the
paper's claims checked), report (report.md, results.json, plots).
"""

import shlex
import sys

from absl import app
from absl import flags
import tensorflow as tf

from hvrnn_tf import train  # noqa: F401  (defines --workdir, --gin_file, --gin_param)
from hvrnn_tf.experiments import runner
from hvrnn_tf.experiments import scales
from hvrnn_tf.experiments import studies

FLAGS = flags.FLAGS


def define_flags():
  """Flags of the binary; --workdir, --gin_file, --gin_param come from
  hvrnn_tf.train (imported above), and apply to every row."""
  flags.DEFINE_enum(
    "study", None, sorted(studies.STUDIES), "Which table to run."
  )
  flags.DEFINE_enum("scale", "small", sorted(scales.NAMES), "Preset of sizes.")
  flags.DEFINE_enum(
    "dataset",
    "smmnist",
    scales.DATASETS,
    "smmnist: Stochastic Moving MNIST at the scale's frame "
    "size; gin: the rows' own data (BAIR; bind "
    "data.make_dataset.file_pattern with --gin_param).",
  )
  flags.DEFINE_list("seeds", None, "Seeds, e.g. 0,1 (default: the scale's).")
  flags.DEFINE_list("rows", None, "Subset of the study's row keys.")
  flags.DEFINE_integer("num_steps", None, "Training steps per row.")
  flags.DEFINE_float(
    "epochs",
    None,
    "Epochs the run is divided into (the "
    "unit of the warmup schedules): steps_per_epoch = "
    "num_steps / epochs. BAIR as in gin/bair.gin: "
    "--num_steps=500000 --epochs=185.",
  )
  flags.DEFINE_integer("n_hid", None, "Base width (paper: 64).")
  flags.DEFINE_integer("batch_size", None, "Training batch size.")
  flags.DEFINE_integer("eval_sequences", None, "Test sequences evaluated.")
  flags.DEFINE_integer(
    "train_eval_sequences", None, "Training sequences for the train ELBO."
  )
  flags.DEFINE_integer("num_samples", None, "N of best-of-N.")
  flags.DEFINE_string("mnist_dir", None, "MNIST IDX folder (see module doc).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  scale = scales.with_overrides(
    scales.load(FLAGS.scale),
    num_steps=FLAGS.num_steps,
    n_hid=FLAGS.n_hid,
    epochs=FLAGS.epochs,
    batch_size=FLAGS.batch_size,
    eval_sequences=FLAGS.eval_sequences,
    train_eval_sequences=FLAGS.train_eval_sequences,
    num_samples=FLAGS.num_samples,
    seeds=tuple(int(s) for s in FLAGS.seeds) if FLAGS.seeds else None,
  )
  command = "python -m hvrnn_tf.experiments.ablation " + " ".join(
    shlex.quote(a) for a in sys.argv[1:]
  )
  try:
    out = runner.run_study(
      FLAGS.study,
      scale,
      FLAGS.workdir,
      FLAGS.dataset,
      FLAGS.rows,
      FLAGS.mnist_dir,
      FLAGS.gin_file,
      FLAGS.gin_param,
      command,
    )
  except (ValueError, OSError, KeyError, runner.Interrupted) as e:
    sys.exit(f"hvrnn_tf.experiments.ablation: error: {e}")
  with tf.io.gfile.GFile(out["report"]) as f:
    print(f.read())


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["study", "workdir"])
  app.run(main)
