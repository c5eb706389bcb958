"""hvrnn_tf.experiments.paper: the paper's numbers, as the reference gives them, and
every place that quotes them (docs, gin headers) agrees with it."""

import pathlib
import re

import pytest

from hvrnn_tf.experiments import paper
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


def test_reproduction_table_quotes_the_paper():
  rows = {}
  for line in (ROOT / "docs" / "REPRODUCTION.md").read_text().splitlines():
    match = re.match(r"\| `(table\w+)\.gin` \|", line)
    if match:
      cells = [c.strip() for c in line.strip("|").split("|")]
      rows[match.group(1)] = (cells[2], cells[-1])
  assert set(rows) == set(paper.NEG_ELBO)
  for key, (params, elbo) in rows.items():
    count = paper.PARAMETERS.get(key)
    assert params == (
      f"{count.millions:.2f}M" if count and count.in_paper else "–"
    ), key
    assert elbo == "{} / {}".format(*paper.NEG_ELBO[key]), key


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
