"""Runs every benchmark with its default settings, each in its own process.

  python -m bench.run_all                          # ~25 min on 2 CPU cores
  python -m bench.run_all --only=train_step,sampling --output_dir=/tmp/bench
  python -m bench.run_all -- --repeats=5           # extra flags passed to every bench

Writes <output_dir>/<bench>.json (default bench/results/) and prints each
bench's tables; exits non-zero if a bench failed to run.
"""

import argparse
import os
import subprocess
import sys
import time

BENCHES = (
  "train_step",
  "sampling",
  "input_pipeline",
  "hardware",
  "memory",
  "op_profile",
  "optimizations",
)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
  parser = argparse.ArgumentParser(
    prog="python -m bench.run_all", description=__doc__.split("\n")[0]
  )
  parser.add_argument(
    "--only", default=",".join(BENCHES), help=f"Comma list of {BENCHES}."
  )
  parser.add_argument(
    "--output_dir", default=os.path.join(ROOT, "bench", "results")
  )
  parser.add_argument(
    "extra", nargs="*", help="Flags passed to every bench (after --)."
  )
  args = parser.parse_args(argv)
  failed = []
  for name in [b.strip() for b in args.only.split(",") if b.strip()]:
    if name not in BENCHES:
      parser.error(f"unknown bench {name!r}; known: {BENCHES}")
    command = [
      sys.executable,
      "-m",
      f"bench.{name}",
      f"--output={os.path.join(args.output_dir, name + '.json')}",
    ] + args.extra
    print(f"\n=== {' '.join(command)}", flush=True)
    start = time.perf_counter()
    code = subprocess.call(command, cwd=ROOT)
    print(
      f"=== bench.{name}: exit {code}, {time.perf_counter() - start:.0f} s",
      flush=True,
    )
    if code:
      failed.append(name)
  if failed:
    sys.exit(f"failed: {failed}")


if __name__ == "__main__":
  main()
