"""The benches' command line: absl flags, one FlagValues per bench.

Standard library and absl only (no TensorFlow), so that a bench's child
process parses its flags before it imports TensorFlow (bench.memory measures
that import).
"""

import os
import sys

from absl import flags

RESULTS_DIR = os.path.join(
  os.path.dirname(os.path.abspath(__file__)), "results"
)


def define_flags(name: str) -> flags.FlagValues:
  """A bench's own flags: --output (bench/results/<name>.json), --warmup, --repeats.

  Each bench defines its flags on its own FlagValues
  (`flags.DEFINE_*(..., flag_values=FLAGS)`), so that benches imported into
  one process (the tests; bench.gpu imports bench.train_step) keep apart;
  parse_flags reads them.
  """
  values = flags.FlagValues()
  flags.DEFINE_string(
    "output",
    os.path.join(RESULTS_DIR, f"{name}.json"),
    "JSON file to write.",
    flag_values=values,
  )
  flags.DEFINE_integer(
    "warmup",
    1,
    "Untimed calls before timing (the first one traces/compiles).",
    flag_values=values,
  )
  flags.DEFINE_integer(
    "repeats", 3, "Timed calls; the median is reported.", flag_values=values
  )
  return values


def parse_flags(values: flags.FlagValues, argv, doc: str) -> flags.FlagValues:
  """Sets `values` from argv (the arguments after the program; None:
  sys.argv[1:]), the others to their defaults. --help prints `doc` and the
  flags and exits; unknown flags or arguments raise flags.Error."""
  argv = sys.argv[1:] if argv is None else list(argv)
  if {"-h", "--help", "--helpfull"} & set(argv):
    print(f"{doc.strip()}\n\nflags:\n{values.get_help()}")
    sys.exit(0)
  values.unparse_flags()
  rest = values(["bench", *argv])
  if rest[1:]:
    raise flags.Error(f"Unexpected arguments {rest[1:]} (flags only)")
  return values


def csv_list(text: str) -> list:
  return [x.strip() for x in text.split(",") if x.strip()]


def int_list(text: str) -> list:
  return [int(x) for x in csv_list(text)]
