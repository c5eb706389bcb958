"""The locks pin every dependency; the wheel of `pip install .` works.

The fast tests read requirements*.in and the pip-compile locks made from them.
The slow ones build the wheel from a copy of the sources (a build writes
build/ and *.egg-info/ beside pyproject.toml), read it as a zip, then install
it into a folder of its own and train from there with a console script.
"""

import ast
import configparser
import os
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
BINARIES = ("train", "eval", "sample", "export", "convert")
# What a build of the project reads besides hvrnn_tf/ and gin/.
BUILD_INPUTS = (
  "pyproject.toml",
  "README.md",
  "requirements.in",
  "requirements-dev.in",
)
PIN = re.compile(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.!+-]+)")


def _requirements(name):
  """The Requirements of a .in file (comments and blank lines skipped)."""
  lines = (REPO_ROOT / name).read_text().splitlines()
  return [
    Requirement(line) for line in lines if line and not line.startswith("#")
  ]


def _pins(name):
  """{canonical name: version} of a lock whose every requirement is a pin."""
  pins = {}
  for line in (REPO_ROOT / name).read_text().splitlines():
    line = line.strip()
    if not line or line.startswith("#"):
      continue
    match = PIN.fullmatch(line)
    assert match, f"{name}: not name==version: {line!r}"
    pins[canonicalize_name(match[1])] = match[2]
  return pins


@pytest.mark.parametrize(
  "lock, inputs",
  [
    ("requirements.txt", ["requirements.in"]),
    ("requirements-dev.txt", ["requirements.in", "requirements-dev.in"]),
  ],
)
def test_lock_pins_what_its_inputs_ask_for(lock, inputs):
  pins = _pins(lock)
  for req in (r for name in inputs for r in _requirements(name)):
    name = canonicalize_name(req.name)
    assert name in pins, f"{lock} lacks {req.name}"
    assert req.specifier.contains(pins[name]), (lock, str(req), pins[name])
  header = (REPO_ROOT / lock).read_text()[:600]
  command = rf"#\s+pip-compile .*--output-file={re.escape(lock)} .*\.in"
  assert re.search(command, header), f"{lock}: no pip-compile command"


def test_dev_lock_keeps_every_runtime_pin():
  runtime = _pins("requirements.txt")
  dev = _pins("requirements-dev.txt")
  assert {k: dev.get(k) for k in runtime} == runtime


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
  """The wheel `pip wheel .` builds (offline: the virtualenv's setuptools)."""
  source = tmp_path_factory.mktemp("source")
  for name in BUILD_INPUTS:
    shutil.copy(REPO_ROOT / name, source / name)
  skip = shutil.ignore_patterns("__pycache__", "*.pyc")
  for name in ("hvrnn_tf", "gin"):
    shutil.copytree(REPO_ROOT / name, source / name, ignore=skip)
  out = tmp_path_factory.mktemp("wheel")
  subprocess.run(
    [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    + ["--no-index", "-q", "-w", str(out), str(source)],
    check=True,
    timeout=600,
  )
  (path,) = out.glob("hvrnn_tf-*.whl")
  return path


@pytest.mark.slow
def test_wheel_holds_packages_configs_and_scripts(wheel):
  with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    (dist_info,) = {n.split("/")[0] for n in names if ".dist-info/" in n}
    entry_points = configparser.ConfigParser()
    entry_points.read_string(z.read(f"{dist_info}/entry_points.txt").decode())
    sources = {b: z.read(f"hvrnn_tf/{b}.py").decode() for b in BINARIES}
    metadata = z.read(f"{dist_info}/METADATA").decode()
  modules = {
    p.relative_to(REPO_ROOT).as_posix()
    for p in (REPO_ROOT / "hvrnn_tf").rglob("*.py")
  }
  assert {n for n in names if n.endswith(".py")} == modules
  configs = {
    f"hvrnn_tf/configs/{p.relative_to(REPO_ROOT).as_posix()}"
    for p in (REPO_ROOT / "gin").rglob("*.gin")
  }
  assert {n for n in names if n.endswith(".gin")} == configs
  assert dict(entry_points["console_scripts"]) == {
    f"hvrnn-{b}": f"hvrnn_tf.{b}:run" for b in BINARIES
  }
  for binary, source in sources.items():
    functions = {
      node.name
      for node in ast.parse(source).body
      if isinstance(node, ast.FunctionDef)
    }
    assert "run" in functions, binary
  required = {
    canonicalize_name(Requirement(line.split(": ", 1)[1]).name)
    for line in metadata.splitlines()
    if line.startswith("Requires-Dist:") and "extra ==" not in line
  }
  assert required == {
    canonicalize_name(r.name) for r in _requirements("requirements.in")
  }


@pytest.mark.slow
def test_installed_console_script_trains(wheel, tmp_path):
  site = tmp_path / "site"
  subprocess.run(
    [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q"]
    + ["--target", str(site), str(wheel)],
    check=True,
    timeout=300,
  )
  # Only the installed copy of hvrnn_tf is importable, not the checkout's.
  env = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="2")
  gin_dir = subprocess.run(
    [
      sys.executable,
      "-c",
      "from hvrnn_tf.utils import paths; print(paths.GIN_DIR)",
    ],
    cwd=tmp_path,
    env=env,
    capture_output=True,
    text=True,
    check=True,
  ).stdout.strip()
  assert gin_dir == str(site / "hvrnn_tf" / "configs" / "gin")
  workdir = tmp_path / "run"
  result = subprocess.run(
    [str(site / "bin" / "hvrnn-train"), "--gin_file=tiny.gin"]
    + [f"--workdir={workdir}", "--gin_param=train.num_steps=1"],
    cwd=tmp_path,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert (workdir / "checkpoints" / "checkpoint").exists()
  assert (workdir / "operative_config.gin").exists()
