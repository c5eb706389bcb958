"""Compares evaluated runs: a markdown table and per-timestep curves.

    python -m hvrnn_tf.experiments.compare --output_dir=docs/results \
        --run="[1,8,32]=runs/smmnist_cpu/eval" \
        --run="copy last frame=runs/smmnist_cpu/eval_copy_last_frame"

Each --run is NAME=DIR, DIR holding the metrics.json `hvrnn_tf.eval` wrote.
Prints the table (steps, -ELBO, best-of-N SSIM / SVG SSIM / PSNR averaged
over the predicted frames and at the last one) and writes per_timestep.png
with one line per run.
"""

import json
import os
import sys

from absl import app
from absl import flags
import tensorflow as tf

from hvrnn_tf.evaluation import plots

SCORES = ("ssim", "ssim_svg", "psnr")

FLAGS = flags.FLAGS


def define_flags():
  """Defines the flags (only when run as a binary: other binaries that tests
  import in the same process define flags of the same names)."""
  flags.DEFINE_multi_string("run", [], "NAME=EVAL_DIR, in table order.")
  flags.DEFINE_string("output_dir", None, "Where the plot goes.")


def load_runs(specs) -> dict:
  """{name: metrics} from "NAME=DIR" strings; errors name the bad spec."""
  runs = {}
  for spec in specs:
    name, sep, directory = spec.partition("=")
    if not sep or not name or not directory:
      raise ValueError(f"--run={spec!r} is not NAME=EVAL_DIR")
    path = os.path.join(directory, "metrics.json")
    try:
      with tf.io.gfile.GFile(path) as f:
        runs[name] = json.load(f)
    except (OSError, tf.errors.OpError, json.JSONDecodeError) as e:
      raise ValueError(f"--run={spec!r}: cannot read {path}: {e}") from e
  if not runs:
    raise ValueError("no --run given")
  return runs


def _cell(metrics, name, last):
  value = metrics[name]["per_timestep"][-1] if last else metrics[name]["mean"]
  return f"{value:.2f}" if name == "psnr" else f"{value:.3f}"


def table(runs: dict) -> str:
  """Markdown table, one row per run."""
  header = ["run", "predictor", "step", "-ELBO (nats)"]
  for name in SCORES:
    header += [f"{name} mean", f"{name} last"]
  lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
  for run, metrics in runs.items():
    protocol = metrics["protocol"]
    elbo = metrics.get("elbo")
    predictor = protocol.get("predictor", "model")
    # A baseline has no training steps (it only read the run's data config).
    row = [
      run,
      predictor,
      str(protocol["checkpoint_step"]) if predictor == "model" else "-",
      f"{elbo['neg_elbo']:.1f}" if elbo else "-",
    ]
    for name in SCORES:
      row += [_cell(metrics, name, last=False), _cell(metrics, name, last=True)]
    lines.append("| " + " | ".join(row) + " |")
  lines += [
    f"\nWarning: {run}: {metrics['warning']}."
    for run, metrics in runs.items()
    if "warning" in metrics
  ]
  return "\n".join(lines)


def write_plot(runs: dict, output_dir: str) -> str:
  """per_timestep.png of every run's SCORES; returns its path."""
  first = next(iter(runs.values()))["protocol"]
  tf.io.gfile.makedirs(output_dir)
  path = os.path.join(output_dir, "per_timestep.png")
  plots.plot_runs_per_timestep(
    {
      run: {name: m[name]["per_timestep"] for name in SCORES}
      for run, m in runs.items()
    },
    first["context_frames"] + 1,
    path,
    first["num_samples"],
  )
  return path


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    runs = load_runs(FLAGS.run)
    print(table(runs))
    if FLAGS.output_dir:
      print(f"Wrote {write_plot(runs, FLAGS.output_dir)}")
  except (ValueError, KeyError) as e:
    sys.exit(f"hvrnn_tf.experiments.compare: error: {e}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
