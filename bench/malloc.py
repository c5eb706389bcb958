"""The memory allocator under the paper's model's CPU train step: glibc vs TCMalloc vs jemalloc.

  python -m bench.malloc                                 # ~10 min on 2 CPU cores
  python -m bench.malloc --allocators=system,tcmalloc --batch=2 --repeats=5

One clean child process per allocator (`python -m bench.malloc --child`,
started with LD_PRELOAD set, or not, as hvrnn_tf.utils.allocator sets it for the
binaries; tcmalloc_pool: TCMalloc with TensorFlow's own pool for large
tensors, the binaries' setting until 2026-12-01), each building the
paper's BAIR model (bench.peer's, at --n_hid) and its Trainer. After one
warm-up step each (the first traces), the steps alternate child by child,
one at a time, so that load hits all alike. Per step: wall seconds, minor
page faults and system CPU seconds of the child (getrusage); per child: peak
RSS and which allocator /proc/self/maps shows. Allocators not installed
here are reported as skipped.
"""

import os
import resource
import statistics
import sys

from absl import flags

from bench import cli
from bench import peer
from bench import peer_ours
from bench import peer_torch_driver as driver
from hvrnn_tf.utils import allocator

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
ALLOCATORS = ("system", "tcmalloc", "tcmalloc_pool", "jemalloc")

FLAGS = cli.define_flags("malloc")
flags.DEFINE_string(
  "allocators", ",".join(ALLOCATORS), "Comma list.", flag_values=FLAGS
)
flags.DEFINE_integer("batch", 1, "Train batch.", flag_values=FLAGS)
flags.DEFINE_integer(
  "n_hid", 64, "64: the paper's model; 16: tests.", flag_values=FLAGS
)
flags.DEFINE_integer(
  "future_frames", 10, "Predicted frames per sequence.", flag_values=FLAGS
)


class MallocChild(peer_ours.OursChild):
  """bench.peer's child of ours, with page faults and system time per step."""

  def train(self, steps=1, precision=None):
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = super().train(steps, precision)
    after = resource.getrusage(resource.RUSAGE_SELF)
    result["minor_faults_per_step"] = (
      after.ru_minflt - before.ru_minflt
    ) / max(steps, 1)
    result["system_s_per_step"] = (after.ru_stime - before.ru_stime) / max(
      steps, 1
    )
    return result

  def info(self):
    mapped = [n for n in ("tcmalloc", "jemalloc") if allocator.loaded(n)]
    return {
      **super().info(),
      "allocator_mapped": mapped[0] if mapped else "system",
      "tf_system_allocator": os.environ.get(
        allocator.TF_SYSTEM_ALLOCATOR_ENV, "0"
      ),
    }


def child_env(name: str) -> dict | None:
  """The environment of the child for allocator `name`; None: not installed.

  tcmalloc is the binaries' setting (TensorFlow's tensors in TCMalloc too);
  tcmalloc_pool keeps the large ones in TensorFlow's own oneDNN pool, as
  before 2026-12-01 (docs/design/tcmalloc.md).
  """
  env = peer.child_env()
  if name == "tcmalloc_pool":
    env[allocator.TF_SYSTEM_ALLOCATOR_ENV] = "0"
    name = "tcmalloc"
  if name == "jemalloc":
    if not os.path.exists(JEMALLOC):
      return None
    env = allocator.child_env(env, "system")
    env["LD_PRELOAD"] = ":".join(
      filter(None, [JEMALLOC, env.get("LD_PRELOAD")])
    )
    return env
  try:
    return allocator.child_env(env, name)
  except ValueError:  # tcmalloc, not installed
    return None


def start(names, args) -> dict:
  children = {}
  for name in names:
    env = child_env(name)
    if env is None:
      continue
    children[name] = driver.Child(
      name,
      peer.ROOT,
      [sys.executable, "-m", "bench.malloc", "--child", f"--batch={args.batch}"]
      + ["--context_frames=2", f"--future_frames={args.future_frames}"]
      + [f"--n_hid={args.n_hid}"],
      env,
    )
  return children


def measure(children: dict, warmup: int, repeats: int) -> dict:
  """`warmup` steps each (the first traces), then `repeats` rounds of one
  step per child."""
  first = {
    n: c.call("train", steps=warmup)["runs_s"][0] for n, c in children.items()
  }
  steps = {n: [] for n in children}
  for _ in range(repeats):
    for name, child in children.items():
      steps[name].append(child.call("train", steps=1))
  results = {}
  for name, child in children.items():
    runs = [s["runs_s"][0] for s in steps[name]]
    results[name] = {
      "status": "ok",
      "first_s": first[name],
      "runs_s": runs,
      "median_s": statistics.median(runs),
      "min_s": min(runs),
      "minor_faults_per_step": [
        s["minor_faults_per_step"] for s in steps[name]
      ],
      "system_s_per_step": [s["system_s_per_step"] for s in steps[name]],
      "info": child.call("info"),
    }
  return results


def rows(names: list, results: dict) -> list:
  base = results.get("system", {}).get("median_s")
  out = []
  for name in names:
    r = results.get(name)
    if r is None or r["status"] != "ok":
      out.append([name, "-", "-", "-", "-", "-", "-", "not installed"])
      continue
    out.append(
      [
        name,
        r["median_s"],
        r["min_s"],
        base / r["median_s"] if base else "-",
        statistics.median(r["minor_faults_per_step"]),
        statistics.median(r["system_s_per_step"]),
        r["info"]["peak_rss_bytes"] / 2**30,
        f"ok ({r['info']['allocator_mapped']} mapped)",
      ]
    )
  return out


def run(args, argv) -> dict:
  from bench import common  # pylint: disable=g-import-not-at-top

  settings = {k: v for k, v in args.flag_values_dict().items() if k != "output"}
  record = common.start_record("malloc", argv, settings)
  record["output"] = args.output
  names = cli.csv_list(args.allocators)
  children = start(names, args)
  try:
    results = measure(children, max(args.warmup, 1), args.repeats)
  finally:
    for child in children.values():
      child.close()
  record["results"] = [{"allocator": n, **r} for n, r in results.items()]
  table = common.markdown_table(
    [
      "allocator",
      "s/step (median)",
      "s/step (min)",
      "x vs system",
      "minor faults/step",
      "system s/step",
      "peak RSS (GiB)",
      "status",
    ],
    rows(names, results),
  )
  return common.finish_record(record, [table])


def main(argv=None):
  argv = sys.argv[1:] if argv is None else list(argv)
  if "--child" in argv:
    return peer_ours.child_main(argv, MallocChild)
  args = cli.parse_flags(FLAGS, argv, __doc__)
  unknown = set(cli.csv_list(args.allocators)) - set(ALLOCATORS)
  if unknown:
    raise ValueError(
      f"--allocators: unknown {sorted(unknown)}; known: {ALLOCATORS}"
    )
  return run(args, argv)


if __name__ == "__main__":
  main()
