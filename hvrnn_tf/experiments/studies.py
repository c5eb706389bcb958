"""The paper's ablation tables as studies: rows, their configs and numbers.

Each row is one gin file of gin/ablations/ (the paper-size model); its paper
numbers (parameters, -ELBO) are read from hvrnn_tf.experiments.paper.
"""

import dataclasses

from hvrnn_tf.experiments import paper

ABLATION_DIR = "gin/ablations"


@dataclasses.dataclass(frozen=True)
class Row:
  """One row of a paper table.

  key: short identifier (directory name, --rows).
  label: as in the paper.
  config: the row's gin file name in gin/ablations/ (without .gin), which
    also keys its numbers in hvrnn_tf.experiments.paper.
  """

  key: str
  label: str
  config: str

  @property
  def gin_file(self) -> str:
    """The row's config, relative to the repository root."""
    return f"{ABLATION_DIR}/{self.config}.gin"

  @property
  def paper_params_m(self) -> float | None:
    """The paper's parameter count (millions), None where it gives none."""
    count = paper.PARAMETERS.get(self.config)
    return count.millions if count and count.in_paper else None

  @property
  def paper_elbo(self) -> tuple[int, int]:
    """The paper's (train, test) negative ELBO on BAIR."""
    return paper.NEG_ELBO[self.config]


@dataclasses.dataclass(frozen=True)
class Study:
  name: str
  title: str
  rows: tuple[Row, ...]

  def row(self, key: str) -> Row:
    for row in self.rows:
      if row.key == key:
        return row
    raise KeyError(
      f"study {self.name!r} has no row {key!r}; rows: "
      f"{[r.key for r in self.rows]}"
    )


STUDIES = {
  "likelihood": Study(
    "likelihood",
    "Table 1: likelihood (decoder) capacity, one latent level at 1x1",
    (
      Row("convlstm1", "1 ConvLSTM", "table1_decoder_1convlstm"),
      Row("convlstm3", "3 ConvLSTM", "table1_decoder_3convlstm"),
      Row("convlstm6", "6 ConvLSTM", "table1_decoder_6convlstm"),
      Row(
        "convlstm6_wider",
        "6 ConvLSTM, higher capacity",
        "table1_decoder_6convlstm_wider",
      ),
    ),
  ),
  "hierarchy": Study(
    "hierarchy",
    "Table 2: number of latent levels",
    (
      Row("levels_1", "[1]", "table2_hierarchy_1"),
      Row("levels_1_8", "[1, 8]", "table2_hierarchy_1_8"),
      Row("levels_1_8_32", "[1, 8, 32]", "table2_hierarchy_1_8_32"),
      Row("levels_1_8_16_32", "[1, 8, 16, 32]", "table2_hierarchy_1_8_16_32"),
    ),
  ),
  "training": Study(
    "training",
    "Table 2: training techniques for [1, 8, 32]",
    (
      Row("naive", "naive", "table2_training_naive"),
      Row("beta_warmup", "beta warmup", "table2_training_beta_warmup"),
      Row("dense", "dense connectivity", "table2_training_dense"),
      Row(
        "beta_warmup_dense",
        "beta warmup + dense",
        "table2_training_beta_warmup_dense",
      ),
    ),
  ),
}
