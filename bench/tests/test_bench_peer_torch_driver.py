"""bench.peer_torch_driver: the command protocol, the release check, the release timed at a tiny size.

The release and a Python with torch: PEER_RELEASE_DIR and PEER_TORCH_PYTHON
(default runs/improved_vrnn and runs/peer_venv/bin/python in the repository);
tests that need them skip without them.
"""

import io
import json
import os
import pathlib
import subprocess
import sys

import pytest

from bench import peer_torch_driver as driver

ROOT = pathlib.Path(__file__).resolve().parents[2]
PEER_PROBLEM = driver.peer_problem()
needs_peer = pytest.mark.skipif(
  bool(PEER_PROBLEM), reason=PEER_PROBLEM or "runnable"
)


def test_serve_answers_each_command_and_reports_errors():
  def fail():
    raise ValueError("bad\nthing")

  stdin = io.StringIO(
    '{"op": "add", "a": 1, "b": 2}\n\n{"op": "fail"}\n'
    '{"op": "exit"}\n{"op": "add", "a": 5, "b": 5}\n'
  )
  stdout = io.StringIO()
  driver.serve(
    {"add": lambda a, b: {"sum": a + b}, "fail": fail}, stdin, stdout
  )
  lines = stdout.getvalue().splitlines()
  assert all(line.startswith(driver.REPLY_MARKER) for line in lines)
  replies = [json.loads(line[len(driver.REPLY_MARKER) :]) for line in lines]
  assert replies == [
    {"sum": 3},
    {"error": "ValueError: bad thing"},
  ]  # nothing after exit


def test_child_round_trip_errors_and_exit(tmp_path):
  server = (
    "import sys; from bench import peer_torch_driver as d; print('noise');"
    "d.serve({'echo': lambda **k: k, 'div': lambda a, b: {'q': a / b},"
    " 'die': lambda: sys.exit(3)})"
  )
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  child = driver.Child(
    "test", str(tmp_path), [sys.executable, "-c", server], env
  )
  assert child.call("echo", x=[1, 2]) == {"x": [1, 2]}
  with pytest.raises(
    driver.ChildError, match="test child, div: ZeroDivisionError"
  ):
    child.call("div", a=1, b=0)
  assert child.call("div", a=1, b=4) == {
    "q": 0.25
  }  # still serving after an error
  with pytest.raises(driver.ChildError, match="exited with code 3 during die"):
    child.call("die")
  child.close()


def test_torch_python_without_torch_is_one_line(tmp_path):
  fake = tmp_path / "python"
  fake.write_text(
    "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n"
  )
  fake.chmod(0o755)
  with pytest.raises(
    SystemExit,
    match=r"cannot import torch \(ModuleNotFoundError: No module "
    r"named 'torch'\); give a Python with torch",
  ):
    driver.torch_version(str(fake))
  with pytest.raises(SystemExit, match="cannot be run"):
    driver.torch_version(str(tmp_path / "missing"))
  release = tmp_path / "release"
  assert "not a checkout" in driver.peer_problem(str(release), str(fake))
  for module in driver.RELEASE_MODULES:
    (release / module).parent.mkdir(parents=True, exist_ok=True)
    (release / module).touch()
  assert "cannot import torch" in driver.peer_problem(str(release), str(fake))


def test_check_release_dir_names_the_missing_file(tmp_path):
  with pytest.raises(
    SystemExit,
    match=r"not a checkout of the authors' release.*"
    r"no models/s2s_big_hier_v4.py",
  ):
    driver.check_release_dir(str(tmp_path))
  with pytest.raises(SystemExit, match="--release_dir=None"):
    driver.check_release_dir(None)


@needs_peer
def test_standalone_times_the_release_at_a_tiny_size(tmp_path):
  out = tmp_path / "peer.json"
  subprocess.run(
    [
      driver.DEFAULT_TORCH_PYTHON,
      str(ROOT / "bench" / "peer_torch_driver.py"),
      f"--release_dir={driver.DEFAULT_RELEASE_DIR}",
      "--batch=1",
      "--future_frames=1",
      "--n_hid=16",
      "--repeats=2",
      "--sample_future=3",
      "--sample_iterations=1",
      "--protocol_samples=4",
      "--sample_batch=2",
      "--matmul_size=128",
      f"--out={out}",
    ],
    check=True,
    capture_output=True,
    env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"),
  )
  record = json.loads(out.read_text())
  info = record["info"]
  # det_init_net is built but never called: no gradient.
  assert info["parameters"] - info["parameters_with_gradient"] > 0
  assert info["modules_without_gradient"] == ["det_init_net"]
  train, sample = record["results"]
  assert (
    train["task"] == "train"
    and len(train["runs_s"]) == 2
    and train["median_s"] > 0
  )
  assert sample["iterations_timed"] == 1
  # 1 of 3 passes timed, 4 samples in calls of 2: x3 x2.
  assert sample["seconds_per_test_sequence"] == pytest.approx(
    sample["median_s"] * 3 * 2
  )
  assert record["matmul_peak"][0]["flops_per_s"] > 0
