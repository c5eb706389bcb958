"""Soak test: a bounded training run killed at random moments and resumed.

  python -m bench.soak --minutes=20 --kills=5 --output=/tmp/soak.json

Runs the training binary (gin/tiny.gin, the tiny SM-MNIST model of the
tests, unless --gin_file/--gin_param say otherwise) for --minutes, stopping it --kills
times at random moments and restarting it each time. The stops cycle through
  SIGKILL at a random moment,
  SIGKILL inside a checkpoint write (as soon as the write that follows the
    binary's "Writing checkpoint N" has files on disk),
  SIGINT (which must save a checkpoint and exit with status 130);
the last stop is a SIGTERM at the deadline (checkpoint, status 143). After every stop it checks that
the latest checkpoint is complete (every tensor reads back, checksummed, and
its step is its number), that the restarted run resumed exactly there, and
how many steps the stop lost. At the end it loads the model with
checkpointing.restore_model, samples from it (finite), and checks that the
TensorBoard loss curve covers every step once with finite values.

Prints a JSON summary (and writes it to --output); exit status 1 if a check
failed. Not part of the test suite (bench/tests/test_bench_soak.py, marked
slow, runs a short one).
"""

import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from absl import flags

from bench import cli

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# gin/tiny.gin (the model of the tests) with schedules that keep moving.
TINY_GIN = os.path.join(REPO_ROOT, "gin", "tiny.gin")
SCHEDULES = [
  "train.learning_rate = 2.5e-4",
  "train.lr_reference_batch = 1",
  "train.steps_per_epoch = 50",
  "train.lr_warmup_epochs = 4",
  "train.beta_warmup_epochs = 2",
  "train.image_summary_every = 0",
]
FLAGS = flags.FlagValues()
flags.DEFINE_float("minutes", 20, "Length of the soak.", flag_values=FLAGS)
flags.DEFINE_integer(
  "kills", 5, "Random stops before the last.", flag_values=FLAGS
)
flags.DEFINE_integer(
  "checkpoint_every",
  100000,
  "Steps (the time-based interval usually decides).",
  flag_values=FLAGS,
)
flags.DEFINE_float("checkpoint_secs", 60, "Seconds.", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Of the stop times.", flag_values=FLAGS)
flags.DEFINE_float(
  "exit_timeout",
  120,
  "Seconds a run may take to exit after SIGINT/TERM.",
  flag_values=FLAGS,
)
flags.DEFINE_string(
  "workdir", None, "Default: a fresh temporary folder.", flag_values=FLAGS
)
flags.DEFINE_bool("fresh", False, "Delete --workdir first.", flag_values=FLAGS)
flags.DEFINE_multi_string("gin_file", [], "Gin files.", flag_values=FLAGS)
flags.DEFINE_multi_string("gin_param", [], "Gin bindings.", flag_values=FLAGS)
flags.DEFINE_string("output", None, "JSON summary file.", flag_values=FLAGS)

STOPS = ("sigkill", "sigkill_in_checkpoint_write", "sigint")
SIGNALS = {
  "sigkill": signal.SIGKILL,
  "sigkill_in_checkpoint_write": signal.SIGKILL,
  "sigint": signal.SIGINT,
  "sigterm": signal.SIGTERM,
}


class Run:
  """One training process; its stderr is read line by line in the background."""

  def __init__(self, args, workdir, index):
    params = [] if args.gin_file else list(SCHEDULES)
    params += [
      "train.num_steps = 100000000",
      "train.log_every = 1",
      "train.summary_every = 1",
      f"train.checkpoint_every = {args.checkpoint_every}",
      f"train.checkpoint_every_secs = {args.checkpoint_secs}",
      *args.gin_param,
    ]
    command = [sys.executable, "-m", "hvrnn_tf.train", f"--workdir={workdir}"]
    command += [f"--gin_file={f}" for f in args.gin_file or [TINY_GIN]]
    command += [f"--gin_param={p}" for p in params]
    self.process = subprocess.Popen(
      command,
      cwd=REPO_ROOT,
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
      text=True,
      env={**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    os.makedirs(os.path.join(workdir, "soak_logs"), exist_ok=True)
    self.log_file = open(  # noqa: SIM115 -- open for the process's lifetime, closed in stop()
      os.path.join(workdir, "soak_logs", f"run_{index}.log"), "w"
    )
    self.lines, self.log = queue.Queue(), []
    self.last_step, self.resumed_at = None, None
    self.write_started, self.write_seconds = None, []
    self.reader = threading.Thread(target=self._read, daemon=True)
    self.reader.start()

  def _read(self):
    for line in self.process.stderr:
      self.log.append(line)
      self.log_file.write(line)
      self.log_file.flush()
      match = re.search(r"\] step (\d+)/", line)
      if match:
        self.last_step = int(match.group(1))
      match = re.search(r"Resumed from \S+ at step (\d+)", line)
      if match:
        self.resumed_at = int(match.group(1))
      if "Writing checkpoint" in line:
        self.write_started = time.time()
      elif "Saved checkpoint" in line and self.write_started:
        self.write_seconds.append(time.time() - self.write_started)
      self.lines.put(line)
    self.lines.put(None)

  def drain(self):
    """Forgets the lines read so far (wait_for then sees only new ones)."""
    while True:
      try:
        self.lines.get_nowait()
      except queue.Empty:
        return

  def wait_for(self, pattern, deadline):
    while time.time() < deadline:
      try:
        line = self.lines.get(timeout=0.5)
      except queue.Empty:
        continue
      if line is None:
        return None
      if re.search(pattern, line):
        return line
    return None

  def stop(self, signum, timeout):
    """Sends `signum`; (exit status, seconds to exit; None: SIGKILLed after
    `timeout` seconds)."""
    sent = time.time()
    if self.process.poll() is None:
      self.process.send_signal(signum)
    try:
      returncode = self.process.wait(timeout=timeout)
      seconds = time.time() - sent
    except subprocess.TimeoutExpired:
      self.process.kill()
      returncode, seconds = self.process.wait(), None
    self.reader.join(timeout=30)  # every line it wrote is parsed
    self.log_file.close()
    return returncode, seconds

  def tail(self):
    return "".join(self.log[-30:])


def check_latest(checkpoint_dir):
  """(step of the latest checkpoint or None, problem or None)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from hvrnn_tf.training import checkpointing  # pylint: disable=g-import-not-at-top

  latest = tf.train.latest_checkpoint(checkpoint_dir)
  if latest is None:
    return None, None
  try:
    reader = tf.train.load_checkpoint(latest)
    for name, dtype in reader.get_variable_to_dtype_map().items():
      if dtype != tf.variant:  # the data iterator's state: not readable here
        reader.get_tensor(name)  # reads and checksums every tensor
    step = int(reader.get_tensor(checkpointing.STEP_KEY))
    objects = checkpointing.saved_objects(latest)
  except Exception as e:  # pylint: disable=broad-except
    return None, f"latest checkpoint {latest} is unreadable: {e}"
  number = checkpointing.checkpoint_number(latest)
  if step != number:
    return step, f"{latest} holds step {step}"
  missing = {"model", "optimizer", "step", "data"} - objects
  if missing:
    return step, f"{latest} lacks {sorted(missing)}"
  return step, None


def listdir(directory):
  try:
    return set(os.listdir(directory))
  except FileNotFoundError:
    return set()


def leftovers(checkpoint_dir):
  from hvrnn_tf.training import checkpointing  # pylint: disable=g-import-not-at-top

  registered = {
    os.path.basename(p)
    for p in checkpointing.registered_checkpoints(checkpoint_dir)
  }
  return sorted(
    n
    for n in os.listdir(checkpoint_dir)
    if n != "checkpoint" and n.split(".")[0] not in registered
  )


def final_checks(workdir, final_step):
  """Problems with the trained model and the loss curve (empty: none)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from hvrnn_tf.training import checkpointing  # pylint: disable=g-import-not-at-top

  problems, report = [], {}
  model, step = checkpointing.restore_model(workdir)
  if step != final_step:
    problems.append(f"restore_model gave step {step}, expected {final_step}")
  c = model.config.context_frames
  context = tf.random.stateless_uniform(
    [
      1,
      c,
      model.config.image_size,
      model.config.image_size,
      model.config.channels,
    ],
    seed=[0, 0],
  )
  samples = model.sample(
    context, model.config.future_frames, 2, tf.constant([0, 1])
  )
  if not np.isfinite(samples.numpy()).all():
    problems.append("samples of the final model are not finite")
  # TensorBoard's reader drops the events a kill made obsolete (a resumed
  # run writes the lost steps again).
  accumulator = event_accumulator.EventAccumulator(
    os.path.join(workdir, "train"), size_guidance={"tensors": 0}
  ).Reload()
  losses = {
    e.step: float(tf.make_ndarray(e.tensor_proto))
    for e in accumulator.Tensors("loss")
  }
  missing = sorted(set(range(1, final_step + 1)) - set(losses))
  if missing:
    problems.append(
      f"loss curve misses {len(missing)} steps, e.g. {missing[:5]}"
    )
  if not all(np.isfinite(v) for v in losses.values()):
    problems.append("non-finite losses in the curve")
  # The first and last (up to) 20 steps, never overlapping: a short run on a
  # slow machine may log only a few steps.
  window = min(20, len(losses) // 2)
  values = [losses[s] for s in sorted(losses)]
  report.update(
    loss_window_steps=window,
    loss_first_mean=float(np.mean(values[:window])) if window else None,
    loss_last_mean=float(np.mean(values[-window:])) if window else None,
    loss_curve_steps=len(losses),
  )
  return problems, report


def _wait_for_stop(run, index, kill_time, deadline, expected_resume, problems):
  """Waits until `kill_time` once the run resumed (at `expected_resume`, else
  a problem) and trained; False if it never trained."""
  if run.wait_for(r"\] step \d+/", deadline + 600) is None:
    problems.append(f"run {index} never trained:\n{run.tail()}")
    return False
  if run.resumed_at != (expected_resume or None):
    problems.append(
      f"run {index} resumed at {run.resumed_at}, expected {expected_resume}"
    )
  while time.time() < kill_time and run.process.poll() is None:
    time.sleep(0.2)
  if run.process.poll() is not None:
    problems.append(
      f"run {index} exited on its own with status "
      f"{run.process.returncode}:\n{run.tail()}"
    )
  return True


def _wait_for_checkpoint_write(run, checkpoint_dir, rng):
  """Until the next write has put files on disk (its temporary folder or its
  not yet registered files); a random moment of it otherwise."""
  window = min(run.write_seconds[1:] or run.write_seconds or [0.05])
  run.drain()
  run.wait_for(r"Writing checkpoint", time.time() + 600)
  started = time.time()
  before = listdir(checkpoint_dir)
  while time.time() - started < 2 * window + 1:
    if listdir(checkpoint_dir) - before:
      return
    time.sleep(0.0005)
  time.sleep(rng.uniform(0, 0.9 * window))


def _stop(run, index, kind, args, checkpoint_dir, problems) -> dict:
  """Stops the run by `kind`; checks its exit and checkpoint; the stop's record."""
  graceful = kind in ("sigint", "sigterm")
  returncode, exit_seconds = run.stop(SIGNALS[kind], args.exit_timeout)
  step_at_stop = run.last_step or 0
  if graceful and exit_seconds is None:
    problems.append(
      f"run {index} had not exited {args.exit_timeout} s "
      f"after {kind}:\n{run.tail()}"
    )
  elif graceful and returncode != 128 + SIGNALS[kind]:
    problems.append(f"{kind} gave exit status {returncode}:\n{run.tail()}")
  saved_step, problem = check_latest(checkpoint_dir)
  if problem:
    problems.append(problem)
  partial = leftovers(checkpoint_dir) if os.path.isdir(checkpoint_dir) else []
  if graceful and saved_step != step_at_stop:
    problems.append(f"{kind} at step {step_at_stop} saved step {saved_step}")
  return dict(
    step=step_at_stop,
    checkpoint_step=saved_step,
    steps_lost=step_at_stop - (saved_step or 0),
    partial_files=partial,
    exit_status=returncode,
    exit_seconds=exit_seconds and round(exit_seconds, 1),
  )


def _result(args, workdir, checkpoint_dir, stops, problems, start) -> dict:
  """The soak's summary, with the final run's checks once no stop failed."""
  result = dict(
    minutes=args.minutes,
    seed=args.seed,
    workdir=workdir,
    stops=stops,
    kills_inside_checkpoint_writes=sum(bool(s["partial_files"]) for s in stops),
    max_steps_lost=max((s["steps_lost"] for s in stops), default=0),
  )
  if not problems and stops:
    if leftovers(checkpoint_dir):
      problems.append(f"leftover files: {leftovers(checkpoint_dir)}")
    final_problems, report = final_checks(workdir, stops[-1]["checkpoint_step"])
    problems += final_problems
    result.update(report, final_step=stops[-1]["checkpoint_step"])
  result.update(
    problems=problems,
    ok=not problems,
    wall_minutes=round((time.time() - start) / 60, 1),
  )
  return result


def soak(args):
  rng = random.Random(args.seed)
  workdir = args.workdir or tempfile.mkdtemp(prefix="soak_")
  if args.fresh:
    shutil.rmtree(workdir, ignore_errors=True)
  checkpoint_dir = os.path.join(workdir, "checkpoints")
  start = time.time()
  deadline = start + args.minutes * 60
  # Stops at random moments, not too close to each other or the end.
  kill_times = sorted(
    rng.uniform(0.1, 0.9) * args.minutes * 60 + start for _ in range(args.kills)
  )
  stops, problems = [], []
  run = Run(args, workdir, 0)
  expected_resume = 0
  for index, kill_time in enumerate(kill_times + [deadline]):
    final = index == len(kill_times)
    kind = "sigterm" if final else STOPS[index % len(STOPS)]
    # The run must have resumed where it should before it may be stopped.
    if not _wait_for_stop(
      run, index, kill_time, deadline, expected_resume, problems
    ):
      break
    if kind == "sigkill_in_checkpoint_write":
      _wait_for_checkpoint_write(run, checkpoint_dir, rng)
    stop = _stop(run, index, kind, args, checkpoint_dir, problems)
    stops.append({"kind": kind, "seconds": round(time.time() - start), **stop})
    print(json.dumps(stops[-1]), flush=True)
    expected_resume = stop["checkpoint_step"] or 0
    if final:
      break
    run = Run(args, workdir, index + 1)
  return _result(args, workdir, checkpoint_dir, stops, problems, start)


def main(argv=None):
  args = cli.parse_flags(FLAGS, argv, __doc__)
  result = soak(args)
  text = json.dumps(result, indent=1)
  print(text)
  if args.output:
    with open(args.output, "w") as f:
      f.write(text + "\n")
  return 0 if result["ok"] else 1


if __name__ == "__main__":
  sys.exit(main())
