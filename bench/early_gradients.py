"""Early gradients: backward ops that need no output gradient, per config.

  python -m bench.early_gradients --cases=bair_h3:2

Backward ops that read forward values only run when the forward pass ends
and hold their outputs until the backward pass reaches them
(hvrnn_tf/testing/graphs.py, early_backward_ops); this bench lists those
of a model's ELBO (docs/design/early-gradients.md). Those of the loss's own
terms are harmless: the backward pass starts there.
"""

import collections

from absl import flags
import tensorflow as tf

from bench import cli
from bench import common
from hvrnn_tf.testing import graphs

MIB = 2**20
# A model case lists ops of this many output bytes and more.
MODEL_MIN_BYTES = MIB

FLAGS = cli.define_flags("early_gradients")
flags.DEFINE_string("cases", "bair_h3:2", "config:batch,...", flag_values=FLAGS)
flags.DEFINE_integer("top", 12, "Rows per table.", flag_values=FLAGS)


def _model_case(name: str, batch: int) -> list:
  """early_backward_ops of the named config's ELBO at `batch`."""
  config = common.model_config(name)
  model = common.make_trainer(config, batch).model
  noise = model.noise(tf.constant([0, 1]), batch, config.future_frames)
  return graphs.early_backward_ops(
    lambda video: tf.reduce_sum(
      model.elbo(video, beta=1.0, noise=noise).neg_elbo
    ),
    [common.synthetic_video(config, batch)],
    model.trainable_variables,
    min_bytes=MODEL_MIN_BYTES,
  )


def _scope(op) -> str:
  """The outermost name scope of op's forward counterpart, or "(top)"."""
  parts = op.name.split("/")
  parts = parts[1:] if parts[0] == "gradient_tape" else parts
  return parts[0] if len(parts) > 1 else "(top)"


def _table(early: list, top: int) -> tuple[str, list]:
  groups = collections.defaultdict(lambda: [0, 0])
  for op, n in early:
    group = groups[(op.type, _scope(op))]
    group[0] += 1
    group[1] += n
  rows = sorted(groups.items(), key=lambda g: -g[1][1])
  records = [
    {"op": k[0], "scope": k[1], "count": c, "mib": n / MIB}
    for k, (c, n) in rows
  ]
  table = common.markdown_table(
    ["op", "outermost scope", "ops", "MiB"],
    [[r["op"], r["scope"], r["count"], r["mib"]] for r in records[:top]],
  )
  return table, records


def main(argv=None):
  args = cli.parse_flags(FLAGS, argv, __doc__)
  cases = common.config_cases(args.cases)
  record = common.start_record(
    "early_gradients", argv, {"cases": args.cases, "min_bytes": MODEL_MIN_BYTES}
  )
  record["output"] = args.output
  tables = []
  for name, batch in cases:
    table, groups = _table(_model_case(name, batch), args.top)
    total = sum(g["mib"] for g in groups)
    record["results"].append(
      {"config": name, "batch": batch, "total_mib": total, "groups": groups}
    )
    tables.append(f"{name} batch {batch}: {total:.1f} MiB early\n\n{table}")
    common.release_memory()
  return common.finish_record(record, tables)


if __name__ == "__main__":
  main()
