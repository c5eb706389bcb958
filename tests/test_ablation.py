"""The ablation binary: flags make the scale and settings of a run (a stored
result of the same settings is reused, so nothing trains here), and errors
are one line."""

import json
import os
import subprocess
import sys

from hvrnn_tf.experiments import runner
from hvrnn_tf.experiments import scales
from hvrnn_tf.experiments import studies

BINARY = [sys.executable, "-m", "hvrnn_tf.experiments.ablation"]


def _stored_result(settings):
  return {
    "settings": settings,
    "command": "earlier",
    "finished": "2026-01-01",
    "num_params": 1000,
    "train_seconds": 6.0,
    "eval_seconds": 3.0,
    "latent_resolutions": [1],
    "latent_channels": [2],
    "train": {"neg_elbo": 90.0, "nll": 80.0, "kl": 10.0},
    "test": {"neg_elbo": 100.0, "nll": 90.0, "kl": 10.0},
    "kl_per_level": [10.0],
    "active": [1],
    "maximally_active": [0],
    "channels": [2],
    "ssim": 0.5,
    "psnr": 12.0,
    "ssim_per_timestep": [0.6, 0.4],
    "num_test_sequences": 4,
  }


def test_binary_reuses_a_result_of_its_settings_and_prints_the_report(tmp_path):
  scale = scales.with_overrides(scales.load("tiny"), num_steps=3, num_samples=5)
  row = studies.STUDIES["hierarchy"].row("levels_1")
  row_dir = tmp_path / "hierarchy" / "levels_1" / "seed_4"
  row_dir.mkdir(parents=True)
  settings = runner.run_settings(row, scale, "gin", 4)
  (row_dir / "result.json").write_text(json.dumps(_stored_result(settings)))
  before = os.path.getmtime(row_dir / "result.json")
  flags = [
    "--study=hierarchy",
    "--scale=tiny",
    "--dataset=gin",
    "--rows=levels_1",
    "--seeds=4",
    "--num_steps=3",
    "--num_samples=5",
    f"--workdir={tmp_path}",
  ]
  ran = subprocess.run(
    BINARY + flags, capture_output=True, text=True, check=True
  )
  assert os.path.getmtime(row_dir / "result.json") == before
  assert ran.stdout.startswith(
    "# Ablation study: Table 2: number of latent levels"
  )
  assert (
    "by `python -m hvrnn_tf.experiments.ablation " + " ".join(flags) + "`"
  ) in ran.stdout
  assert "| [1] | 4 | 90.0 | 100.0 | 1 | 0.5000 | 12.00 |" in ran.stdout
  assert (tmp_path / "hierarchy" / "report.md").read_text() in ran.stdout


def test_binary_names_a_bad_row(tmp_path):
  bad = subprocess.run(
    BINARY + ["--study=hierarchy", "--rows=levels_2", f"--workdir={tmp_path}"],
    capture_output=True,
    text=True,
    check=False,
  )
  assert bad.returncode == 1
  assert (
    bad.stderr.strip()
    .splitlines()[-1]
    .startswith(
      "hvrnn_tf.experiments.ablation: error: \"study 'hierarchy' has no row "
      "'levels_2'"
    )
  )
