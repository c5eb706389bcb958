"""Runs every benchmark with its default settings, each in its own process.

  python -m bench.run_all                          # ~25 min on 2 CPU cores
  python -m bench.run_all --only=train_step,sampling --output_dir=/tmp/bench
  python -m bench.run_all -- --repeats=5           # extra flags passed to every bench

Writes <output_dir>/<bench>.json (default bench/results/) and prints each
bench's tables; exits non-zero if a bench failed to run.
"""

import os
import subprocess
import sys
import time

from absl import flags

from bench import cli

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

FLAGS = flags.FlagValues()
flags.DEFINE_string(
  "only", ",".join(BENCHES), f"Comma list of {BENCHES}.", flag_values=FLAGS
)
flags.DEFINE_string(
  "output_dir", cli.RESULTS_DIR, "Folder of the JSONs.", flag_values=FLAGS
)


def main(argv=None):
  argv = sys.argv[1:] if argv is None else list(argv)
  own, extra = argv, []
  if "--" in argv:
    own, extra = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
  args = cli.parse_flags(FLAGS, own, __doc__)
  names = cli.csv_list(args.only)
  unknown = set(names) - set(BENCHES)
  if unknown:
    raise ValueError(f"--only: unknown {sorted(unknown)}; known: {BENCHES}")
  failed = []
  for name in names:
    command = [
      sys.executable,
      "-m",
      f"bench.{name}",
      f"--output={os.path.join(args.output_dir, name + '.json')}",
    ] + extra
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
