"""Input pipeline: sequences/s read + decode + window, vs what the train step consumes.

  python -m bench.input_pipeline                   # ~3 min on 2 CPU cores
  python -m bench.input_pipeline --file_pattern='/data/bair/{split}-*' --sources=bair_tfrecord
  python -m bench.input_pipeline --sources=bair_tfrecord --consumers=bair_tfrecord=bair_h3:2

Sources (all through `hvrnn_tf.data.inputs.make_dataset(split="train")`):
  bair_tfrecord      BAIR-shaped shards (30 uniform uint8 frames of the consumer's
                     frame shape, 64x64x3 for BAIR; synthetic unless --file_pattern),
                     windows of the consumer's sequence length (12 for BAIR)
  smmnist_tfrecord   SM-MNIST written to shards by `write_smmnist_shards`, 8-frame windows
  smmnist_generated  SM-MNIST generated on the fly (tf.numpy_function), the quick config's input
Per source:
  pipeline alone   sequences/s of the iterator on its own, at the consumer's batch
                   and at --batch_size (median of --repeats runs of --batches batches)
  consumer         sequences/s of the tf.function train step on a fixed in-memory batch
  ratio            pipeline alone / consumer (> 1: the pipeline keeps up)
  fed              sequences/s of the train step fed by the pipeline (next() + step),
                   and the slowdown vs the fixed batch: what the pipeline really costs
                   when both share the machine's cores.
"""

import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

from bench import common
from hvrnn_tf.data import inputs
from hvrnn_tf.data import shard_writer
from hvrnn_tf.data import smmnist

SOURCES = ("bair_tfrecord", "smmnist_tfrecord", "smmnist_generated")
DEFAULT_CONSUMERS = (
  "bair_tfrecord=bair_h1_d1:1,smmnist_tfrecord=smmnist_quick:8,"
  "smmnist_generated=smmnist_quick:8"
)


def write_synthetic_bair(
  folder: str, num_sequences: int, config, per_shard: int = 32
) -> str:
  """BAIR-like shards: 30 uniform uint8 frames of the config's shape (64x64x3 for BAIR)."""
  shape = (30, config.image_size, config.image_size, config.channels)
  sequences = shard_writer.LazySequence(
    num_sequences,
    lambda i: {
      "frames": np.random.default_rng(i).integers(0, 256, shape, dtype=np.uint8)
    },
  )
  shard_writer.write_shards(sequences, folder, "train", per_shard)
  return os.path.join(folder, "train-*")


def dataset_for(source: str, batch: int, config, pattern: str):
  if source == "smmnist_generated":
    return inputs.dataset_for_config(config, "train", batch, source="smmnist")
  return inputs.dataset_for_config(
    config, "train", batch, source="tfrecord", file_pattern=pattern
  )


def pipeline_rate(
  dataset, batch: int, batches: int, warmup_batches: int, repeats: int
) -> dict:
  iterator = iter(dataset)
  for _ in range(warmup_batches):
    next(iterator)
  rates = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(batches):
      common.sync(next(iterator))
    rates.append(batch * batches / (time.perf_counter() - start))
  return {
    "sequences_per_s": statistics.median(rates),
    "runs": rates,
    "batches": batches,
    "warmup_batches": warmup_batches,
  }


def run(
  sources,
  consumers,
  batch_size,
  batches,
  warmup_batches,
  fed_steps,
  file_pattern,
  bair_sequences,
  smmnist_sequences,
  shard_dir,
  warmup,
  repeats,
  output,
  argv=None,
):
  record = common.start_record(
    "input_pipeline",
    argv,
    {
      "sources": sources,
      "consumers": consumers,
      "batch_size": batch_size,
      "batches": batches,
      "warmup_batches": warmup_batches,
      "fed_steps": fed_steps,
      "file_pattern": file_pattern,
      "bair_sequences": bair_sequences,
      "smmnist_sequences": smmnist_sequences,
      "warmup": warmup,
      "repeats": repeats,
    },
  )
  record["output"] = output
  folder = shard_dir or tempfile.mkdtemp(prefix="hvrnn_bench_input_")
  patterns = {}
  try:
    if "bair_tfrecord" in sources:
      if file_pattern:
        patterns["bair_tfrecord"] = file_pattern
      else:
        print(
          f"[input] writing {bair_sequences} synthetic BAIR-shaped sequences",
          flush=True,
        )
        patterns["bair_tfrecord"] = write_synthetic_bair(
          os.path.join(folder, "bair"),
          bair_sequences,
          common.model_config(consumers["bair_tfrecord"][0]),
        )
    if "smmnist_tfrecord" in sources:
      print(
        f"[input] writing {smmnist_sequences} SM-MNIST sequences", flush=True
      )
      sm_folder = os.path.join(folder, "smmnist")
      smmnist.write_smmnist_shards(
        output_dir=sm_folder,
        split="train",
        num_sequences=smmnist_sequences,
        sequence_length=20,
        sequences_per_shard=64,
      )
      patterns["smmnist_tfrecord"] = os.path.join(sm_folder, "train-*")

    trainers = {}
    for source in sources:
      consumer, consumer_batch = consumers[source]
      config = common.model_config(consumer)
      result = {
        "source": source,
        "pattern": patterns.get(source),
        "consumer": consumer,
        "consumer_batch": consumer_batch,
        "sequence_length": config.sequence_length,
        "frame_shape": [config.image_size, config.image_size, config.channels],
        "load_at_start": common.load_average(),
      }
      try:
        print(f"[input] {source}: pipeline alone", flush=True)
        alone = {}
        for batch in sorted({consumer_batch, batch_size}):
          alone[batch] = pipeline_rate(
            dataset_for(source, batch, config, patterns.get(source)),
            batch,
            batches,
            warmup_batches,
            repeats,
          )
        result["pipeline_alone"] = alone
        result["pipeline_sequences_per_s"] = alone[consumer_batch][
          "sequences_per_s"
        ]
        result["pipeline_sequences_per_s_at_batch_size"] = alone[batch_size][
          "sequences_per_s"
        ]

        key = (consumer, consumer_batch)
        if key not in trainers:
          print(
            f"[input] consumer {consumer} batch {consumer_batch}: building",
            flush=True,
          )
          trainers = {
            key: common.make_trainer(config, consumer_batch)
          }  # one at a time
        trainer = trainers[key]
        video = common.synthetic_video(config, consumer_batch)
        print(f"[input] {source}: consumer on a fixed batch", flush=True)
        fixed = common.time_calls(
          lambda trainer=trainer, video=video: trainer.train_step(video)[0][
            "loss"
          ],
          warmup=warmup,
          repeats=repeats,
        )
        result["consumer_timing"] = fixed
        result["consumer_sequences_per_s"] = consumer_batch / fixed["median_s"]
        result["ratio_pipeline_to_consumer"] = (
          result["pipeline_sequences_per_s"]
          / result["consumer_sequences_per_s"]
        )

        print(f"[input] {source}: consumer fed by the pipeline", flush=True)
        iterator = iter(
          dataset_for(source, consumer_batch, config, patterns.get(source))
        )

        def fed(trainer=trainer, iterator=iterator):
          loss = None
          for _ in range(fed_steps):
            loss = trainer.train_step(next(iterator))[0]["loss"]
          return loss

        fed_timing = common.time_calls(fed, warmup=1, repeats=repeats)
        result["fed_timing"] = fed_timing
        result["fed_sequences_per_s"] = (
          consumer_batch * fed_steps / fed_timing["median_s"]
        )
        result["fed_slowdown"] = (
          1 - result["fed_sequences_per_s"] / result["consumer_sequences_per_s"]
        )
        result["status"] = "ok"
      except Exception as e:  # pylint: disable=broad-except
        result.update(status="failed", error=common.error_text(e))
      record["results"].append(result)
      record.setdefault("configs", {})[consumer] = common.config_record(
        consumer, config
      )
    trainers.clear()
  finally:
    if not shard_dir:
      shutil.rmtree(folder, ignore_errors=True)

  rows = [
    [
      r["source"],
      r.get("pipeline_sequences_per_s"),
      f"{r['consumer']} b{r['consumer_batch']}",
      r.get("consumer_sequences_per_s"),
      r.get("ratio_pipeline_to_consumer"),
      r.get("fed_sequences_per_s"),
      r.get("fed_slowdown"),
      r.get("pipeline_sequences_per_s_at_batch_size"),
      r["status"]
      if r["status"] == "ok"
      else f"{r['status']}: {r.get('error', '')[:100]}",
    ]
    for r in record["results"]
  ]
  table = common.markdown_table(
    [
      "source",
      "pipeline seq/s (consumer batch)",
      "consumer",
      "train step seq/s (fixed batch)",
      "pipeline / consumer",
      "fed seq/s",
      "fed slowdown",
      f"pipeline seq/s (batch {batch_size})",
      "status",
    ],
    rows,
  )
  return common.finish_record(record, [table])


def main(argv=None):
  parser = common.base_parser(__doc__.split("\n")[0], "input_pipeline")
  parser.add_argument(
    "--sources", default=",".join(SOURCES), help=f"Comma list of {SOURCES}."
  )
  parser.add_argument(
    "--consumers",
    default=DEFAULT_CONSUMERS,
    help="source=config:batch,... the train step each source feeds.",
  )
  parser.add_argument(
    "--batch_size",
    type=int,
    default=16,
    help="Also measure the pipeline alone at this batch size.",
  )
  parser.add_argument(
    "--batches", type=int, default=20, help="Batches per timed pipeline run."
  )
  parser.add_argument(
    "--warmup_batches", type=int, default=5, help="Untimed batches first."
  )
  parser.add_argument(
    "--fed_steps", type=int, default=3, help="Train steps per timed fed run."
  )
  parser.add_argument(
    "--file_pattern",
    default=None,
    help="Real BAIR shards for bair_tfrecord ('{split}' -> train); default synthetic.",
  )
  parser.add_argument(
    "--bair_sequences", type=int, default=256, help="Synthetic BAIR sequences."
  )
  parser.add_argument(
    "--smmnist_sequences",
    type=int,
    default=256,
    help="SM-MNIST sequences to write.",
  )
  parser.add_argument(
    "--shard_dir",
    default=None,
    help="Keep written shards here (default: a temporary folder, deleted).",
  )
  args = parser.parse_args(argv)
  sources = common.csv_list(args.sources)
  for source in sources:
    if source not in SOURCES:
      raise ValueError(f"Unknown source {source!r}; known: {SOURCES}")
  consumers = {}
  for item in common.csv_list(args.consumers):
    source, equals, case = item.partition("=")
    if not equals:
      raise ValueError(f"Consumer {item!r} is not source=config:batch")
    consumers[source] = common.config_case(case)
  missing = [s for s in sources if s not in consumers]
  if missing:
    raise ValueError(
      f"No consumer for {missing}; pass --consumers=source=config:batch,..."
    )
  return run(
    sources,
    consumers,
    args.batch_size,
    args.batches,
    args.warmup_batches,
    args.fed_steps,
    args.file_pattern,
    args.bair_sequences,
    args.smmnist_sequences,
    args.shard_dir,
    args.warmup,
    args.repeats,
    args.output,
    argv if argv is not None else sys.argv[1:],
  )


if __name__ == "__main__":
  main()
