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
import tempfile
import time

from absl import flags
import numpy as np

from bench import cli
from bench import common
from hvrnn_tf.data import inputs
from hvrnn_tf.data import shard_writer
from hvrnn_tf.data import smmnist

SOURCES = ("bair_tfrecord", "smmnist_tfrecord", "smmnist_generated")
DEFAULT_CONSUMERS = (
  "bair_tfrecord=bair_h1_d1:1,smmnist_tfrecord=smmnist_quick:8,"
  "smmnist_generated=smmnist_quick:8"
)

FLAGS = cli.define_flags("input_pipeline")
flags.DEFINE_string(
  "sources", ",".join(SOURCES), f"Comma list of {SOURCES}.", flag_values=FLAGS
)
flags.DEFINE_string(
  "consumers",
  DEFAULT_CONSUMERS,
  "source=config:batch,... the train step each source feeds.",
  flag_values=FLAGS,
)
flags.DEFINE_integer(
  "batch_size",
  16,
  "Also measure the pipeline alone at this batch size.",
  flag_values=FLAGS,
)
flags.DEFINE_integer(
  "batches", 20, "Batches per timed pipeline run.", flag_values=FLAGS
)
flags.DEFINE_integer(
  "warmup_batches", 5, "Untimed batches first.", flag_values=FLAGS
)
flags.DEFINE_integer(
  "fed_steps", 3, "Train steps per timed fed run.", flag_values=FLAGS
)
flags.DEFINE_string(
  "file_pattern",
  None,
  "Real BAIR shards for bair_tfrecord ('{split}' -> train); default synthetic.",
  flag_values=FLAGS,
)
flags.DEFINE_integer(
  "bair_sequences", 256, "Synthetic BAIR sequences.", flag_values=FLAGS
)
flags.DEFINE_integer(
  "smmnist_sequences", 256, "SM-MNIST sequences to write.", flag_values=FLAGS
)
flags.DEFINE_string(
  "shard_dir",
  None,
  "Keep written shards here (default: a temporary folder, deleted).",
  flag_values=FLAGS,
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


def write_sources(sources, consumers, folder, settings) -> dict:
  """{source: file pattern} of the TFRecord sources, writing shards if needed."""
  patterns = {}
  if "bair_tfrecord" in sources:
    if settings["file_pattern"]:
      patterns["bair_tfrecord"] = settings["file_pattern"]
    else:
      count = settings["bair_sequences"]
      print(
        f"[input] writing {count} synthetic BAIR-shaped sequences",
        flush=True,
      )
      patterns["bair_tfrecord"] = write_synthetic_bair(
        os.path.join(folder, "bair"),
        count,
        common.model_config(consumers["bair_tfrecord"][0]),
      )
  if "smmnist_tfrecord" in sources:
    count = settings["smmnist_sequences"]
    print(f"[input] writing {count} SM-MNIST sequences", flush=True)
    sm_folder = os.path.join(folder, "smmnist")
    smmnist.write_smmnist_shards(
      output_dir=sm_folder,
      split="train",
      num_sequences=count,
      sequence_length=20,
      sequences_per_shard=64,
    )
    patterns["smmnist_tfrecord"] = os.path.join(sm_folder, "train-*")
  return patterns


def pipeline_alone(result, make_dataset, consumer_batch, settings) -> None:
  """The pipeline's sequences/s at the consumer's batch and --batch_size."""
  print(f"[input] {result['source']}: pipeline alone", flush=True)
  batch_size = settings["batch_size"]
  alone = {
    batch: pipeline_rate(
      make_dataset(batch),
      batch,
      settings["batches"],
      settings["warmup_batches"],
      settings["repeats"],
    )
    for batch in sorted({consumer_batch, batch_size})
  }
  result["pipeline_alone"] = alone
  result["pipeline_sequences_per_s"] = alone[consumer_batch]["sequences_per_s"]
  result["pipeline_sequences_per_s_at_batch_size"] = alone[batch_size][
    "sequences_per_s"
  ]


def consumer_rates(result, trainer, make_dataset, config, settings) -> None:
  """The train step's sequences/s on a fixed batch and fed by the pipeline."""
  source, batch = result["source"], result["consumer_batch"]
  video = common.synthetic_video(config, batch)
  print(f"[input] {source}: consumer on a fixed batch", flush=True)
  fixed = common.time_calls(
    lambda: trainer.train_step(video)[0]["loss"],
    warmup=settings["warmup"],
    repeats=settings["repeats"],
  )
  result["consumer_timing"] = fixed
  result["consumer_sequences_per_s"] = batch / fixed["median_s"]
  result["ratio_pipeline_to_consumer"] = (
    result["pipeline_sequences_per_s"] / result["consumer_sequences_per_s"]
  )
  print(f"[input] {source}: consumer fed by the pipeline", flush=True)
  iterator = iter(make_dataset(batch))
  steps = settings["fed_steps"]

  def fed():
    loss = None
    for _ in range(steps):
      loss = trainer.train_step(next(iterator))[0]["loss"]
    return loss

  fed_timing = common.time_calls(fed, warmup=1, repeats=settings["repeats"])
  result["fed_timing"] = fed_timing
  result["fed_sequences_per_s"] = batch * steps / fed_timing["median_s"]
  result["fed_slowdown"] = (
    1 - result["fed_sequences_per_s"] / result["consumer_sequences_per_s"]
  )


def measure_source(source, consumers, patterns, trainers, settings) -> dict:
  """One source: the pipeline alone, then its consumer fixed and fed."""
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

  def make_dataset(batch):
    return dataset_for(source, batch, config, patterns.get(source))

  try:
    pipeline_alone(result, make_dataset, consumer_batch, settings)
    key = (consumer, consumer_batch)
    if key not in trainers:
      print(
        f"[input] consumer {consumer} b{consumer_batch}: building",
        flush=True,
      )
      trainers.clear()  # one at a time
      trainers[key] = common.make_trainer(config, consumer_batch)
    consumer_rates(result, trainers[key], make_dataset, config, settings)
    result["status"] = "ok"
  except Exception as e:  # pylint: disable=broad-except
    result.update(status="failed", error=common.error_text(e))
  return result


def table(results, batch_size) -> str:
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
    for r in results
  ]
  return common.markdown_table(
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


def run(sources, consumers, shard_dir, output, argv=None, **settings):
  """Measures each source; `settings` are main's numeric flags and
  --file_pattern (batch_size, batches, warmup_batches, fed_steps,
  file_pattern, bair_sequences, smmnist_sequences, warmup, repeats)."""
  record = common.start_record(
    "input_pipeline",
    argv,
    {"sources": sources, "consumers": consumers, **settings},
  )
  record["output"] = output
  folder = shard_dir or tempfile.mkdtemp(prefix="hvrnn_bench_input_")
  try:
    patterns = write_sources(sources, consumers, folder, settings)
    trainers = {}
    for source in sources:
      result = measure_source(source, consumers, patterns, trainers, settings)
      record["results"].append(result)
      consumer = result["consumer"]
      record.setdefault("configs", {})[consumer] = common.config_record(
        consumer, common.model_config(consumer)
      )
    trainers.clear()
  finally:
    if not shard_dir:
      shutil.rmtree(folder, ignore_errors=True)
  return common.finish_record(
    record, [table(record["results"], settings["batch_size"])]
  )


def parse_consumers(sources, text) -> dict:
  """ "source=config:batch,..." -> {source: (config, batch)}, one per source."""
  for source in sources:
    if source not in SOURCES:
      raise ValueError(f"Unknown source {source!r}; known: {SOURCES}")
  consumers = {}
  for item in cli.csv_list(text):
    source, equals, case = item.partition("=")
    if not equals:
      raise ValueError(f"Consumer {item!r} is not source=config:batch")
    consumers[source] = common.config_case(case)
  missing = [s for s in sources if s not in consumers]
  if missing:
    raise ValueError(
      f"No consumer for {missing}; pass --consumers=source=config:batch,..."
    )
  return consumers


def main(argv=None):
  args = cli.parse_flags(FLAGS, argv, __doc__)
  sources = cli.csv_list(args.sources)
  settings = args.flag_values_dict()
  for name in ("sources", "consumers", "shard_dir", "output"):
    settings.pop(name)
  return run(
    sources,
    parse_consumers(sources, args.consumers),
    args.shard_dir,
    args.output,
    argv,
    **settings,
  )


if __name__ == "__main__":
  main()
