"""The standalone run of bench/peer_torch_driver.py: its flags and its record.

Standard library only (argparse, not absl: the torch virtualenv need not
have it): the driver imports it before torch, both as
`bench.peer_torch_standalone` and, run as a script, from bench/ on sys.path.
"""

import datetime
import json
import os
import platform
import shlex
import statistics
import sys


def add_flags(parser) -> None:
  """The flags of the standalone run (ignored with --serve)."""
  parser.add_argument(
    "--precisions", default="fp32", help="Comma list of fp32, bf16."
  )
  parser.add_argument(
    "--tasks", default="train,sample", help="Comma list of train, sample."
  )
  parser.add_argument("--warmup", type=int, default=1)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument(
    "--sample_batch",
    type=int,
    default=1,
    help="Samples per sampler call (the release's sample.py: 1).",
  )
  parser.add_argument(
    "--sample_future", type=int, default=28, help="Predicted frames F."
  )
  parser.add_argument(
    "--sample_iterations",
    type=int,
    default=None,
    help="Passes timed of the F per call (default F: no extrapolation).",
  )
  parser.add_argument(
    "--protocol_samples",
    type=int,
    default=100,
    help="Samples per test sequence (BAIR protocol: 100).",
  )
  parser.add_argument(
    "--matmul_size",
    type=int,
    default=None,
    help="Side of the peak matmul (default 2048 on CPU, 8192 on a GPU).",
  )
  parser.add_argument(
    "--out", default=None, help="JSON file to write (standalone)."
  )


def _median_entry(task, precision, reply, warmup, extra=None):
  runs = reply["runs_s"]
  return {
    "task": task,
    "precision": precision,
    **(extra or {}),
    "median_s": statistics.median(runs),
    "min_s": min(runs),
    "runs_s": runs,
    "warmup": warmup,
    "load_average": list(os.getloadavg()),
  }


def _train_entry(peer, args, precision):
  peer.train(args.warmup, precision)
  entry = _median_entry(
    "train",
    precision,
    peer.train(args.repeats, precision),
    args.warmup,
    {"batch": args.batch},
  )
  entry["sequences_per_s"] = args.batch / entry["median_s"]
  entry["memory"] = peer.info()
  peer.reset_peak_memory()
  return entry


def _sample_entry(peer, args, precision):
  kwargs = dict(
    batch=args.sample_batch,
    future=args.sample_future,
    iterations=args.sample_iterations,
    precision=precision,
  )
  peer.sample(steps=args.warmup, **kwargs)
  reply = peer.sample(steps=args.repeats, **kwargs)
  entry = _median_entry(
    "sample",
    precision,
    reply,
    args.warmup,
    {
      "batch": args.sample_batch,
      "future": args.sample_future,
      "iterations_timed": reply["iterations"],
    },
  )
  per_call = entry["median_s"] * reply["extrapolation_factor"]
  entry.update(
    seconds_per_call_extrapolated=per_call,
    protocol_samples=args.protocol_samples,
    seconds_per_test_sequence=per_call
    * args.protocol_samples
    / args.sample_batch,
    memory=peer.info(),
  )
  peer.reset_peak_memory()
  return entry


def record(args, peer) -> dict:
  """Times --tasks x --precisions of `peer` (a ReleasePeer); the record."""
  results = []
  for precision in args.precisions.split(","):
    peer.reset_peak_memory()
    if "train" in args.tasks:
      results.append(_train_entry(peer, args, precision))
    if "sample" in args.tasks:
      results.append(_sample_entry(peer, args, precision))
  return {
    "driver": "bench/peer_torch_driver.py",
    "command": " ".join(shlex.quote(a) for a in sys.argv),
    "date_utc": datetime.datetime.now(datetime.UTC).isoformat(
      timespec="seconds"
    ),
    "host": {
      "cpu": platform.processor() or platform.machine(),
      "cores": os.cpu_count(),
      "python": platform.python_version(),
    },
    "settings": vars(args),
    "info": peer.info(),
    "matmul_peak": [
      peer.matmul(args.matmul_size, p) for p in args.precisions.split(",")
    ],
    "results": results,
  }


def run(args, peer) -> dict:
  """Prints the record as JSON, writes it to --out if given; returns it."""
  out = record(args, peer)
  text = json.dumps(out, indent=1)
  print(text)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text)
  return out
