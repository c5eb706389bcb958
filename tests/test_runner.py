"""Running a study: the MNIST hold-out split, reuse of finished results, and
one tiny row trained, evaluated and reported end to end."""

import gzip
import json
import os
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.experiments import runner
from hvrnn_tf.experiments import scales
from hvrnn_tf.experiments import studies

MNIST_DIR = (
  pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
)


def test_mnist_test_file_alone_is_split_into_disjoint_parts(tmp_path):
  source = tmp_path / "mnist"
  source.mkdir()
  digits = np.zeros((10_000, 28, 28), np.uint8)
  with gzip.open(source / "t10k-images-idx3-ubyte.gz", "wb") as f:
    f.write(
      np.array([0x803, 10_000, 28, 28], ">u4").tobytes() + digits.tobytes()
    )
  bindings, description = runner.prepare_mnist(str(source))
  assert bindings == [
    f"data.make_dataset.mnist_dir = {str(source)!r}",
    "data.make_dataset.split_test_file_at = 8000",
  ]
  assert "first 8000 for training, last 2000 held out" in description
  # A folder with both splits is used as it is.
  shutil.copy(
    source / "t10k-images-idx3-ubyte.gz", source / "train-images-idx3-ubyte.gz"
  )
  assert runner.prepare_mnist(str(source))[0] == bindings[:1]


def test_stored_results_are_reused_only_for_the_same_settings(tmp_path):
  row = studies.STUDIES["hierarchy"].row("levels_1")
  tiny = scales.load("tiny")
  settings = runner.run_settings(row, tiny, "smmnist", 0, gin_params=["a=1"])
  assert settings["scale"]["seeds"] is None  # the same for any --seeds
  assert settings == runner.run_settings(
    row,
    scales.with_overrides(tiny, seeds=(0, 5)),
    "smmnist",
    0,
    gin_params=("a=1",),
  )
  assert runner.load_result(str(tmp_path), settings) is None
  (tmp_path / "result.json").write_text(json.dumps({"settings": settings}))
  assert runner.load_result(str(tmp_path), settings) == {"settings": settings}
  other = runner.run_settings(
    row,
    scales.with_overrides(tiny, num_steps=3),
    "smmnist",
    0,
    gin_params=["a=1"],
  )
  assert runner.load_result(str(tmp_path), other) is None


@pytest.fixture
def eagerly():
  """Runs tf.functions eagerly: tracing train and eval steps would take most
  of the test (their graphs are tested by test_train and test_eval)."""
  tf.config.run_functions_eagerly(True)
  yield
  tf.config.run_functions_eagerly(False)


@pytest.mark.filterwarnings(
  "ignore:Even though the `tf.config.experimental_"
  "run_functions_eagerly`:UserWarning"
)
def test_tiny_row_end_to_end(tmp_path, eagerly):  # pylint: disable=unused-argument
  """One row ([1, 8], with a 1-ConvLSTM decoder) at the tiny scale: trains,
  evaluates, reports; a second invocation reuses the result and picks up
  results of earlier runs."""
  scale = scales.with_overrides(
    scales.load("tiny"), num_steps=1, eval_sequences=2, train_eval_sequences=2
  )
  mnist = str(MNIST_DIR) if MNIST_DIR.exists() else None
  run = lambda command: runner.run_study(
    "hierarchy",
    scale,
    str(tmp_path),
    rows=["levels_1_8"],
    mnist_dir=mnist,
    gin_params=["model.ModelConfig.decoder_convlstm_layers = 1"],
    command=command,
  )
  out = run("first")
  study_dir = tmp_path / "hierarchy"
  result = out["results"]["levels_1_8"][0]
  assert result["num_params"] > 0 and result["train_seconds"] > 0
  assert np.isfinite(result["test"]["neg_elbo"])
  assert np.isclose(
    result["test"]["neg_elbo"], result["test"]["nll"] + result["test"]["kl"]
  )
  # KL per level in nats per sequence (8x8 latents: 64 elements a channel).
  assert result["latent_resolutions"] == [1, 8]
  assert np.isclose(
    sum(result["kl_per_level"]), result["test"]["kl"], rtol=1e-3, atol=1e-3
  )
  assert len(result["active"]) == len(result["channels"]) == 2
  assert 0 < result["ssim"] <= 1 and len(result["ssim_per_timestep"]) == 2
  assert result["num_test_sequences"] == 2
  eval_dir = study_dir / "levels_1_8" / "seed_0" / "eval_test"
  assert (eval_dir / "metrics.json").exists()
  assert (eval_dir / "kl_per_channel.png").exists()
  assert "| [1, 8] |" in (study_dir / "report.md").read_text()
  assert out["report"] == str(study_dir / "report.md")

  # As if earlier runs had made seed 1 of this row and seed 0 of another:
  # run again; the finished seed is reused, the others are reported too.
  stored = study_dir / "levels_1_8" / "seed_0" / "result.json"
  for row, seed in (("levels_1_8", 1), ("levels_1", 0)):
    fake = json.loads(stored.read_text())
    fake["settings"].update(row=row, seed=seed)
    fake["test"]["neg_elbo"] += 1.0
    (study_dir / row / f"seed_{seed}").mkdir(parents=True)
    (study_dir / row / f"seed_{seed}" / "result.json").write_text(
      json.dumps(fake)
    )
  before = os.path.getmtime(stored)
  again = run("second")
  assert os.path.getmtime(stored) == before
  assert sorted(again["results"]["levels_1_8"]) == [0, 1]
  assert list(again["results"]["levels_1"]) == [0]
  report = (study_dir / "report.md").read_text()
  assert "3 row run(s) by `first`" in report
  assert "| [1, 8] | 1 |" in report
  assert "test -ELBO: [1, 8] < [1] — held (1 seed)" in report
