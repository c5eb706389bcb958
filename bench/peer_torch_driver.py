"""The authors' PyTorch model (s2s_big_hier_v4) as a benchmark peer: train step, sampler, memory.

Runs under a Python that has torch (its own virtualenv: torch is no
dependency of this project) and imports the authors' release
(facebookresearch/improved_vrnn) from --release_dir. What it times is the
release's own code, on synthetic uniform frames:

  train   train_fns.train_step: forward with the posterior, L1 + beta * KL
          loss, backward, optimizer step; the optimizer is the one of its
          main.py, torch.optim.Adam(lr, weight_decay=1e-4). --precisions=bf16
          runs the step under torch.autocast(bfloat16).
  sample  train_fns.sample_pass, the sampler of its sample.py: for each of
          the F predicted frames it re-runs the whole model over all c + F
          frames (O(F^2) frame evaluations). The F passes have the same input
          shape, so --sample_iterations=k < F runs the first k of them and the
          time is extrapolated: x F / k per call, x --protocol_samples /
          --sample_batch calls per test sequence (sample.py: batch 1).
  flops   torch.utils.flop_counter over one train step (forward + backward;
          every kernel tap counted, zero padding included).

Standalone (bench/peer_torch_standalone.py), e.g. on a GPU machine; prints
the JSON record, writes --out:
  python3 bench/peer_torch_driver.py --release_dir=runs/improved_vrnn \\
      --device=cuda --batch=16 --precisions=fp32,bf16 --tasks=train,sample
bench.peer starts it with --serve: one JSON command per stdin line, one JSON
reply per stdout line after REPLY_MARKER (`serve`; bench.peer's child for
hvrnn_tf speaks the same protocol). Only the standard library is imported at
module level, so bench.peer imports `serve` without torch. Its flags are
argparse's, not absl's like the benches': the torch virtualenv need not have
absl.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

try:
  from bench import peer_torch_standalone as standalone
except ImportError:  # run as a script: sys.path[0] is bench/
  import peer_torch_standalone as standalone

REPLY_MARKER = "PEER_REPLY "
RELEASE_MODULES = ("models/s2s_big_hier_v4.py", "train_fns.py", "losses.py")
PRECISIONS = ("fp32", "bf16")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RELEASE_DIR = os.environ.get(
  "PEER_RELEASE_DIR", os.path.join(_REPO, "runs", "improved_vrnn")
)
DEFAULT_TORCH_PYTHON = os.environ.get(
  "PEER_TORCH_PYTHON", os.path.join(_REPO, "runs", "peer_venv", "bin", "python")
)


def rss_bytes() -> int:
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
  """This process's peak resident set size (getrusage ru_maxrss)."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak if sys.platform == "darwin" else peak * 1024


def timed(fn, steps: int, sync=lambda result: None) -> list:
  """Seconds of each of `steps` calls of `fn`; sync(result) waits for the work."""
  runs = []
  for _ in range(steps):
    start = time.perf_counter()
    sync(fn())
    runs.append(time.perf_counter() - start)
  return runs


def check_release_dir(release_dir: str) -> None:
  """Raises SystemExit with one line unless `release_dir` holds the release."""
  missing = [
    m
    for m in RELEASE_MODULES
    if not os.path.isfile(os.path.join(release_dir or "", m))
  ]
  if missing:
    raise SystemExit(
      f"--release_dir={release_dir!r} is not a checkout of the authors' "
      f"release (facebookresearch/improved_vrnn): no {missing[0]}"
    )


def torch_version(torch_python: str) -> str:
  """torch's version under `torch_python`; SystemExit with one line if it has none."""
  hint = (
    "give a Python with torch and numpy, e.g. python3 -m venv /tmp/peer_venv && "
    "/tmp/peer_venv/bin/pip install torch numpy"
  )
  try:
    proc = subprocess.run(
      [torch_python, "-c", "import numpy, torch; print(torch.__version__)"],
      capture_output=True,
      text=True,
      timeout=300,
      check=False,
    )
  except OSError as e:
    raise SystemExit(
      f"--torch_python={torch_python!r} cannot be run ({e.strerror}); {hint}"
    ) from e
  if proc.returncode:
    error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    raise SystemExit(
      f"--torch_python={torch_python!r} cannot import torch ({error}); {hint}"
    )
  return proc.stdout.strip()


def peer_problem(release_dir=None, torch_python=None) -> str:
  """Why the release can't be run with these (default) paths; '' when it can."""
  try:
    check_release_dir(release_dir or DEFAULT_RELEASE_DIR)
    torch_version(torch_python or DEFAULT_TORCH_PYTHON)
  except SystemExit as e:
    return str(e)
  return ""


def serve(handlers: dict, stdin=None, stdout=None) -> None:
  """Answers JSON commands {"op": name, ...} until {"op": "exit"} or EOF.

  Each reply is one line, REPLY_MARKER + JSON: the handler's dict, or
  {"error": "..."} when it raised.
  """
  stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
  for line in stdin:
    if not line.strip():
      continue
    command = json.loads(line)
    op = command.pop("op")
    if op == "exit":
      return
    try:
      reply = handlers[op](**command)
    except Exception as e:  # pylint: disable=broad-except
      reply = {"error": f"{type(e).__name__}: {e}".replace("\n", " ")[:400]}
    stdout.write(REPLY_MARKER + json.dumps(reply) + "\n")
    stdout.flush()


class ChildError(RuntimeError):
  """A child answered an error, or exited."""


class Child:
  """The client side of `serve`: a child process, one JSON command in, one reply out."""

  def __init__(self, name, cwd, command, env):
    self.name = name
    self.process = subprocess.Popen(
      command,
      cwd=cwd,
      env=env,
      stdin=subprocess.PIPE,
      stdout=subprocess.PIPE,
      text=True,
    )

  def call(self, op, **kwargs) -> dict:
    try:
      self.process.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
      self.process.stdin.flush()
    except BrokenPipeError:
      pass
    for line in self.process.stdout:
      if line.startswith(REPLY_MARKER):
        reply = json.loads(line[len(REPLY_MARKER) :])
        if "error" in reply:
          raise ChildError(f"{self.name} child, {op}: {reply['error']}")
        return reply
    code = self.process.wait()
    killed = " (killed: out of memory?)" if code == -9 else ""
    raise ChildError(
      f"{self.name} child exited with code {code}{killed} during {op}"
    )

  def close(self):
    if self.process.poll() is None:
      try:
        self.process.stdin.write(json.dumps({"op": "exit"}) + "\n")
        self.process.stdin.close()
        self.process.wait(timeout=60)
      except (BrokenPipeError, subprocess.TimeoutExpired):
        self.process.kill()
        self.process.wait()


class ReleasePeer:
  """The release's s2s_big_hier_v4, its Adam and its train/sample functions."""

  def __init__(
    self,
    release_dir,
    batch,
    context_frames,
    future_frames,
    n_hid=64,
    device="cpu",
    image_size=64,
    seed=0,
  ):
    import torch  # pylint: disable=g-import-not-at-top

    check_release_dir(release_dir)
    sys.path.insert(0, os.path.abspath(release_dir))
    from models import s2s_big_hier_v4  # pylint: disable=g-import-not-at-top
    import train_fns  # pylint: disable=g-import-not-at-top

    self.torch, self.train_fns, self.device = torch, train_fns, device
    torch.manual_seed(seed)
    self.model = s2s_big_hier_v4.Model(3, context_frames, n_hid=n_hid).to(
      device
    )
    # main.py's optimizer and the config keys train_step/losses read.
    self.optimizer = torch.optim.Adam(
      self.model.parameters(), lr=2e-5, weight_decay=1e-4
    )
    self.config = {
      "n_ctx": context_frames,
      "n_steps": future_frames,
      "rec_loss": "l1",
      "beta": 1.0,
      "apex": False,
      "device": device,
    }
    self.frames = torch.rand(
      batch,
      context_frames + future_frames,
      3,
      image_size,
      image_size,
      device=device,
    )
    self.image_size = image_size

  def _timed(self, fn, steps):
    cuda = self.device.startswith("cuda")
    return timed(fn, steps, lambda _: cuda and self.torch.cuda.synchronize())

  def _autocast(self, precision):
    if precision not in PRECISIONS:
      raise ValueError(f"precision {precision!r}; expected one of {PRECISIONS}")
    return self.torch.autocast(
      self.device.split(":")[0],
      dtype=self.torch.bfloat16,
      enabled=precision == "bf16",
    )

  def train(self, steps=1, precision="fp32"):
    """`steps` release train steps; seconds of each."""
    self.model.train()
    loss = []

    def step():
      with self._autocast(precision):
        outputs = self.train_fns.train_step(
          self.model, self.config, self.frames, self.optimizer, 0
        )
      loss.append(float(outputs[6].detach()))

    return {"runs_s": self._timed(step, steps), "loss": loss[-1]}

  def sample(
    self, batch=1, future=28, iterations=None, steps=1, precision="fp32"
  ):
    """The release's sampler over c + `future` frames, `iterations` of its passes."""
    iterations = future if iterations is None else iterations
    if not 1 <= iterations <= future:
      raise ValueError(
        f"iterations={iterations}: must be in [1, future={future}]"
      )
    torch, c = self.torch, self.config["n_ctx"]
    inputs = torch.zeros(
      batch, c + future, 3, self.image_size, self.image_size, device=self.device
    )
    inputs[:, :c] = self.frames[:1, :c]  # sample_step zeroes the future frames
    self.model.eval()

    def call():
      with torch.no_grad(), self._autocast(precision):
        self.train_fns.sample_pass(inputs, self.model, self.config, iterations)

    runs = self._timed(call, steps)
    return {
      "runs_s": runs,
      "iterations": iterations,
      "future": future,
      "batch": batch,
      "extrapolation_factor": future / iterations,
    }

  def flops(self, precision="fp32"):
    """FLOPs of one train step by torch's flop counter (runs the step)."""
    from torch.utils.flop_counter import FlopCounterMode  # pylint: disable=g-import-not-at-top

    counter = FlopCounterMode(display=False)
    start = time.perf_counter()
    with counter:
      loss = self.train(1, precision)["loss"]
    return {
      "flops": int(counter.get_total_flops()),
      "loss": loss,
      "seconds": time.perf_counter() - start,
    }

  def matmul(self, size=2048, precision="fp32", steps=3):
    """FLOP/s of a size^3 matmul (median of `steps` after one warm-up)."""
    torch = self.torch
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.rand(size, size, device=self.device).to(dtype)
    runs = self._timed(lambda: a @ a, steps + 1)[1:]
    flops = 2 * size**3
    return {
      "kind": f"torch matmul {size}^3 {precision}",
      "flops": flops,
      "runs_s": runs,
      "flops_per_s": flops / statistics.median(runs),
    }

  def info(self):
    """Parameter counts (all / given a gradient by the last step), memory, setup."""
    torch = self.torch
    params = list(self.model.parameters())
    result = {
      "parameters": sum(p.numel() for p in params),
      "parameters_with_gradient": sum(
        p.numel() for p in params if p.grad is not None
      ),
      "modules_without_gradient": sorted(
        {
          n.split(".")[0]
          for n, p in self.model.named_parameters()
          if p.grad is None
        }
      ),
      "peak_rss_bytes": peak_rss_bytes(),
      "rss_bytes": rss_bytes(),
      "torch": torch.__version__,
      "torch_threads": torch.get_num_threads(),
      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
      "device": self.device,
    }
    if self.device.startswith("cuda"):
      result.update(
        device_name=torch.cuda.get_device_name(),
        cuda=torch.version.cuda,
        gpu_peak_allocated_bytes=torch.cuda.max_memory_allocated(),
        gpu_peak_reserved_bytes=torch.cuda.max_memory_reserved(),
        tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
        tf32_cudnn=torch.backends.cudnn.allow_tf32,
      )
    return result

  def reset_peak_memory(self):
    if self.device.startswith("cuda"):
      self.torch.cuda.reset_peak_memory_stats()
    return {}

  def handlers(self) -> dict:
    return {
      "train": self.train,
      "sample": self.sample,
      "flops": self.flops,
      "matmul": self.matmul,
      "info": self.info,
      "reset_peak_memory": self.reset_peak_memory,
    }


def parse_args(argv=None):
  """The model's flags (both modes), then the standalone run's."""
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n")[0],
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
  )
  parser.add_argument(
    "--release_dir",
    default=DEFAULT_RELEASE_DIR,
    help="Checkout of facebookresearch/improved_vrnn ($PEER_RELEASE_DIR).",
  )
  parser.add_argument(
    "--serve",
    action="store_true",
    help="Answer bench.peer's commands on stdin instead.",
  )
  parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N.")
  parser.add_argument(
    "--threads",
    type=int,
    default=None,
    help="torch.set_num_threads (default: the cores available).",
  )
  parser.add_argument("--batch", type=int, default=16, help="Train-step batch.")
  parser.add_argument("--context_frames", type=int, default=2)
  parser.add_argument(
    "--future_frames",
    type=int,
    default=10,
    help="Predicted frames per training sequence.",
  )
  parser.add_argument(
    "--n_hid",
    type=int,
    default=64,
    help="Base width (64: the paper's BAIR model; 16: a tiny test model).",
  )
  standalone.add_flags(parser)
  args = parser.parse_args(argv)
  check_release_dir(args.release_dir)
  args.matmul_size = args.matmul_size or (
    8192 if args.device.startswith("cuda") else 2048
  )
  return args


def main(argv=None):
  args = parse_args(argv)
  import torch  # pylint: disable=g-import-not-at-top

  torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
  peer = ReleasePeer(
    args.release_dir,
    args.batch,
    args.context_frames,
    args.future_frames,
    args.n_hid,
    args.device,
  )
  if args.serve:
    serve(peer.handlers())
    return None
  return standalone.run(args, peer)


if __name__ == "__main__":
  main()
