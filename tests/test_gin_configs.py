"""Every shipped gin config parses and gives a valid model configuration."""

import math
import pathlib

import pytest

import gin
from hvrnn_tf.data import inputs  # noqa: F401  (registers data.*)
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.training import task  # noqa: F401  (registers the train.* configurables)
from hvrnn_tf.utils import gin_parsing

GIN_DIR = pathlib.Path(__file__).resolve().parents[1] / "gin"
CONFIGS = sorted(GIN_DIR.glob("*.gin"))


def test_includes_resolve_from_any_directory(tmp_path, monkeypatch):
  """`include 'gin/base/...'` lines are found via gin's search path."""
  monkeypatch.chdir(tmp_path)
  gin.clear_config()
  gin_parsing.parse_gin(["gin/ablations/table2_training_naive.gin"])
  assert ModelConfig().latent_resolutions == (1, 8, 32)
  assert not ModelConfig().dense
  gin.clear_config()


def test_every_base_file_is_included():
  texts = "".join(p.read_text() for p in GIN_DIR.rglob("*.gin"))
  for base in (GIN_DIR / "base").glob("*.gin"):
    assert f"include 'gin/base/{base.name}'" in texts, base.name


def test_there_are_configs():
  assert {"smmnist_quick.gin", "smmnist.gin", "bair.gin", "cityscapes.gin"} <= {
    p.name for p in CONFIGS
  }


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses_and_validates(path):
  gin_parsing.parse_gin([str(path)])
  config = ModelConfig()
  assert gin.query_parameter("train.num_steps") > 0
  assert config.sequence_length == (
    config.context_frames + config.future_frames
  )


@pytest.mark.parametrize(
  "name, epoch, epochs",
  [
    # The release's train/ folder: 43,264 sequences.
    ("bair.gin", 43_264, 185),
    # SVG's MovingMNIST loader (the release points to it): 60,000.
    ("smmnist.gin", 60_000, 120),
    # The release's cityscapes_loader: __len__ 45,000 for train.
    ("cityscapes.gin", 45_000, 100),
  ],
)
def test_paper_configs_count_the_releases_epochs(name, epoch, epochs):
  """Steps per epoch from the release's epoch at the global batch of 128;
  num_steps a whole number of them; warmups of 5 (lr) and 20 (beta) epochs."""
  gin_parsing.parse_gin([str(GIN_DIR / name)])
  batch = gin.query_parameter("train.batch_size")
  steps_per_epoch = gin.query_parameter("train.steps_per_epoch")
  assert (batch, steps_per_epoch) == (128, math.ceil(epoch / 128))
  assert gin.query_parameter("train.num_steps") == epochs * steps_per_epoch
  assert gin.query_parameter("train.lr_warmup_epochs") == 5
  assert gin.query_parameter("train.beta_warmup_epochs") == 20


@pytest.mark.parametrize(
  "name, parameters",
  [("smmnist_cpu.gin", 5_045_409), ("smmnist_cpu_single.gin", 3_897_761)],
)
def test_results_study_configs_build_the_documented_models(name, parameters):
  """docs/RESULTS.md's two models, as counted from their trained runs."""
  from hvrnn_tf.model.vrnn import HierarchicalVRNN  # pylint: disable=g-import-not-at-top

  gin.clear_config()
  gin_parsing.parse_gin([str(GIN_DIR / name)])
  model = HierarchicalVRNN(ModelConfig())
  model.initialize()
  assert model.count_params() == parameters
  gin.clear_config()
