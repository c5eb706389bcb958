"""The ablation study script: configuration of every row at every scale, the
claim checks, the MNIST hold-out split, and a tiny study end to end."""

import gzip
import json
import os
import pathlib
import shutil

import gin
import numpy as np
import pytest

from hvrnn_tf.experiments import ablation

MNIST_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.mark.parametrize("scale", sorted(ablation.SCALES))
@pytest.mark.parametrize("study", sorted(ablation.STUDIES))
def test_every_row_configures_at_every_scale(study, scale):
  scale = ablation.SCALES[scale]
  for row in ablation.STUDIES[study].rows:
    paper = ablation.paper_config(row)
    config = ablation.configure_row(row, scale, "smmnist", seed=3)
    assert config.channels == 1 and config.reconstruction_loss == "bernoulli"
    assert (config.image_size, config.context_frames, config.future_frames) == (
        scale.image_size, scale.context_frames, scale.future_frames)
    assert config.n_hid == (scale.n_hid or paper.n_hid)
    # What the row is about survives the scaling.
    assert config.latent_resolutions == paper.latent_resolutions
    assert config.dense == paper.dense
    assert config.decoder_width_multiplier == paper.decoder_width_multiplier
    # Latent widths are the encoder's there: they scale with n_hid.
    assert config.latent_channels == tuple(
        max(1, round(z * config.n_hid / paper.n_hid))
        for z in paper.latent_channels)
    assert gin.query_parameter("train.num_steps") == scale.num_steps
    assert gin.query_parameter("train.seed") == 3
    assert gin.query_parameter("data.make_dataset.smmnist_style") == (
        "mnist28" if scale.image_size == 32 else "svg")


def test_scaling_keeps_decoder_and_warmup_differences():
  tiny = ablation.SCALES["tiny"]  # 32x32: 5 decoder stages
  likelihood = ablation.STUDIES["likelihood"]
  layers = [ablation.configure_row(row, tiny, "smmnist", 0)
            .decoder_convlstm_layers for row in likelihood.rows]
  assert layers == [1, 3, 5, 5]
  training = ablation.STUDIES["training"]
  warmup = {}
  for row in training.rows:
    ablation.configure_row(row, tiny, "smmnist", 0)
    warmup[row.key] = gin.query_parameter("train.beta_warmup_epochs")
    assert gin.query_parameter("train.steps_per_epoch") == 5  # 20 steps / 4
  assert warmup == {"naive": 0, "beta_warmup": 20, "dense": 0,
                    "beta_warmup_dense": 20}


def test_dataset_gin_keeps_the_rows_data():
  row = ablation.STUDIES["hierarchy"].row("levels_1_8_32")
  config = ablation.configure_row(row, ablation.SCALES["small"], "gin", 0)
  assert (config.image_size, config.channels, config.context_frames,
          config.reconstruction_loss) == (64, 3, 2, "l1")
  assert config.n_hid == 8 and config.latent_channels == (64, 64, 16)
  assert gin.query_parameter("data.make_dataset.source") == "tfrecord"


def test_user_bindings_win():
  row = ablation.STUDIES["hierarchy"].row("levels_1")
  config = ablation.configure_row(
      row, ablation.SCALES["small"], "smmnist", 0,
      gin_params=["model.ModelConfig.n_hid = 16", "train.batch_size = 2"])
  assert config.n_hid == 16
  assert gin.query_parameter("train.batch_size") == 2


def _result(train_elbo, test_elbo, active, ssim, psnr=20.0):
  return {"train": {"neg_elbo": train_elbo}, "test": {"neg_elbo": test_elbo},
          "active": active, "ssim": ssim, "psnr": psnr}


def test_claims_count_seeds():
  study = ablation.STUDIES["hierarchy"]
  results = {
      "levels_1": {0: _result(100, 110, [1], .5), 1: _result(100, 110, [1], .6)},
      "levels_1_8": {0: _result(90, 100, [1, 2], .5),
                     1: _result(90, 120, [1, 2], .6)},
      "levels_1_8_32": {0: _result(80, 95, [1, 2, 3], .4),
                        1: _result(95, 125, [1, 2, 3], .5)},
      "levels_1_8_16_32": {0: _result(79, 94, [1, 2, 3, 4], .4),
                           1: _result(70, 140, [1, 2, 3, 4], .5)},
  }
  claims = {c.statement.split(" (")[0]: c
            for c in ablation.check_claims(study, results)}
  train = claims["more latent levels -> lower train ELBO"]
  assert [c.verdict for c in train.comparisons] == [
      "held (2/2 seeds)", "inconclusive (1/2 seeds)"]
  assert train.verdict == "partly held / inconclusive"
  ssim = claims["the hierarchical model's samples beat the single-level "
                "model trained with the same budget on best-of-N SSIM"]
  assert ssim.verdict == "did not hold"
  # Test gains per seed: seed 0: 10, 5, 1 (diminishing); seed 1: -10, -5, -15.
  returns = claims["diminishing returns: each added level gains less than "
                   "the one before"]
  assert returns.verdict == "inconclusive"
  assert "1/2 seeds" in returns.note
  fourth = claims["a 4th level does not help: [1,8,32] has a lower test ELBO "
                  "than [1,8,16,32]"]
  assert fourth.comparisons[0].verdict == "inconclusive (1/2 seeds)"
  assert fourth.comparisons[0].paper == (1162, 1256)

  one_seed = {k: {0: v[0]} for k, v in results.items()}
  claims = ablation.check_claims(study, one_seed)
  assert claims[0].comparisons[0].verdict == "held (1 seed)"
  assert claims[0].verdict == "held"


def test_training_claims_compare_active_units():
  study = ablation.STUDIES["training"]
  results = {"naive": {0: _result(10, 10, [0, 1, 0], .5)},
             "beta_warmup_dense": {0: _result(9, 9, [1, 3, 2], .5)}}
  claims = ablation.check_claims(study, results)
  assert claims[0].verdict == "held"
  assert claims[0].comparisons[0].per_seed == [(6, 1)]
  assert claims[1].verdict == "held"  # only the rows that ran are compared


def test_mnist_test_file_alone_is_split_into_disjoint_parts(tmp_path):
  source = tmp_path / "mnist"
  source.mkdir()
  digits = np.zeros((10_000, 28, 28), np.uint8)
  with gzip.open(source / "t10k-images-idx3-ubyte.gz", "wb") as f:
    f.write(np.array([0x803, 10_000, 28, 28], ">u4").tobytes() +
            digits.tobytes())
  bindings, description = ablation.prepare_mnist(str(source))
  assert bindings == [f"data.make_dataset.mnist_dir = {str(source)!r}",
                      "data.make_dataset.split_test_file_at = 8000"]
  assert "first 8000 for training, last 2000 held out" in description
  # A folder with both splits is used as it is.
  shutil.copy(source / "t10k-images-idx3-ubyte.gz",
              source / "train-images-idx3-ubyte.gz")
  assert ablation.prepare_mnist(str(source))[0] == bindings[:1]


def test_tiny_hierarchy_study_end_to_end(tmp_path):
  """Two rows of the hierarchy study at the tiny scale: trains, evaluates,
  reports; a second invocation reuses the results and picks up other seeds."""
  scale = ablation.scale_with_overrides(ablation.SCALES["tiny"], num_steps=8)
  mnist = str(MNIST_DIR) if MNIST_DIR.exists() else None
  rows = ["levels_1", "levels_1_8_32"]
  out = ablation.run_study("hierarchy", scale, str(tmp_path), rows=rows,
                           mnist_dir=mnist, command="first")
  study_dir = tmp_path / "hierarchy"
  for key in rows:
    result = out["results"][key][0]
    assert result["num_params"] > 0 and result["train_seconds"] > 0
    assert np.isfinite(result["test"]["neg_elbo"])
    assert np.isclose(result["test"]["neg_elbo"],
                      result["test"]["nll"] + result["test"]["kl"])
    assert np.isclose(sum(result["kl_per_level"]), result["test"]["kl"],
                      rtol=1e-3, atol=1e-3)
    assert len(result["active"]) == len(result["channels"]) == len(
        result["latent_resolutions"])
    assert 0 < result["ssim"] <= 1 and len(result["ssim_per_timestep"]) == 3
    eval_dir = study_dir / key / "seed_0" / "eval_test"
    assert (eval_dir / "metrics.json").exists()
    assert (eval_dir / "kl_per_channel.png").exists()
  report = (study_dir / "report.md").read_text()
  assert "| [1] |" in report and "| [1, 8, 32] |" in report
  assert "best-of-N SSIM: [1, 8, 32] > [1]" in report
  for plot in ("elbo.png", "active_units.png", "ssim_per_timestep.png"):
    assert (study_dir / plot).exists()
    assert f"![{plot}]({plot})" in report
  stored = json.loads((study_dir / "results.json").read_text())
  assert set(stored["results"]) == set(rows)

  # Fake a second seed of one row (as if an earlier run had made it), then
  # run again: the finished seed is reused, the other one is reported too.
  seed_1 = study_dir / "levels_1" / "seed_1"
  seed_1.mkdir()
  result = json.loads((study_dir / "levels_1" / "seed_0" /
                       "result.json").read_text())
  result["settings"]["seed"] = 1
  result["test"]["neg_elbo"] += 1.0
  (seed_1 / "result.json").write_text(json.dumps(result))
  before = os.path.getmtime(study_dir / "levels_1" / "seed_0" / "result.json")
  again = ablation.run_study("hierarchy", scale, str(tmp_path),
                             rows=["levels_1"], mnist_dir=mnist,
                             command="second")
  assert os.path.getmtime(
      study_dir / "levels_1" / "seed_0" / "result.json") == before
  assert sorted(again["results"]["levels_1"]) == [0, 1]
  assert "levels_1_8_32" in again["results"]  # seed 0, from the first run
  report = (study_dir / "report.md").read_text()
  assert "3 row run(s) by `first`" in report
  assert "| [1] | 1 |" in report

