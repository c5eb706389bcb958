"""Writes docs/REPRODUCTION.md's parameter table from paper.py and the
ablation configs, between its GENERATED markers.

    python -m hvrnn_tf.experiments.paper_table [--check]

Ours: the trainable parameters of each row's model, counted by building it
(about two minutes on 2 CPU cores). --check exits 1 if the committed table
differs from the regenerated one (tests/test_paper.py runs it).
"""

import gc
import pathlib
import sys

from absl import app
from absl import flags

import gin
from hvrnn_tf.experiments import paper
from hvrnn_tf.model.config import ModelConfig
from hvrnn_tf.model.vrnn import HierarchicalVRNN
from hvrnn_tf.training import task  # noqa: F401  (registers train.*: the rows bind it)
from hvrnn_tf.utils import atomic_write
from hvrnn_tf.utils import gin_parsing

FLAGS = flags.FLAGS
ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "REPRODUCTION.md"
BEGIN = "<!-- BEGIN GENERATED: params -->"
END = "<!-- END GENERATED -->"
HEADER = (
  "| config | paper row | paper params "
  "| ours (+ unused module where the paper counts it) "
  "| paper -ELBO train / test (BAIR) |\n|---|---|---|---|---|"
)


def row_config(key: str) -> ModelConfig:
  """The ModelConfig of gin/ablations/`key`.gin."""
  gin.clear_config()
  try:
    gin_parsing.parse_gin([str(ROOT / "gin" / "ablations" / f"{key}.gin")])
    return ModelConfig()
  finally:
    gin.clear_config()


def count_parameters(config: ModelConfig) -> int:
  """Trainable parameters of the model `config` describes (built at batch 1)."""
  model = HierarchicalVRNN(config)
  model.initialize()
  count = sum(int(v.shape.num_elements()) for v in model.trainable_variables)
  del model
  gc.collect()
  return count


def _ours(key: str, count) -> str:
  """Row `key`'s count, with the unused module where the paper counts it,
  bold where it equals the paper's to the parameter."""
  config = row_config(key)
  ours = count(config)
  counted = paper.release_parameters(ours, config, key)
  if counted != ours:
    return f"{ours:,} + {counted - ours:,} = **{counted:,}**"
  quoted = paper.PARAMETERS.get(key)
  if quoted and quoted.in_paper and quoted.exact == ours:
    return f"**{ours:,}**"
  return f"{ours:,}"


def table(count=count_parameters) -> str:
  """The markdown table: the ablation rows, then the comparison pairs.

  Args:
    count: ModelConfig -> parameters (tests may pass a cached counter).
  """
  lines = [HEADER]
  for key, (train_elbo, test_elbo) in paper.NEG_ELBO.items():
    quoted = paper.PARAMETERS.get(key)
    millions = f"{quoted.millions:.2f}M" if quoted and quoted.in_paper else "–"
    lines.append(
      f"| `{key}.gin` | {paper.ROW_NAMES[key]} | {millions} "
      f"| {_ours(key, count)} | {train_elbo} / {test_elbo} |"
    )
  for dataset, name in paper.COMPARISONS.items():
    stem = f"comparison_{dataset}"
    pair = " / ".join(
      _ours(f"{stem}_{kind}", count) for kind in ("no_hierarchy", "hierarchy")
    )
    lines.append(
      f"| `{stem}_{{no_hierarchy,hierarchy}}.gin` | {name} | – | {pair} | – |"
    )
  return "\n".join(lines)


def replace_generated(text: str, generated: str) -> str:
  """`text` with the part between BEGIN and END replaced by `generated`.

  Raises:
    ValueError: the markers are missing.
  """
  head, begin, rest = text.partition(BEGIN)
  _, end, tail = rest.partition(END)
  if not (begin and end):
    raise ValueError(f"{DOC} has no {BEGIN} ... {END} markers")
  return f"{head}{BEGIN}\n{generated}\n{END}{tail}"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  committed = DOC.read_text()
  regenerated = replace_generated(committed, table())
  if FLAGS.check:
    if regenerated != committed:
      sys.exit(
        f"{DOC} is stale: run python -m hvrnn_tf.experiments.paper_table"
      )
    return
  atomic_write.write_text(str(DOC), regenerated)
  print(f"Wrote {DOC}")


if __name__ == "__main__":
  flags.DEFINE_bool("check", False, "Only check that the table is current.")
  app.run(main)
