"""Scales: loaded from gin/scales/, and how they shrink every row."""

import pytest

import gin
from hvrnn_tf.experiments import scales
from hvrnn_tf.experiments import studies
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.utils import gin_parsing


def _bindings_of(gin_file):
  """ModelConfig and train.* values of a run config."""
  gin_parsing.parse_gin([gin_file])
  config = ModelConfig()
  train = {
    k: gin.query_parameter(f"train.{k}") for k in ("batch_size", "num_steps")
  }
  gin.clear_config()
  return config, train


def test_tiny_and_small_are_their_run_configs_sizes():
  config, train = _bindings_of("tiny.gin")
  tiny = scales.load("tiny")
  assert (
    tiny.image_size,
    tiny.context_frames,
    tiny.future_frames,
    tiny.n_hid,
    tiny.batch_size,
    tiny.num_steps,
  ) == (
    config.image_size,
    config.context_frames,
    config.future_frames,
    config.n_hid,
    train["batch_size"],
    train["num_steps"],
  )
  assert tiny.lr == (7.5e-4, 4) and tiny.lr_warmup_epochs == 0
  assert tiny.seeds == (0,)
  small = scales.load("small")
  assert (
    small.image_size,
    small.future_frames,
    small.n_hid,
    small.num_steps,
    small.lr,
  ) == (64, 6, 8, 300, (1.25e-4, 1))
  assert gin.config_str() == ""  # loading leaves no bindings behind


def test_unbound_sizes_keep_the_rows_values():
  full = scales.load("full")
  assert full.n_hid is None and full.lr is None
  assert full.lr_warmup_epochs is None
  # 120 epochs of SVG's 60,000 sequences: 3750 steps each at batch 16.
  assert (full.num_steps, full.batch_size, full.epochs) == (450000, 16, 120)
  assert full.num_steps // full.epochs == 60000 // full.batch_size


def test_unknown_scale_and_missing_sizes_are_named(tmp_path, monkeypatch):
  with pytest.raises(ValueError, match="'huge'"):
    scales.load("huge")
  (tmp_path / "gin" / "scales").mkdir(parents=True)
  (tmp_path / "gin" / "scales" / "tiny.gin").write_text(
    "ablation.Scale.description = 'x'\n"
  )
  monkeypatch.setattr(scales, "REPO_ROOT", tmp_path)
  with pytest.raises(
    ValueError,
    match="model.ModelConfig.image_size",
  ):
    scales.load("tiny")


def test_overrides_replace_only_given_fields():
  tiny = scales.load("tiny")
  changed = scales.with_overrides(tiny, num_steps=3, n_hid=None)
  assert changed.num_steps == 3 and changed.n_hid == tiny.n_hid


@pytest.mark.parametrize("scale", scales.NAMES)
@pytest.mark.parametrize("study", sorted(studies.STUDIES))
def test_every_row_configures_at_every_scale(study, scale):
  scale = scales.load(scale)
  for row in studies.STUDIES[study].rows:
    paper = scales.paper_config(row)
    config = scales.configure_row(row, scale, "smmnist", seed=3)
    assert config.channels == 1 and config.reconstruction_loss == "bernoulli"
    assert (config.image_size, config.context_frames, config.future_frames) == (
      scale.image_size,
      scale.context_frames,
      scale.future_frames,
    )
    assert config.n_hid == (scale.n_hid or paper.n_hid)
    # What the row is about survives the scaling.
    assert config.latent_resolutions == paper.latent_resolutions
    assert config.dense == paper.dense
    assert config.decoder_width_multiplier == paper.decoder_width_multiplier
    # Latent widths are the encoder's there: they scale with n_hid.
    assert config.latent_channels == tuple(
      max(1, round(z * config.n_hid / paper.n_hid))
      for z in paper.latent_channels
    )
    assert gin.query_parameter("train.num_steps") == scale.num_steps
    assert gin.query_parameter("train.seed") == 3
    assert gin.query_parameter("data.make_dataset.smmnist_style") == (
      "mnist28" if scale.image_size == 32 else "svg"
    )


def test_scaling_keeps_decoder_and_warmup_differences():
  tiny = scales.load("tiny")  # 32x32: 5 decoder stages
  likelihood = studies.STUDIES["likelihood"]
  layers = [
    scales.configure_row(row, tiny, "smmnist", 0).decoder_convlstm_layers
    for row in likelihood.rows
  ]
  assert layers == [1, 3, 5, 5]
  training = studies.STUDIES["training"]
  warmup = {}
  for row in training.rows:
    scales.configure_row(row, tiny, "smmnist", 0)
    warmup[row.key] = gin.query_parameter("train.beta_warmup_epochs")
    assert gin.query_parameter("train.steps_per_epoch") == 5  # 20 steps / 4
  assert warmup == {
    "naive": 0,
    "beta_warmup": 20,
    "dense": 0,
    "beta_warmup_dense": 20,
  }


def test_tiny_frames_lack_a_rows_latent_resolution():
  row = studies.STUDIES["hierarchy"].row("levels_1_8_32")
  too_small = scales.with_overrides(scales.load("tiny"), image_size=16)
  with pytest.raises(
    ValueError,
    match=r"image_size 16 has no latent "
    r"resolutions \[32\]",
  ):
    scales.configure_row(row, too_small, "smmnist", 0)


def test_dataset_gin_keeps_the_rows_data():
  row = studies.STUDIES["hierarchy"].row("levels_1_8_32")
  config = scales.configure_row(row, scales.load("small"), "gin", 0)
  assert (
    config.image_size,
    config.channels,
    config.context_frames,
    config.reconstruction_loss,
  ) == (64, 3, 2, "l1")
  assert config.n_hid == 8 and config.latent_channels == (64, 64, 16)
  assert gin.query_parameter("data.make_dataset.source") == "tfrecord"


def test_user_bindings_win():
  row = studies.STUDIES["hierarchy"].row("levels_1")
  config = scales.configure_row(
    row,
    scales.load("small"),
    "smmnist",
    0,
    gin_params=["model.ModelConfig.n_hid = 16", "train.batch_size = 2"],
  )
  assert config.n_hid == 16
  assert gin.query_parameter("train.batch_size") == 2
