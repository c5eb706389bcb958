"""Tests of hvrnn_tf.experiments.compare."""

import json
import subprocess
import sys

from PIL import Image
import pytest

from hvrnn_tf.experiments import compare


def _metrics(ssim, step=1200, predictor="model", elbo=True):
  curve = lambda v: {"mean": v, "per_timestep": [v + 0.1, v - 0.1]}
  metrics = {name: curve(ssim) for name in ("ssim", "ssim_svg")}
  metrics["psnr"] = curve(20.0)
  metrics["protocol"] = {
    "checkpoint_step": step,
    "predictor": predictor,
    "context_frames": 5,
    "num_samples": 20,
  }
  if elbo:
    metrics["elbo"] = {"neg_elbo": 1234.56}
  return metrics


@pytest.fixture
def run_dirs(tmp_path):
  specs = []
  for name, metrics in (
    ("hier", _metrics(0.8)),
    ("copy", _metrics(0.6, predictor="copy_last_frame", elbo=False)),
  ):
    (tmp_path / name).mkdir()
    (tmp_path / name / "metrics.json").write_text(json.dumps(metrics))
    specs.append(f"{name}={tmp_path / name}")
  return specs


def test_table_has_a_row_per_run_with_means_and_last_step(run_dirs):
  text = compare.table(compare.load_runs(run_dirs))
  lines = text.splitlines()
  assert len(lines) == 4
  assert lines[2].startswith("| hier | model | 1200 | 1234.6 | 0.800 | 0.700 |")
  assert lines[3].startswith("| copy | copy_last_frame | - | - | 0.600 |")


def test_runs_on_stand_in_digits_are_flagged(run_dirs, tmp_path):
  metrics = _metrics(0.5)
  metrics["warning"] = "evaluated on the offline stand-in digits"
  (tmp_path / "stand_in").mkdir()
  (tmp_path / "stand_in" / "metrics.json").write_text(json.dumps(metrics))
  text = compare.table(
    compare.load_runs([*run_dirs, f"offline={tmp_path / 'stand_in'}"])
  )
  assert text.splitlines()[-1] == (
    "Warning: offline: evaluated on the offline stand-in digits."
  )


def test_plot_is_written(run_dirs, tmp_path):
  path = compare.write_plot(compare.load_runs(run_dirs), str(tmp_path / "out"))
  with Image.open(path) as image:
    assert image.format == "PNG"


@pytest.mark.parametrize(
  "spec, message",
  [
    ("no-equals", "is not NAME=EVAL_DIR"),
    ("x=/does/not/exist", "cannot read /does/not/exist/metrics.json"),
  ],
)
def test_bad_run_specs_are_named(spec, message):
  with pytest.raises(ValueError, match=message):
    compare.load_runs([spec])


def test_binary_prints_the_table_and_names_errors(run_dirs, tmp_path):
  command = [
    sys.executable,
    "-m",
    "hvrnn_tf.experiments.compare",
    *(f"--run={spec}" for spec in run_dirs),
    f"--output_dir={tmp_path / 'plots'}",
  ]
  ran = subprocess.run(command, capture_output=True, text=True, check=True)
  assert "| hier | model | 1200 |" in ran.stdout
  assert (tmp_path / "plots" / "per_timestep.png").exists()
  bad = subprocess.run(
    command[:3] + ["--run=nope"], capture_output=True, text=True, check=False
  )
  assert bad.returncode != 0
  assert bad.stderr.strip().splitlines()[-1] == (
    "hvrnn_tf.experiments.compare: error: --run='nope' is not NAME=EVAL_DIR"
  )
