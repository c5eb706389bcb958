"""Every shipped gin config parses and gives a valid model configuration."""

import pathlib

import pytest

import gin
from hvrnn_tf import checkpointing
from hvrnn_tf import train  # noqa: F401  (registers the train.* configurables)
from hvrnn_tf.config import ModelConfig
from hvrnn_tf.data import inputs  # noqa: F401  (registers data.*)

GIN_DIR = pathlib.Path(__file__).resolve().parents[1] / "gin"
CONFIGS = sorted(GIN_DIR.glob("*.gin"))


def test_there_are_configs():
  assert {"smmnist_quick.gin", "smmnist.gin", "bair.gin", "cityscapes.gin"} <= {
    p.name for p in CONFIGS
  }


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses_and_validates(path):
  checkpointing.parse_gin([str(path)])
  config = ModelConfig()
  assert gin.query_parameter("train.num_steps") > 0
  assert config.sequence_length == (
    config.context_frames + config.future_frames
  )


@pytest.mark.parametrize(
  "name, parameters",
  [("smmnist_cpu.gin", 5_045_409), ("smmnist_cpu_single.gin", 3_897_761)],
)
def test_results_study_configs_build_the_documented_models(name, parameters):
  """docs/RESULTS.md's two models, as counted from their trained runs."""
  from hvrnn_tf.model import HierarchicalVRNN  # pylint: disable=g-import-not-at-top

  gin.clear_config()
  checkpointing.parse_gin([str(GIN_DIR / name)])
  model = HierarchicalVRNN(ModelConfig())
  model.initialize()
  assert model.count_params() == parameters
  gin.clear_config()
