"""Peer benchmark: the authors' PyTorch model vs hvrnn_tf, same architecture, batch, frames, precision.

  python -m bench.peer --release_dir=DIR --torch_python=PY      # ~1.5 h on 2 busy CPU cores
  python -m bench.peer --release_dir=DIR --torch_python=PY --batches=1 --repeats=3 --sampling=0

The peer (bench/README.md, "Peer"): a checkout of facebookresearch/improved_vrnn
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

import json
import os
import statistics
import sys
import time

from bench import peer_torch_driver as driver
from hvrnn_tf.utils import allocator

GIB = 2**30
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE, OURS = "release", "ours"


def paper_config(n_hid: int, context_frames: int, future_frames: int):
  """gin/bair.gin's model (bench config bair_h3) at base width `n_hid`.

  The release ties the latent channels to n_hid (8, 8, 2 times it); 64 is
  the paper's model, 16 a small one for the smoke tests.
  """
  from bench import common  # pylint: disable=g-import-not-at-top

  return common.model_config(
    "bair_h3",
    n_hid=n_hid,
    latent_channels=(8 * n_hid, 8 * n_hid, 2 * n_hid),
    context_frames=context_frames,
    future_frames=future_frames,
  )


class OursChild:
  """hvrnn_tf's side of the protocol of peer_torch_driver.serve."""

  def __init__(self, batch, context_frames, future_frames, n_hid, precision):
    from bench import common  # pylint: disable=g-import-not-at-top

    start = time.perf_counter()
    self.common = common
    self.config = paper_config(n_hid, context_frames, future_frames)
    self.trainer = common.make_trainer(
      self.config,
      batch,
      precision="mixed_bfloat16" if precision == "bf16" else "float32",
    )
    self.video = common.synthetic_video(self.config, batch)
    self.build_s = time.perf_counter() - start

  def train(self, steps=1, precision=None):
    del precision  # fixed when the Trainer was built
    last = {}

    def step():
      last["loss"] = self.trainer.train_step(self.video)[0]["loss"]
      return last["loss"]

    runs = driver.timed(step, steps, self.common.sync)
    return {"runs_s": runs, "loss": float(last["loss"]) if runs else None}

  def sample(
    self, batch=1, future=28, steps=1, precision=None, iterations=None
  ):
    """`batch` samples x `future` frames of one context sequence, in one call."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    del precision, iterations
    context = self.video[:1, : self.config.context_frames]
    num_future, seed = tf.constant(future), tf.constant([0, 1])
    runs = driver.timed(
      lambda: self.trainer.model.sample(context, num_future, batch, seed),
      steps,
      self.common.sync,
    )
    return {
      "runs_s": runs,
      "batch": batch,
      "future": future,
      "extrapolation_factor": 1.0,
    }

  def flops(self, precision=None):
    from bench import hlo_flops  # pylint: disable=g-import-not-at-top

    del precision
    start = time.perf_counter()
    counts = hlo_flops.train_step_flops(self.trainer, self.video)
    return {**counts, "seconds": time.perf_counter() - start}

  def matmul(self, size=4096, precision="fp32", steps=3):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    from bench import hardware  # pylint: disable=g-import-not-at-top

    dtype = tf.bfloat16 if precision == "bf16" else tf.float32
    peak = hardware.matmul_peak(size, dtype, 1, steps)
    return {
      "kind": "TF " + peak["kind"],
      "flops": peak["flops"],
      "runs_s": peak["timing"]["runs_s"],
      "flops_per_s": peak["flops_per_s"],
    }

  def info(self):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    return {
      "parameters": self.common.num_parameters(
        self.trainer.model.trainable_variables
      ),
      "peak_rss_bytes": driver.peak_rss_bytes(),
      "rss_bytes": driver.rss_bytes(),
      "build_s": self.build_s,
      "tensorflow": tf.__version__,
      "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
    }

  def handlers(self) -> dict:
    return {
      "train": self.train,
      "sample": self.sample,
      "flops": self.flops,
      "matmul": self.matmul,
      "info": self.info,
    }


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


def derive(record) -> None:
  """Adds the side-by-side train rows, the sampling ratio and the issue's targets."""
  peaks = [p["flops_per_s"] for p in record["peaks"] if "flops_per_s" in p]
  record["peak_flops_per_s"] = peak = max(peaks) if peaks else None
  ok = {
    (r["section"], r["implementation"], r.get("batch_size")): r
    for r in record["results"]
    if r["status"] == "ok"
  }
  rows = []
  for batch in record["settings"]["batches"]:
    release, ours = (
      ok.get(("train", RELEASE, batch)),
      ok.get(("train", OURS, batch)),
    )
    if not (release and ours):
      continue
    flops = ours.get("flop_count", {}).get("flops")
    row = {
      "batch_size": batch,
      "release_s": release["timing"]["median_s"],
      "ours_s": ours["timing"]["median_s"],
      "train_speedup": release["timing"]["median_s"]
      / ours["timing"]["median_s"],
      "train_speedup_of_minima": release["timing"]["min_s"]
      / ours["timing"]["min_s"],
      # Round by round (release, then ours, at about the same load).
      "paired_speedups": [
        r / o
        for r, o in zip(release["timing"]["runs_s"], ours["timing"]["runs_s"])
      ],
      "model_flops": flops,
      "release_torch_flops": release.get("flop_count", {}).get("flops"),
      "release_peak_rss_bytes": release["peak_rss_bytes"],
      "ours_peak_rss_bytes": ours["peak_rss_bytes"],
      "peak_rss_ours_over_release": ours["peak_rss_bytes"]
      / release["peak_rss_bytes"],
    }
    row["train_speedup_paired_median"] = statistics.median(
      row["paired_speedups"]
    )
    row["train_speedup_conservative"] = min(
      row["train_speedup"],
      row["train_speedup_of_minima"],
      row["train_speedup_paired_median"],
    )
    for name, entry in ((RELEASE, release), (OURS, ours)):
      if flops and peak:
        row[f"{name}_fraction_of_matmul_peak"] = flops / row[f"{name}_s"] / peak
        row[f"{name}_fraction_of_matmul_peak_fastest_step"] = (
          flops / entry["timing"]["min_s"] / peak
        )
    rows.append(row)
  record["train_comparison"] = rows
  release, ours = (
    ok.get(("sampling", RELEASE, None)),
    ok.get(("sampling", OURS, None)),
  )
  record["sampling_speedup_per_test_sequence"] = (
    release["seconds_per_test_sequence"] / ours["seconds_per_test_sequence"]
    if release and ours
    else None
  )
  record["targets"] = targets(
    rows, record["sampling_speedup_per_test_sequence"]
  )


def targets(rows, sampling_speedup) -> list:
  """Issue 16's CPU targets, each {target, value, unit, met}."""
  out = []
  add = lambda text, value, met, unit: out.append(
    {"target": text, "value": value, "unit": unit, "met": bool(met)}
  )
  for row in rows:
    b = row["batch_size"]
    speedup = row["train_speedup_conservative"]
    add(
      f"train step >= 1.3x faster than the release, batch {b}",
      speedup,
      speedup >= 1.3,
      "x (least of the 3 ratios)",
    )
    fraction = row.get("ours_fraction_of_matmul_peak")
    if fraction is not None:
      add(
        f"ours >= 45% of the fp32 matmul peak, batch {b}",
        fraction,
        fraction >= 0.45,
        "of peak",
      )
    if b == 2:
      add(
        "peak memory at batch 2 <= the release's",
        row["peak_rss_ours_over_release"],
        row["peak_rss_ours_over_release"] <= 1,
        "ours / release",
      )
  if sampling_speedup is not None:
    add(
      "BAIR-protocol sampling >= 10x faster per test sequence",
      sampling_speedup,
      sampling_speedup >= 10,
      "x",
    )
  return out


def tables(record) -> list:
  from bench import common  # pylint: disable=g-import-not-at-top

  g = lambda x: None if x is None else x / 1e9
  gib = lambda x: None if x is None else x / GIB
  p = record["parameters"]
  out = [
    common.markdown_table(
      ["model", "parameters", "note"],
      [
        ["ours (hvrnn_tf, gin/bair.gin)", p.get(OURS), ""],
        [
          "release, given a gradient by a train step",
          p.get("release_with_gradient"),
          f"equal to ours: {p.get('agree')}",
        ],
        [
          "release, total",
          p.get("release_total"),
          "never called: "
          + ", ".join(p.get("release_modules_without_gradient", [])),
        ],
      ],
    )
  ]
  out.append(
    common.markdown_table(
      [
        "batch",
        "release s/step",
        "ours s/step",
        "speed-up (medians)",
        "(minima)",
        "(paired, median)",
        "model GFLOP/step (XLA)",
        "release GFLOP (torch count)",
        "release of matmul peak",
        "ours of matmul peak",
        "(ours, fastest step)",
        "release peak RSS (GiB)",
        "ours peak RSS (GiB)",
      ],
      [
        [
          r["batch_size"],
          r["release_s"],
          r["ours_s"],
          r["train_speedup"],
          r["train_speedup_of_minima"],
          r["train_speedup_paired_median"],
          g(r["model_flops"]),
          g(r["release_torch_flops"]),
          r.get("release_fraction_of_matmul_peak"),
          r.get("ours_fraction_of_matmul_peak"),
          r.get("ours_fraction_of_matmul_peak_fastest_step"),
          gib(r["release_peak_rss_bytes"]),
          gib(r["ours_peak_rss_bytes"]),
        ]
        for r in record["train_comparison"]
      ],
    )
  )
  rows = [
    [
      r["implementation"],
      r["samples_per_call"],
      r.get("passes_timed") or "all",
      r["timing"]["median_s"],
      r["seconds_per_call"],
      r["protocol_samples"],
      r["seconds_per_test_sequence"],
      "yes" if r["extrapolated"] else "no",
      gib(r["peak_rss_bytes"]),
    ]
    for r in record["results"]
    if r["section"] == "sampling" and r["status"] == "ok"
  ]
  if rows:
    out.append(
      common.markdown_table(
        [
          "sampler",
          "samples per call",
          "passes timed",
          "s per timed call",
          "s per call (all F passes)",
          "samples per test sequence",
          "s per test sequence",
          "extrapolated",
          "peak RSS so far (GiB)",
        ],
        rows,
      )
    )
  out.append(
    common.markdown_table(
      ["matmul reference", "when", "GFLOP/s"],
      [
        [
          p.get("kind", p["child"]),
          p["when"],
          g(p.get("flops_per_s")) or p.get("error"),
        ]
        for p in record["peaks"]
      ],
    )
  )
  out.append(
    common.markdown_table(
      ["issue-16 target", "measured", "unit", "met"],
      [
        [t["target"], t["value"], t["unit"], "yes" if t["met"] else "NO"]
        for t in record["targets"]
      ],
    )
  )
  return out + [
    f"FAILED {r['section']} b{r.get('batch_size')}: {r['error']}"
    for r in record["results"]
    if r["status"] != "ok"
  ]


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
  derive(record)
  return common.finish_record(record, tables(record))


def child_main(argv) -> None:
  import argparse  # pylint: disable=g-import-not-at-top

  parser = argparse.ArgumentParser()
  parser.add_argument("--child", action="store_true")
  for name in ("batch", "context_frames", "future_frames", "n_hid"):
    parser.add_argument(f"--{name}", type=int, required=True)
  parser.add_argument("--precision", default="fp32")
  args = parser.parse_args(argv)
  child = OursChild(
    args.batch,
    args.context_frames,
    args.future_frames,
    args.n_hid,
    args.precision,
  )
  driver.serve(child.handlers())


def parse_args(argv):
  from bench import common  # pylint: disable=g-import-not-at-top

  parser = common.base_parser(__doc__.split("\n")[0], "peer")
  parser.add_argument(
    "--release_dir",
    default=driver.DEFAULT_RELEASE_DIR,
    help="Checkout of facebookresearch/improved_vrnn ($PEER_RELEASE_DIR).",
  )
  parser.add_argument(
    "--torch_python",
    default=driver.DEFAULT_TORCH_PYTHON,
    help="A Python with torch and numpy, its own virtualenv ($PEER_TORCH_PYTHON).",
  )
  parser.add_argument(
    "--batches", default="1,2", help="Train-step batch sizes."
  )
  parser.add_argument(
    "--precision",
    default="fp32",
    choices=driver.PRECISIONS,
    help="fp32, or bf16: torch.autocast vs Keras mixed_bfloat16.",
  )
  parser.add_argument("--context_frames", type=int, default=2)
  parser.add_argument("--future_frames", type=int, default=10)
  parser.add_argument(
    "--n_hid",
    type=int,
    default=64,
    help="Base width: 64 is the paper's model (16: a small one for tests).",
  )
  parser.add_argument(
    "--sampling", type=int, default=1, help="0: skip the sampling section."
  )
  parser.add_argument("--protocol_samples", type=int, default=100)
  parser.add_argument("--sample_future", type=int, default=28)
  parser.add_argument(
    "--peer_sample_iterations",
    type=int,
    default=1,
    help="Of the release sampler's F passes per sample, how many are timed.",
  )
  parser.add_argument(
    "--our_samples_timed",
    type=int,
    default=10,
    help="Samples in ours' timed call (--protocol_samples: no extrapolation).",
  )
  parser.add_argument("--sample_repeats", type=int, default=3)
  parser.add_argument("--matmul_size", type=int, default=4096)
  parser.add_argument(
    "--peer_omp_wait_policy",
    default="PASSIVE",
    help="OMP_WAIT_POLICY of the release's child ('' leaves it unset).",
  )
  malloc = dict(default="auto", choices=("auto", "tcmalloc", "system"))
  parser.add_argument(
    "--ours_malloc",
    **malloc,
    help="Allocator of ours' child: TCMalloc (auto: if installed, as "
    "hvrnn_tf's binaries run) or glibc's (system).",
  )
  parser.add_argument(
    "--release_malloc",
    **{**malloc, "default": "system"},
    help="Allocator of the release's child; default: glibc's, as it runs.",
  )
  parser.set_defaults(repeats=5)
  parser.add_argument(
    "--from_json",
    default=None,
    help="Only recompute the ratios, targets and tables of this earlier JSON.",
  )
  args = parser.parse_args(argv)
  args.batches = common.int_list(args.batches)
  if not args.from_json:
    driver.check_release_dir(args.release_dir)
    args.torch_version = driver.torch_version(args.torch_python)
  return args


def rederive(path: str) -> dict:
  """Recomputes the ratios, targets and tables of an earlier run's JSON, in place."""
  import datetime  # pylint: disable=g-import-not-at-top

  from bench import common  # pylint: disable=g-import-not-at-top

  with open(path) as f:
    record = json.load(f)
  derive(record)
  record["tables_markdown"] = tables(record)
  record["rederived_utc"] = datetime.datetime.now(datetime.UTC).isoformat(
    timespec="seconds"
  )
  common.write_record({**record, "output": path})
  print("\n\n".join(record["tables_markdown"]))
  return record


def main(argv=None):
  argv = sys.argv[1:] if argv is None else list(argv)
  if "--child" in argv:
    return child_main(argv)
  args = parse_args(argv)
  return rederive(args.from_json) if args.from_json else run(args, argv)


if __name__ == "__main__":
  main()
