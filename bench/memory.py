"""Memory: peak resident memory per config and batch size; the largest batch in a budget.

  python -m bench.memory                           # ~5 min on 2 busy CPU cores
  python -m bench.memory --cases=bair_h3:1,bair_h3:2 --search= --budget_gib=16
  python -m bench.memory --search=bair_h1_d1 --budget_gib=8 --max_batch=16

Each (config, batch) runs in its own Python process (so the figure is that
case's alone): build the Trainer, run --steps tf.function train steps on a
synthetic batch, report the process's peak resident set size (getrusage
ru_maxrss; on a GPU also TensorFlow's peak device memory), the RSS after
importing TensorFlow, after building model + optimizer and after tracing the
step, and TensorFlow's own count of the tensor bytes in use on the CPU (after
the build, and the peak over the steps; kept by oneDNN's allocator for its
pool of allocations of 256 KiB and more, so smaller tensors are not in it,
and absent with TF_ENABLE_ONEDNN_OPTS=0 or TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1,
which the binaries set under TCMalloc; --malloc=tcmalloc_pool keeps the
pool). Peak RSS minus the tensor peak is what the process holds beyond live
tensors: TensorFlow's runtime, the traced graphs, allocator caches and
fragmentation. Children run under the allocator the binaries pick
(--malloc, see hvrnn_tf.utils.allocator).
Search: for each --search config, batches 1, 2, 4, ... until the peak exceeds
--budget_gib (device memory on a GPU, RSS otherwise), the process fails, or
--max_batch; reports the largest measured batch within the budget, and the
batch a linear fit peak = a + b * batch predicts.
"""

import json
import math
import os
import resource
import subprocess
import sys
import time

from absl import flags

from bench import cli
from bench import malloc as malloc_lib
from bench import peer
from hvrnn_tf.utils import allocator

MARKER = "BENCH_MEMORY_RESULT "
DEFAULT_CASES = "bair_h1_d1:1,bair_h1_d1:2"
GIB = 2**30

# No TensorFlow before `child` measures its import: the flags come from
# bench.cli, and bench.common is imported where it is used.
FLAGS = cli.define_flags("memory")
flags.DEFINE_string(
  "cases",
  DEFAULT_CASES,
  "config:batch,... measured as given.",
  flag_values=FLAGS,
)
flags.DEFINE_string(
  "search",
  "smmnist_quick",
  "Configs whose largest batch within the budget is searched ('' for none).",
  flag_values=FLAGS,
)
flags.DEFINE_float(
  "budget_gib", 3.0, "Memory budget of the search.", flag_values=FLAGS
)
flags.DEFINE_integer(
  "max_batch", 32, "Largest batch the search tries.", flag_values=FLAGS
)
flags.DEFINE_integer("steps", 2, "Train steps per case.", flag_values=FLAGS)
flags.DEFINE_float("timeout", 900, "Seconds per case.", flag_values=FLAGS)
flags.DEFINE_enum(
  "malloc",
  "auto",
  ("auto", "tcmalloc", "system", "tcmalloc_pool"),
  "Allocator of the children, as HVRNN_TF_MALLOC for the binaries; "
  "tcmalloc_pool: TCMalloc with TensorFlow's own pool for large tensors.",
  flag_values=FLAGS,
)
flags.DEFINE_bool(
  "child",
  False,
  "Measure one case (--child_config, --child_batch) in this process and "
  "print it (how the bench runs each case).",
  flag_values=FLAGS,
)
flags.DEFINE_string("child_config", None, "", flag_values=FLAGS)
flags.DEFINE_integer("child_batch", None, "", flag_values=FLAGS)


def _rss_bytes() -> int:
  try:
    import psutil  # pylint: disable=g-import-not-at-top

    return int(psutil.Process().memory_info().rss)
  except ImportError:
    with open("/proc/self/statm") as f:
      return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak if sys.platform == "darwin" else peak * 1024


def _tensor_stats(tf, device: str, reset: bool = False) -> dict | None:
  """TensorFlow's allocator stats of `device` ({"current", "peak"} bytes of
  tensors in use), after a reset of the peak if `reset`; None where the
  allocator keeps none (on CPU only oneDNN's pool does, which the binaries
  leave to TCMalloc: hvrnn_tf.utils.allocator)."""
  tf_system_allocator = os.environ.get(allocator.TF_SYSTEM_ALLOCATOR_ENV, "")
  if device.startswith("CPU") and tf_system_allocator.lower() in ("1", "true"):
    return None
  try:
    if reset:
      tf.config.experimental.reset_memory_stats(device)
    return tf.config.experimental.get_memory_info(device)
  except ValueError:
    return None


def child(config_name: str, batch: int, steps: int) -> dict:
  """Runs in the subprocess: one case, measured from a clean process."""
  start = time.perf_counter()
  rss_start = _rss_bytes()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from bench import common  # pylint: disable=g-import-not-at-top  (imports TensorFlow)

  rss_import = _rss_bytes()
  gpus = common.gpu_devices()
  config = common.model_config(config_name)
  trainer = common.make_trainer(config, batch)
  rss_build = _rss_bytes()
  cpu_build = _tensor_stats(tf, "CPU:0")
  video = common.synthetic_video(config, batch)
  trainer.train_step.get_concrete_function(video)
  rss_traced = _rss_bytes()
  _tensor_stats(tf, "CPU:0", reset=True)
  if gpus:
    _tensor_stats(tf, "GPU:0", reset=True)
  loss = None
  for _ in range(steps):
    loss = float(trainer.train_step(video)[0]["loss"])
  cpu_steps = _tensor_stats(tf, "CPU:0")
  result = {
    "config": config_name,
    "batch_size": batch,
    "steps": steps,
    "parameters": common.num_parameters(trainer.model.trainable_variables),
    "rss_start_bytes": rss_start,
    "rss_after_import_bytes": rss_import,
    "rss_after_build_bytes": rss_build,
    "rss_after_trace_bytes": rss_traced,
    "rss_end_bytes": _rss_bytes(),
    "peak_rss_bytes": _peak_rss_bytes(),
    "cpu_tensors_after_build_bytes": cpu_build and int(cpu_build["current"]),
    "cpu_tensor_peak_bytes": cpu_steps and int(cpu_steps["peak"]),
    "loss": loss,
    "seconds": time.perf_counter() - start,
    "allocator": "tcmalloc" if allocator.loaded() else "system",
  }
  if gpus:
    info = _tensor_stats(tf, "GPU:0")
    result["gpu_peak_bytes"] = int(info["peak"])
    result["gpu_current_bytes"] = int(info["current"])
  return result


def measure(
  config_name: str, batch: int, steps: int, timeout: float, malloc: str = "auto"
) -> dict:
  """Runs `child` in a fresh process under the memory allocator `malloc`
  (hvrnn_tf.utils.allocator's choices, or bench.malloc's tcmalloc_pool); returns
  its result or the failure."""
  command = [
    sys.executable,
    "-m",
    "bench.memory",
    "--child",
    f"--child_config={config_name}",
    f"--child_batch={batch}",
    f"--steps={steps}",
  ]
  env = malloc_lib.child_env(malloc)
  if env is None:
    raise ValueError(f"--malloc={malloc}: libtcmalloc_minimal.so.4 not found")
  print(f"[memory] {config_name} batch {batch}", flush=True)
  load = (
    [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []
  )
  start = time.perf_counter()
  try:
    proc = subprocess.run(
      command,
      cwd=peer.ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=timeout,
      check=False,
    )
  except subprocess.TimeoutExpired:
    return {
      "config": config_name,
      "batch_size": batch,
      "load_at_start": load,
      "status": f"timeout after {timeout:.0f} s",
    }
  for line in proc.stdout.splitlines():
    if line.startswith(MARKER):
      result = json.loads(line[len(MARKER) :])
      result["load_at_start"] = load
      result["status"] = "ok"
      result["wall_s"] = time.perf_counter() - start
      print(f"  peak RSS {result['peak_rss_bytes'] / GIB:.2f} GiB", flush=True)
      return result
  if proc.returncode < 0:
    status = f"killed by signal {-proc.returncode}" + (
      " (likely out of memory)" if proc.returncode == -9 else ""
    )
  else:
    status = f"exit code {proc.returncode}"
  tail = (proc.stderr or "").strip().splitlines()[-3:]
  print(f"  failed: {status}", flush=True)
  return {
    "config": config_name,
    "batch_size": batch,
    "load_at_start": load,
    "status": status,
    "stderr_tail": tail,
  }


def metric(result: dict):
  """The figure compared with the budget: GPU peak on a GPU, peak RSS otherwise."""
  return result.get("gpu_peak_bytes", result.get("peak_rss_bytes"))


def linear_fit(points):
  """(a, b) of peak = a + b * batch by least squares; None with < 2 batches."""
  if len({b for b, _ in points}) < 2:
    return None
  n = len(points)
  mean_b = sum(b for b, _ in points) / n
  mean_m = sum(m for _, m in points) / n
  var = sum((b - mean_b) ** 2 for b, _ in points)
  slope = sum((b - mean_b) * (m - mean_m) for b, m in points) / var
  return mean_m - slope * mean_b, slope


def search(
  config_name: str,
  budget: float,
  max_batch: int,
  steps: int,
  timeout: float,
  cache: dict,
  malloc: str = "auto",
) -> dict:
  batch, within, points, stopped = 1, None, [], "max_batch"
  while batch <= max_batch:
    key = (config_name, batch)
    if key not in cache:
      cache[key] = measure(config_name, batch, steps, timeout, malloc)
    result = cache[key]
    if result["status"] != "ok":
      stopped = f"batch {batch}: {result['status']}"
      break
    points.append((batch, metric(result)))
    if metric(result) > budget:
      stopped = f"batch {batch} exceeds the budget"
      break
    within = batch
    batch *= 2
  fit = linear_fit(points)
  predicted = None
  if fit and fit[1] > 0:
    predicted = max(0, math.floor((budget - fit[0]) / fit[1]))
  return {
    "config": config_name,
    "budget_bytes": budget,
    "largest_measured_batch_within_budget": within,
    "stopped": stopped,
    "fit_intercept_bytes": fit[0] if fit else None,
    "fit_bytes_per_sequence": fit[1] if fit else None,
    "predicted_largest_batch": predicted,
    "points": points,
  }


def run(
  cases,
  searches,
  budget_gib,
  max_batch,
  steps,
  timeout,
  output,
  argv=None,
  malloc="auto",
):
  from bench import common  # pylint: disable=g-import-not-at-top

  record = common.start_record(
    "memory",
    argv,
    {
      "cases": [list(c) for c in cases],
      "search": searches,
      "budget_gib": budget_gib,
      "max_batch": max_batch,
      "steps": steps,
      "timeout_s": timeout,
      "malloc": malloc,
      "metric": "gpu_peak_bytes" if common.gpu_devices() else "peak_rss_bytes",
    },
  )
  record["output"] = output
  cache = {}
  for name, batch in cases:
    cache[(name, batch)] = measure(name, batch, steps, timeout, malloc)
  record["searches"] = [
    search(name, budget_gib * GIB, max_batch, steps, timeout, cache, malloc)
    for name in searches
  ]
  record["results"] = [cache[k] for k in sorted(cache)]
  record["configs"] = {
    name: common.config_record(name, common.model_config(name))
    for name, _ in cache
  }
  return common.finish_record(record, tables(record))


def _gib(x):
  return None if x is None else x / GIB


RESULT_COLUMNS = [
  "config",
  "batch",
  "params (M)",
  "peak RSS (GiB)",
  "GPU peak (GiB)",
  "RSS after import",
  "RSS after build",
  "RSS after trace",
  "peak - after build",
  "TF tensors after build",
  "TF tensor peak",
  "status",
]
SEARCH_COLUMNS = [
  "config",
  "budget (GiB)",
  "largest batch measured within",
  "linear-fit prediction",
  "fit: fixed (GiB)",
  "fit: per sequence (GiB)",
  "search stopped",
]


def result_row(r) -> list:
  return [
    r["config"],
    r["batch_size"],
    (r.get("parameters") or 0) / 1e6 or None,
    _gib(r.get("peak_rss_bytes")),
    _gib(r.get("gpu_peak_bytes")),
    _gib(r.get("rss_after_import_bytes")),
    _gib(r.get("rss_after_build_bytes")),
    _gib(r.get("rss_after_trace_bytes")),
    _gib(r["peak_rss_bytes"] - r["rss_after_build_bytes"])
    if r["status"] == "ok"
    else None,
    _gib(r.get("cpu_tensors_after_build_bytes")),
    _gib(r.get("cpu_tensor_peak_bytes")),
    r["status"],
  ]


def search_row(s) -> list:
  return [
    s["config"],
    _gib(s["budget_bytes"]),
    s["largest_measured_batch_within_budget"],
    s["predicted_largest_batch"],
    _gib(s["fit_intercept_bytes"]),
    _gib(s["fit_bytes_per_sequence"]),
    s["stopped"],
  ]


def tables(record) -> list:
  from bench import common  # pylint: disable=g-import-not-at-top

  rows = [result_row(r) for r in record["results"]]
  out = [common.markdown_table(RESULT_COLUMNS, rows)]
  if record["searches"]:
    rows = [search_row(s) for s in record["searches"]]
    out.append(common.markdown_table(SEARCH_COLUMNS, rows))
  return out


def main(argv=None):
  args = cli.parse_flags(FLAGS, argv, __doc__)
  if args.child:
    result = child(args.child_config, args.child_batch, args.steps)
    print(MARKER + json.dumps(result), flush=True)
    return None
  from bench import common  # pylint: disable=g-import-not-at-top

  cases = common.config_cases(args.cases)
  searches = cli.csv_list(args.search)
  for name in searches:
    common.model_config(name)
  return run(
    cases,
    searches,
    args.budget_gib,
    args.max_batch,
    args.steps,
    args.timeout,
    args.output,
    argv,
    args.malloc,
  )


if __name__ == "__main__":
  main()
