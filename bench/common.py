"""Shared pieces of the benchmarks: configurations, hardware record, timing, output.

Every bench writes one JSON file holding
  {"bench", "command", "date_utc", "hardware", "load_before", "load_after",
   "settings", "results": [...]}
and prints the same results as a Markdown table.
"""

import dataclasses
import datetime
import gc
import json
import os
import platform
import shlex
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from bench import cli  # pylint: disable=g-import-not-at-top
from hvrnn_tf.model.config import ModelConfig  # pylint: disable=g-import-not-at-top
from hvrnn_tf.testing import configs  # pylint: disable=g-import-not-at-top
from hvrnn_tf.utils import atomic_write  # pylint: disable=g-import-not-at-top

# The named model configurations (hvrnn_tf/testing/configs.py) under the
# names the benches use.
CONFIGS = configs.CONFIGS
model_config = configs.model_config


def default_batch_size(name: str) -> int:
  """Small batches for the big models on CPU; the quick config's training batch."""
  return {"tiny": 2, "micro": 2, "smmnist_quick": 8}.get(name, 1)


def config_record(name: str, config: ModelConfig) -> dict:
  return {
    "name": name,
    "description": configs.DESCRIPTIONS.get(name, ""),
    **dataclasses.asdict(config),
  }


def make_trainer(
  config: ModelConfig,
  batch_size: int,
  seed: int = 0,
  precision: str = "float32",
  jit_compile: bool = False,
):
  """A Trainer with the paper's optimiser settings (schedules don't affect speed).

  precision / jit_compile go to the Trainer; the model's sampler is then
  XLA-compiled too.
  """
  from hvrnn_tf.training.config import TrainConfig  # pylint: disable=g-import-not-at-top
  from hvrnn_tf.training.trainer import Trainer  # pylint: disable=g-import-not-at-top

  return Trainer(
    config,
    TrainConfig(
      num_steps=1,
      batch_size=batch_size,
      seed=seed,
      precision=precision,
      jit_compile=jit_compile,
    ),
  )


def num_parameters(variables) -> int:
  return int(sum(np.prod(v.shape) for v in variables))


def synthetic_video(
  config: ModelConfig, batch_size: int, num_frames=None, seed: int = 0
) -> tf.Tensor:
  """Uniform [0, 1) frames [B, T, S, S, C] (speed does not depend on content)."""
  t = config.sequence_length if num_frames is None else num_frames
  return tf.random.stateless_uniform(
    [batch_size, t, config.image_size, config.image_size, config.channels],
    seed=[seed, 17],
  )


def release_memory():
  """Drops Keras/TF global state between cases run in one process."""
  import keras  # pylint: disable=g-import-not-at-top

  keras.backend.clear_session()
  gc.collect()


# --------------------------------------------------------------------------
# Hardware record.


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _cpu_flags() -> list:
  wanted = (
    "avx2",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "amx_bf16",
    "amx_tile",
    "avx_vnni",
    "fma",
  )
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("flags"):
          flags = set(line.split(":", 1)[1].split())
          return [w for w in wanted if w in flags]
  except OSError:
    pass
  return []


def _memory_total_bytes():
  try:
    import psutil  # pylint: disable=g-import-not-at-top

    return int(psutil.virtual_memory().total)
  except ImportError:
    try:
      return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
      return None


def gpu_devices() -> list:
  return tf.config.list_physical_devices("GPU")


def hardware_info() -> dict:
  """CPU model, cores, memory, accelerators and library versions."""
  import keras  # pylint: disable=g-import-not-at-top

  gpus = []
  for device in gpu_devices():
    try:
      details = tf.config.experimental.get_device_details(device)
    except (ValueError, RuntimeError):
      details = {}
    gpus.append(
      {
        "name": device.name,
        **{
          k: (list(v) if isinstance(v, tuple) else v)
          for k, v in details.items()
        },
      }
    )
  try:
    affinity = len(os.sched_getaffinity(0))
  except AttributeError:
    affinity = None
  return {
    "cpu_model": _cpu_model(),
    "cpu_flags": _cpu_flags(),
    "logical_cores": os.cpu_count(),
    "cores_available": affinity,
    "memory_total_bytes": _memory_total_bytes(),
    "physical_devices": [d.name for d in tf.config.list_physical_devices()],
    "gpus": gpus,
    "tensorflow": tf.__version__,
    "keras": keras.__version__,
    "numpy": np.__version__,
    "python": platform.python_version(),
    "platform": platform.platform(),
    "hostname": platform.node(),
    "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
    "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
  }


def describe_hardware(info: dict) -> str:
  gpu = (
    ", ".join(g.get("device_name", g["name"]) for g in info["gpus"]) or "none"
  )
  mem = info["memory_total_bytes"]
  mem = f"{mem / 2**30:.0f} GiB RAM" if mem else "RAM unknown"
  return (
    f"{info['cpu_model']}, {info['cores_available']} cores available "
    f"({info['logical_cores']} logical), {mem}, GPU: {gpu}; "
    f"TF {info['tensorflow']}, Keras {info['keras']}"
  )


def load_average() -> list:
  try:
    return [round(x, 2) for x in os.getloadavg()]
  except OSError:
    return []


# --------------------------------------------------------------------------
# Timing.


def sync(outputs):
  """Waits for `outputs` (any nest of tensors) by fetching one element of each."""
  for t in tf.nest.flatten(outputs):
    if isinstance(t, (tf.Tensor, tf.Variable)) and t.shape.num_elements():
      _ = t[(0,) * t.shape.rank].numpy() if t.shape.rank else t.numpy()


def time_calls(fn, warmup: int = 1, repeats: int = 3) -> dict:
  """Times `fn()` `repeats` times after `warmup` calls; seconds per call.

  The first warm-up call is timed separately ("first_s": tracing, compiling
  and running). Returns median, min, max and every run.
  """
  first = None
  for i in range(warmup):
    start = time.perf_counter()
    sync(fn())
    if i == 0:
      first = time.perf_counter() - start
  runs = []
  for _ in range(repeats):
    start = time.perf_counter()
    sync(fn())
    runs.append(time.perf_counter() - start)
  return {
    "median_s": statistics.median(runs),
    "min_s": min(runs),
    "max_s": max(runs),
    "runs_s": runs,
    "first_s": first,
    "warmup": warmup,
    "repeats": repeats,
  }


# --------------------------------------------------------------------------
# Output.


def config_case(
  item: str, third: str | None = None, optional: bool = False
) -> tuple:
  """ "config:N" -> (config, N), N >= 1; unknown configs raise (model_config).

  With `third` (the name of a third field, e.g. "mode"), "config:N:value" ->
  (config, N, value); where `optional`, "config:N" -> (config, N, None).
  """
  fields = item.split(":")
  counts = (2,) if third is None else (2, 3) if optional else (3,)
  if len(fields) not in counts or not fields[1].isdigit() or int(fields[1]) < 1:
    form = "config:N" + (
      "" if third is None else f"[:{third}]" if optional else f":{third}"
    )
    raise ValueError(f"Case {item!r} is not {form} (N a positive integer)")
  model_config(fields[0])
  if third is None:
    return fields[0], int(fields[1])
  return fields[0], int(fields[1]), (fields[2] if len(fields) == 3 else None)


def config_cases(
  text: str, third: str | None = None, optional: bool = False
) -> list[tuple]:
  """Comma list of `config_case` items -> [(config, N[, value]), ...]."""
  return [config_case(item, third, optional) for item in cli.csv_list(text)]


def start_record(name: str, argv, settings: dict) -> dict:
  argv = sys.argv[1:] if argv is None else list(argv)
  return {
    "bench": name,
    "command": " ".join(
      ["python -m", f"bench.{name}"] + [shlex.quote(a) for a in argv]
    ),
    "date_utc": datetime.datetime.now(datetime.UTC).isoformat(
      timespec="seconds"
    ),
    "hardware": hardware_info(),
    "load_before": load_average(),
    "settings": settings,
    "results": [],
  }


def _jsonable(x):
  if isinstance(x, dict):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, (np.integer,)):
    return int(x)
  if isinstance(x, (np.floating,)):
    return float(x)
  if isinstance(x, np.ndarray):
    return x.tolist()
  return x


def write_record(record: dict) -> None:
  """Writes the record to record["output"] (atomically); benches call it after
  every case too, so that a run killed midway (e.g. out of memory) keeps the
  cases it finished (marked "partial": true)."""
  path = record.get("output")
  if path:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write.write_text(path, json.dumps(_jsonable(record), indent=1))


def write_partial(record: dict) -> None:
  write_record({**record, "partial": True})


def finish_record(record: dict, tables: list) -> dict:
  """Adds the closing load average, writes the JSON, prints the tables."""
  record["load_after"] = load_average()
  record["tables_markdown"] = tables
  path = record.get("output")
  write_record(record)
  print(f"\n{record['bench']}  {record['date_utc']}")
  print(f"hardware: {describe_hardware(record['hardware'])}")
  print(
    f"load average (1/5/15 min) before: {record['load_before']}  "
    f"after: {record['load_after']}"
  )
  for table in tables:
    print()
    print(table)
  if path:
    print(f"\nwrote {path}")
  return record


def fmt(x, digits: int = 3) -> str:
  """Compact number formatting for tables."""
  if x is None:
    return "-"
  if isinstance(x, str):
    return x
  if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
    return str(x)
  x = float(x)
  if x != x:  # NaN
    return "nan"
  if x == 0:
    return "0"
  magnitude = abs(x)
  if magnitude >= 10**digits:
    return f"{x:,.0f}"
  if magnitude >= 1:
    return f"{x:.{max(digits - len(str(int(magnitude))), 0)}f}"
  return f"{x:.{digits}g}"


def markdown_table(headers: list, rows: list) -> str:
  cells = [[fmt(c) for c in row] for row in rows]
  widths = [
    max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)
  ]
  line = lambda values: (
    "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"
  )
  out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
  out += [line(r) for r in cells]
  return "\n".join(out)


def error_text(e: BaseException, limit: int = 400) -> str:
  text = f"{type(e).__name__}: {e}".replace("\n", " ")
  return text if len(text) <= limit else text[:limit] + "..."
