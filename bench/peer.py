"""Peer benchmark: the authors' PyTorch model vs hvrnn_tf, same architecture, batch, frames, precision.

  python -m bench.peer --release_dir=DIR --torch_python=PY      # ~1.5 h on 2 busy CPU cores
  python -m bench.peer --release_dir=DIR --torch_python=PY --batches=1 --repeats=3 --sampling=0

The peer (bench/README.md, "The peer"): a checkout of facebookresearch/improved_vrnn
and a Python with torch in its own virtualenv (never in requirements.txt).
Per batch size, two clean child processes hold one model each: the release's
s2s_big_hier_v4 (bench/peer_torch_driver.py --serve under --torch_python,
torch threads = cores, OMP_WAIT_POLICY=--peer_omp_wait_policy) and
gin/bair.gin's model (`python -m bench.peer --child`); parameter counts side
by side (ours = the release's parameters that get a gradient). After warm-up
their train steps alternate, release, ours, release, ..., one at a time;
medians of --repeats; peak RSS of each child after them. Model FLOPs: XLA's
count of our step (bench.hlo_flops), the same architecture; the fraction of
the best fp32 matmul rate of TF and torch measured in the run. At batch 1,
BAIR-protocol sampling per test sequence (100 samples x 28 frames), timed
interleaved and extrapolated: --peer_sample_iterations of the F passes of
the release's sampler (x F / k x 100 one-sample calls), ours' O(F) sampler
on --our_samples_timed samples in one batch (x 100 / timed).
"""

import os
import statistics
import sys
import types

from absl import flags

from bench import cli
from bench import peer_ours
from bench import peer_report
from bench import peer_torch_driver as driver
from hvrnn_tf.utils import allocator

GIB = peer_report.GIB
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE, OURS = peer_report.RELEASE, peer_report.OURS

FLAGS = cli.define_flags("peer")
FLAGS.set_default("repeats", 5)
flags.DEFINE_string(
  "release_dir",
  driver.DEFAULT_RELEASE_DIR,
  "Checkout of facebookresearch/improved_vrnn ($PEER_RELEASE_DIR).",
  flag_values=FLAGS,
)
flags.DEFINE_string(
  "torch_python",
  driver.DEFAULT_TORCH_PYTHON,
  "A Python with torch and numpy, its own virtualenv ($PEER_TORCH_PYTHON).",
  flag_values=FLAGS,
)
flags.DEFINE_string(
  "batches", "1,2", "Train-step batch sizes.", flag_values=FLAGS
)
flags.DEFINE_enum(
  "precision",
  "fp32",
  driver.PRECISIONS,
  "fp32, or bf16: torch.autocast vs Keras mixed_bfloat16.",
  flag_values=FLAGS,
)
flags.DEFINE_integer("context_frames", 2, "", flag_values=FLAGS)
flags.DEFINE_integer("future_frames", 10, "", flag_values=FLAGS)
flags.DEFINE_integer(
  "n_hid",
  64,
  "Base width: 64 is the paper's model (16: a small one for tests).",
  flag_values=FLAGS,
)
# The BAIR-protocol sampling section.
flags.DEFINE_integer(
  "sampling", 1, "0: skip the sampling section.", flag_values=FLAGS
)
flags.DEFINE_integer("protocol_samples", 100, "", flag_values=FLAGS)
flags.DEFINE_integer("sample_future", 28, "", flag_values=FLAGS)
flags.DEFINE_integer(
  "peer_sample_iterations",
  1,
  "Of the release sampler's F passes per sample, how many are timed.",
  flag_values=FLAGS,
)
flags.DEFINE_integer(
  "our_samples_timed",
  10,
  "Samples in ours' timed call (--protocol_samples: no extrapolation).",
  flag_values=FLAGS,
)
flags.DEFINE_integer("sample_repeats", 3, "", flag_values=FLAGS)
flags.DEFINE_integer("matmul_size", 4096, "", flag_values=FLAGS)
flags.DEFINE_string(
  "peer_omp_wait_policy",
  "PASSIVE",
  "OMP_WAIT_POLICY of the release's child ('' leaves it unset).",
  flag_values=FLAGS,
)
# Each child's allocator.
flags.DEFINE_enum(
  "ours_malloc",
  "auto",
  ("auto", "tcmalloc", "system"),
  "Allocator of ours' child: TCMalloc (auto: if installed, as hvrnn_tf's "
  "binaries run) or glibc's (system).",
  flag_values=FLAGS,
)
flags.DEFINE_enum(
  "release_malloc",
  "system",
  ("auto", "tcmalloc", "system"),
  "Allocator of the release's child; default: glibc's, as it runs.",
  flag_values=FLAGS,
)
flags.DEFINE_string(
  "from_json",
  None,
  "Only recompute the ratios, targets and tables of this earlier JSON.",
  flag_values=FLAGS,
)


def child_env() -> dict:
  """This process's environment for a child: the repository on PYTHONPATH,
  TensorFlow's start-up logging off."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env["PYTHONPATH"] = ROOT + (
    os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
  )
  return env


def start_children(args, batch):
  """(release child, ours child) for `batch`, both building their model."""
  env = child_env()
  shape = [
    f"--batch={batch}",
    f"--context_frames={args.context_frames}",
    f"--future_frames={args.future_frames}",
    f"--n_hid={args.n_hid}",
  ]
  peer_env = allocator.child_env(env, args.release_malloc)
  if args.peer_omp_wait_policy:
    peer_env["OMP_WAIT_POLICY"] = args.peer_omp_wait_policy
  peer = driver.Child(
    RELEASE,
    ROOT,
    [
      args.torch_python,
      os.path.join(ROOT, "bench", "peer_torch_driver.py"),
      "--serve",
      f"--release_dir={os.path.abspath(args.release_dir)}",
      f"--threads={len(os.sched_getaffinity(0))}",
    ]
    + shape,
    peer_env,
  )
  ours = driver.Child(
    OURS,
    ROOT,
    [
      sys.executable,
      "-m",
      "bench.peer",
      "--child",
      f"--precision={args.precision}",
    ]
    + shape,
    allocator.child_env(env, args.ours_malloc),
  )
  return peer, ours


def summary(runs: list) -> dict:
  return {
    "median_s": statistics.median(runs),
    "min_s": min(runs),
    "max_s": max(runs),
    "runs_s": runs,
  }


def interleave(children, op, repeats, turns, kwargs) -> dict:
  """`repeats` rounds of one `op` call per child, in turn; {name: [seconds]}.

  kwargs: {child name: the call's arguments}.
  """
  from bench import common  # pylint: disable=g-import-not-at-top

  runs = {c.name: [] for c in children}
  for round_index in range(repeats):
    for child in children:
      load = common.load_average()
      seconds = child.call(op, steps=1, **kwargs[child.name])["runs_s"][0]
      runs[child.name].append(seconds)
      turns.append(
        {
          "op": op,
          "child": child.name,
          "round": round_index,
          "seconds": seconds,
          "load_at_start": load,
          **kwargs[child.name],
        }
      )
      print(
        f"  {op} {child.name}: {seconds:.2f} s (load {load[:1]})", flush=True
      )
  return runs


def train_section(args, peer, ours, batch, record) -> dict:
  """Warm-up, interleaved train steps and peak memory of one batch size."""
  children = (peer, ours)
  first = {
    c.name: c.call("train", steps=args.warmup, precision=args.precision)[
      "runs_s"
    ]
    for c in children
  }
  runs = interleave(
    children,
    "train",
    args.repeats,
    record["turns"],
    {c.name: {"precision": args.precision} for c in children},
  )
  entries = {}
  for child in children:
    info = child.call("info")
    entries[child.name] = {
      "section": "train",
      "implementation": child.name,
      "batch_size": batch,
      "precision": args.precision,
      "status": "ok",
      "warmup_runs_s": first[child.name],
      "timing": summary(runs[child.name]),
      "info": info,
      "peak_rss_bytes": info["peak_rss_bytes"],
    }
  return entries


def count_flops(children, entries, precision) -> None:
  """Adds each child's FLOP count of its train step (ours: XLA HLO; release: torch)."""
  for child in children:
    try:
      entries[child.name]["flop_count"] = child.call(
        "flops", precision=precision
      )
    except driver.ChildError as e:
      entries[child.name]["flop_count"] = {"error": str(e)}


def sampling_section(args, peer, ours, record) -> dict:
  """Interleaved BAIR-protocol sampling of the two children, extrapolated per test sequence."""
  cases = {
    RELEASE: dict(
      batch=1,
      future=args.sample_future,
      iterations=args.peer_sample_iterations,
      precision=args.precision,
    ),
    OURS: dict(
      batch=args.our_samples_timed,
      future=args.sample_future,
      precision=args.precision,
    ),
  }
  children = (peer, ours)
  first = {
    c.name: c.call("sample", steps=args.warmup, **cases[c.name])
    for c in children
  }
  runs = interleave(
    children, "sample", args.sample_repeats, record["turns"], cases
  )
  entries = {}
  for child in children:
    timing = summary(runs[child.name])
    per_call = timing["median_s"] * first[child.name]["extrapolation_factor"]
    samples_per_call = cases[child.name]["batch"]
    entries[child.name] = {
      "section": "sampling",
      "implementation": child.name,
      "status": "ok",
      "protocol_samples": args.protocol_samples,
      "future_frames": args.sample_future,
      "context_frames": args.context_frames,
      "samples_per_call": samples_per_call,
      "passes_timed": first[child.name].get("iterations"),
      "warmup_runs_s": first[child.name]["runs_s"],
      "timing": timing,
      "seconds_per_call": per_call,
      "seconds_per_test_sequence": per_call
      * args.protocol_samples
      / samples_per_call,
      "extrapolated": (
        per_call != timing["median_s"]
        or samples_per_call != args.protocol_samples
      ),
      "peak_rss_bytes": child.call("info")["peak_rss_bytes"],
    }
  return entries


def matmul_peaks(children, size, when) -> list:
  peaks = []
  for child in children:
    try:
      peaks.append(
        {**child.call("matmul", size=size), "child": child.name, "when": when}
      )
    except driver.ChildError as e:
      peaks.append({"child": child.name, "when": when, "error": str(e)})
  return peaks


def run_batch(args, batch, record, last: bool) -> None:
  """One pair of children: train section, sampling at batch 1, FLOPs, peaks."""
  from bench import common  # pylint: disable=g-import-not-at-top

  print(f"[peer] batch {batch}: starting the release and ours", flush=True)
  children = start_children(args, batch)
  try:
    record["peaks"] += matmul_peaks(
      children, args.matmul_size, f"start, batch {batch}"
    )
    entries = train_section(args, *children, batch, record)
    record["results"] += entries.values()
    record["parameters"] = parameter_counts(entries)
    common.write_partial(record)
    if batch == 1 and args.sampling:
      print("[peer] sampling, BAIR protocol", flush=True)
      record["results"] += sampling_section(args, *children, record).values()
    print("[peer] counting FLOPs", flush=True)
    count_flops(children, entries, args.precision)
    if last:
      record["peaks"] += matmul_peaks(children, args.matmul_size, "end")
  except driver.ChildError as e:
    record["results"].append(
      {
        "section": "train",
        "implementation": "both",
        "batch_size": batch,
        "status": "failed",
        "error": str(e),
      }
    )
    print(f"  failed: {e}", flush=True)
  finally:
    for child in children:
      child.close()
  common.write_partial(record)


def parameter_counts(entries) -> dict:
  release, ours = entries[RELEASE]["info"], entries[OURS]["info"]
  return {
    OURS: ours["parameters"],
    "release_total": release["parameters"],
    "release_with_gradient": release["parameters_with_gradient"],
    "release_modules_without_gradient": release["modules_without_gradient"],
    "agree": ours["parameters"] == release["parameters_with_gradient"],
  }


def run(args, argv=None) -> dict:
  from bench import common  # pylint: disable=g-import-not-at-top

  settings = {k: v for k, v in vars(args).items() if k not in ("output",)}
  settings["torch"] = args.torch_version
  settings["torch_threads"] = len(os.sched_getaffinity(0))
  settings["ld_preload"] = {
    side: allocator.child_env({}, choice).get("LD_PRELOAD")
    for side, choice in (
      (RELEASE, args.release_malloc),
      (OURS, args.ours_malloc),
    )
  }
  record = common.start_record("peer", argv, settings)
  record.update(output=args.output, peaks=[], turns=[], parameters={})
  for i, batch in enumerate(args.batches):
    run_batch(args, batch, record, last=i == len(args.batches) - 1)
  peer_report.derive(record)
  return common.finish_record(record, peer_report.tables(record))


def parse_args(argv) -> types.SimpleNamespace:
  """FLAGS as a namespace, --batches as ints, and the peer's torch version."""
  args = types.SimpleNamespace(
    **cli.parse_flags(FLAGS, argv, __doc__).flag_values_dict()
  )
  args.batches = cli.int_list(args.batches)
  if not args.from_json:
    driver.check_release_dir(args.release_dir)
    args.torch_version = driver.torch_version(args.torch_python)
  return args


def main(argv=None):
  argv = sys.argv[1:] if argv is None else list(argv)
  if "--child" in argv:
    return peer_ours.child_main(argv)
  args = parse_args(argv)
  if args.from_json:
    return peer_report.rederive(args.from_json)
  return run(args, argv)


if __name__ == "__main__":
  main()
