"""hvrnn_tf.experiments.paper: the paper's numbers, as the reference gives
them; docs/REPRODUCTION.md's table is generated from them (paper_table) and
the gin headers quote them."""

import pathlib
import re

import pytest

from hvrnn_tf.experiments import paper
from hvrnn_tf.experiments import paper_table
from hvrnn_tf.model.config import ModelConfig

ROOT = pathlib.Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "hvrnn_reference.md"


@pytest.mark.skipif(not REFERENCE.exists(), reason=f"{REFERENCE} not found")
def test_paper_numbers_match_the_reference():
  text = " ".join(REFERENCE.read_text().split())
  for key, (train_elbo, test_elbo) in paper.NEG_ELBO.items():
    assert f"{train_elbo}/{test_elbo}" in text, key
  for key, count in paper.PARAMETERS.items():
    assert (f"{count.millions:.2f}M" in text) == count.in_paper, key


def test_every_row_with_a_count_has_an_elbo():
  assert set(paper.PARAMETERS) <= set(paper.NEG_ELBO)


@pytest.mark.slow  # builds the 18 rows' models at the paper's size (~2 min)
def test_reproduction_table_is_regenerated():
  """docs/REPRODUCTION.md's table is paper_table's output, as committed."""
  text = paper_table.DOC.read_text()
  assert paper_table.replace_generated(text, paper_table.table()) == text


def test_generated_table_covers_every_row():
  lines = paper_table.table(count=lambda config: 0).splitlines()
  assert len(lines) == 2 + len(paper.NEG_ELBO) + len(paper.COMPARISONS)
  assert set(paper.ROW_NAMES) == set(paper.NEG_ELBO)


def test_replace_generated_needs_the_markers():
  with pytest.raises(ValueError, match="BEGIN GENERATED"):
    paper_table.replace_generated("no markers", "table")


def test_ablation_config_headers_quote_the_paper():
  pattern = re.compile(
    r"# Paper: (?:([\d.]+)M parameters, )?ELBO (\d+) "
    r"\(train\) / (\d+) \(test\)"
  )
  for key, elbo in paper.NEG_ELBO.items():
    header = (ROOT / "gin" / "ablations" / f"{key}.gin").read_text()
    millions, *quoted = pattern.search(header).groups()
    assert tuple(int(x) for x in quoted) == elbo, key
    count = paper.PARAMETERS.get(key)
    assert millions == (
      f"{count.millions:.2f}" if count and count.in_paper else None
    ), key


def test_unused_module_is_the_releases_6300672():
  assert paper.unused_module_parameters(ModelConfig()) == 6_300_672
