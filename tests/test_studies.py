"""The studies: every row names an existing gin file and reads its paper
numbers from hvrnn_tf.experiments.paper."""

import pathlib

import pytest

from hvrnn_tf.experiments import paper
from hvrnn_tf.experiments import studies

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_rows_name_existing_configs_and_the_papers_numbers():
  rows = [row for study in studies.STUDIES.values() for row in study.rows]
  assert len(rows) == len({row.key for row in rows}) == 12
  for row in rows:
    assert (ROOT / row.gin_file).is_file(), row.gin_file
    assert row.paper_elbo == paper.NEG_ELBO[row.config]
  hierarchy = studies.STUDIES["hierarchy"]
  assert hierarchy.row("levels_1_8_32").paper_params_m == 230.74
  assert hierarchy.row("levels_1_8_32").paper_elbo == (883, 1162)
  training = studies.STUDIES["training"]
  # The release's count of the naive row is not one the paper printed.
  assert "table2_training_naive" in paper.PARAMETERS
  assert training.row("naive").paper_params_m is None
  assert training.row("dense").paper_params_m is None  # no count at all
  assert (
    training.row("beta_warmup_dense").paper_elbo
    == hierarchy.row("levels_1_8_32").paper_elbo
  )


def test_unknown_row_names_the_rows():
  with pytest.raises(KeyError, match="levels_2"):
    studies.STUDIES["hierarchy"].row("levels_2")
