"""Every ablation config of gin/ablations/ parses, builds, and has a parameter
count in line with the paper's (same ordering within each table, same order
of magnitude). Run with -s to see the table of ours vs the paper's counts."""

import gc
import pathlib
import re

import gin
import numpy as np
import pytest

from hvrnn_tf import checkpointing
from hvrnn_tf import paths
from hvrnn_tf import train  # noqa: F401  (registers the train.* configurables)
from hvrnn_tf.config import ModelConfig
from hvrnn_tf.data import inputs  # noqa: F401  (registers data.*)
from hvrnn_tf.experiments import ablation
from hvrnn_tf.model import HierarchicalVRNN

ROOT = pathlib.Path(__file__).resolve().parents[1]
ABLATION_CONFIGS = sorted((ROOT / "gin" / "ablations").glob("*.gin"))
REFERENCE = ROOT.parent / "shared" / "reference" / "hvrnn_reference.md"
# Tables whose rows the paper gives parameter counts for, in the paper's order.
COUNTED_STUDIES = ("likelihood", "hierarchy")
COMPARISON_CONFIGS = [p for p in ABLATION_CONFIGS
                      if p.name.startswith("comparison_")]


def parse(path) -> ModelConfig:
  paths.register_gin_search_paths()
  gin.clear_config()
  checkpointing.parse_gin([str(path)])
  return ModelConfig()


_COUNTS = {}


def count_parameters(config: ModelConfig) -> int:
  """Trainable parameters of the model `config` describes, built at batch 1
  (one eager pass over 1 + context frames). Cached per config."""
  if config not in _COUNTS:
    model = HierarchicalVRNN(config)
    model.initialize()
    _COUNTS[config] = int(sum(np.prod(v.shape)
                              for v in model.trainable_variables))
    del model
    gc.collect()
  return _COUNTS[config]


def test_every_config_is_documented_and_used():
  rows = {row.gin_file for study in ablation.STUDIES.values()
          for row in study.rows}
  names = {p.relative_to(ROOT).as_posix() for p in ABLATION_CONFIGS}
  assert rows <= names, f"studies name missing configs {rows - names}"
  for path in ABLATION_CONFIGS:
    header = path.read_text().split("\n", 1)[0]
    assert re.match(r"# Paper (Table [12] \(|comparison, )", header), (
        f"{path.name} must open with a comment naming the paper table row")
    if path.relative_to(ROOT).as_posix() not in rows:
      assert path.name.startswith("comparison_"), path.name
  # Table 1: 4 rows; Table 2: 4 hierarchy + 4 training rows; 3 datasets x 2.
  assert len(rows) == 12 and len(COMPARISON_CONFIGS) == 6


@pytest.mark.parametrize("path", ABLATION_CONFIGS, ids=lambda p: p.name)
def test_config_parses_and_validates(path):
  config = parse(path)
  assert gin.query_parameter("train.num_steps") > 0
  assert len(config.latent_channels) == len(config.latent_resolutions)


def test_rows_differ_only_where_the_paper_says():
  configs = {row.key: parse(ROOT / row.gin_file)
             for study in ablation.STUDIES.values() for row in study.rows}
  assert [configs[k].decoder_convlstm_layers for k in
          ("convlstm1", "convlstm3", "convlstm6", "convlstm6_wider")] == [
              1, 3, 6, 6]
  assert configs["convlstm6_wider"].decoder_width_multiplier > 1
  for key in ("convlstm1", "convlstm3", "convlstm6", "convlstm6_wider"):
    assert configs[key].latent_resolutions == (1,)
  assert configs["levels_1"] == configs["convlstm6"]
  assert [configs[k].latent_resolutions for k in
          ("levels_1", "levels_1_8", "levels_1_8_32", "levels_1_8_16_32")] == [
              (1,), (1, 8), (1, 8, 32), (1, 8, 16, 32)]
  assert configs["levels_1_8_16_32"].latent_channels == (10, 512, 256, 128)
  # Training rows: [1, 8, 32]; dense and beta warmup switched independently.
  techniques = {}
  for key in ("naive", "beta_warmup", "dense", "beta_warmup_dense"):
    parse(ROOT / ablation.STUDIES["training"].row(key).gin_file)
    techniques[key] = (configs[key].dense,
                       gin.query_parameter("train.beta_warmup_epochs") > 0)
    assert configs[key].latent_resolutions == (1, 8, 32)
  assert techniques == {"naive": (False, False), "beta_warmup": (False, True),
                        "dense": (True, False),
                        "beta_warmup_dense": (True, True)}
  assert configs["beta_warmup_dense"] == configs["levels_1_8_32"]


@pytest.mark.skipif(not REFERENCE.exists(), reason=f"{REFERENCE} not found")
def test_paper_numbers_match_the_reference():
  text = " ".join(REFERENCE.read_text().split())
  for study in ablation.STUDIES.values():
    for row in study.rows:
      if row.paper_params_m is not None:
        assert f"{row.paper_params_m:.2f}M" in text, row
      train_elbo, test_elbo = row.paper_elbo
      assert f"{train_elbo}/{test_elbo}" in text, row


def test_parameter_counts_match_the_paper():
  lines = [f"{'table':<11}{'row':<30}{'ours (M)':>10}{'paper (M)':>11}"
           f"{'ratio':>8}"]
  for name in COUNTED_STUDIES:
    study = ablation.STUDIES[name]
    ours = [count_parameters(parse(ROOT / row.gin_file)) / 1e6
            for row in study.rows]
    paper = [row.paper_params_m for row in study.rows]
    for row, a, b in zip(study.rows, ours, paper):
      lines.append(f"{name:<11}{row.label:<30}{a:>10.2f}{b:>11.2f}"
                   f"{a / b:>8.2f}")
    # Same ordering across the table's rows as the paper.
    assert list(np.argsort(ours, kind="stable")) == list(
        np.argsort(paper, kind="stable")), (name, ours, paper)
    # Same order of magnitude: within a factor of 3 of the paper's count.
    for row, a, b in zip(study.rows, ours, paper):
      assert 1 / 3 < a / b < 3, (row.label, a, b)
  for row in ablation.STUDIES["training"].rows:
    count = count_parameters(parse(ROOT / row.gin_file)) / 1e6
    lines.append(f"{'training':<11}{row.label:<30}{count:>10.2f}"
                 f"{'–':>11}{'':>8}")
  lines.append("Note: the paper's [1] (166.55M) and 6 ConvLSTM (93.81M) rows "
               "are described alike; ours are the same model.")
  print("\n" + "\n".join(lines))


@pytest.mark.parametrize("path", COMPARISON_CONFIGS, ids=lambda p: p.name)
def test_comparison_models_build(path):
  config = parse(path)
  count = count_parameters(config)
  print(f"\n{path.name}: {count / 1e6:.2f}M parameters")
  assert 1e7 < count < 1e9
