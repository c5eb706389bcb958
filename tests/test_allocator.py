"""hvrnn_tf.utils.allocator: when and how the binaries restart under TCMalloc."""

import os
import subprocess
import sys

import pytest

from hvrnn_tf.utils import allocator

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE = "/opt/fake/libtcmalloc_minimal.so.4"


@pytest.fixture
def found(monkeypatch):
  monkeypatch.setattr(allocator, "find_tcmalloc", lambda: FAKE)
  monkeypatch.setattr(allocator, "loaded", lambda name="tcmalloc": False)


def test_auto_preloads_tcmalloc_in_front_of_an_existing_preload(found):
  env = allocator.preload_env({"LD_PRELOAD": "/lib/other.so", "HOME": "/h"})
  assert env["LD_PRELOAD"] == f"{FAKE}:/lib/other.so"
  assert env["HOME"] == "/h"
  # The restarted process does not restart again.
  assert allocator.preload_env(env) is None


def test_system_keeps_the_process_tcmalloc_insists(found):
  assert allocator.preload_env({allocator.ENV: "system"}) is None
  assert (
    allocator.preload_env({allocator.ENV: "tcmalloc"})["LD_PRELOAD"] == FAKE
  )


def test_missing_library_is_fine_for_auto_an_error_for_tcmalloc(monkeypatch):
  monkeypatch.setattr(allocator, "find_tcmalloc", lambda: None)
  monkeypatch.setattr(allocator, "loaded", lambda name="tcmalloc": False)
  assert allocator.preload_env({}) is None
  with pytest.raises(ValueError, match="libtcmalloc-minimal4"):
    allocator.preload_env({allocator.ENV: "tcmalloc"})
  with pytest.raises(ValueError, match="HVRNN_TF_MALLOC='jemalloc'"):
    allocator.preload_env({allocator.ENV: "jemalloc"})


def test_child_env_sets_or_strips_tcmalloc(found):
  inherited = {"LD_PRELOAD": f"{FAKE}:/lib/other.so"}
  assert allocator.child_env(inherited, "system")["LD_PRELOAD"] == (
    "/lib/other.so"
  )
  assert "LD_PRELOAD" not in allocator.child_env({"LD_PRELOAD": FAKE}, "system")
  assert allocator.child_env({}, "auto")["LD_PRELOAD"] == FAKE
  assert allocator.child_env(inherited, "tcmalloc")["LD_PRELOAD"] == (
    f"{FAKE}:/lib/other.so"
  )  # not twice


def test_under_tcmalloc_tensorflow_allocates_with_malloc(found):
  name = allocator.TF_SYSTEM_ALLOCATOR_ENV
  assert allocator.child_env({}, "auto")[name] == "1"
  assert allocator.child_env({name: "0"}, "tcmalloc")[name] == "0"  # kept
  assert name not in allocator.child_env({}, "system")


RESTART = """
import os, sys
from hvrnn_tf.utils import allocator
print("start", os.getpid(), allocator.loaded(), flush=True)
allocator.reexec_with_tcmalloc()
print("main", os.getpid(), allocator.loaded(), sys.argv[1:])
"""


@pytest.mark.skipif(
  allocator.find_tcmalloc() is None, reason="libtcmalloc-minimal4 not installed"
)
def test_restarts_the_same_process_with_tcmalloc_loaded():
  env = dict(os.environ, PYTHONPATH=REPO_ROOT)
  env.pop(allocator.ENV, None)
  env.pop("HVRNN_TF_MALLOC_REEXECUTED", None)
  child = subprocess.run(
    [sys.executable, "-c", RESTART, "--flag=1"],
    env=env,
    capture_output=True,
    text=True,
    timeout=60,
    check=True,
  )
  lines = child.stdout.split("\n")
  start, main = lines[0].split(), lines[2].split(maxsplit=3)
  # Printed before the restart (once), then after it: same PID, same argv.
  assert start[0] == "start" and start[2] == "False"
  assert lines[1].startswith("start") and lines[1].split()[2] == "True"
  assert main[:3] == ["main", start[1], "True"] and "--flag=1" in main[3]


def test_a_bad_choice_stops_the_binary_with_a_message():
  env = dict(os.environ, PYTHONPATH=REPO_ROOT, **{allocator.ENV: "jemalloc"})
  env.pop("HVRNN_TF_MALLOC_REEXECUTED", None)
  child = subprocess.run(
    [sys.executable, "-c", RESTART],
    env=env,
    capture_output=True,
    text=True,
    timeout=60,
  )
  assert child.returncode == 1 and "main" not in child.stdout
  assert "HVRNN_TF_MALLOC='jemalloc'" in child.stderr
  assert "Traceback" not in child.stderr


def test_describe_names_the_allocator_and_the_switch(monkeypatch):
  monkeypatch.setattr(allocator, "loaded", lambda name="tcmalloc": True)
  assert allocator.describe().startswith("TCMalloc") and "=system" in (
    allocator.describe()
  )
  monkeypatch.setattr(allocator, "loaded", lambda name="tcmalloc": False)
  assert "system malloc" in allocator.describe()


def test_gpu_visible_reads_the_driver_and_cuda_visible_devices(tmp_path):
  assert not allocator.gpu_visible({}, str(tmp_path / "absent"))
  assert not allocator.gpu_visible({}, str(tmp_path))  # no GPU entries
  (tmp_path / "0000:00:1e.0").mkdir()
  assert allocator.gpu_visible({}, str(tmp_path))
  assert allocator.gpu_visible({"CUDA_VISIBLE_DEVICES": "0"}, str(tmp_path))
  for hidden in ("", "-1"):
    env = {"CUDA_VISIBLE_DEVICES": hidden}
    assert not allocator.gpu_visible(env, str(tmp_path))


def test_auto_keeps_the_system_allocator_where_a_gpu_is_visible(
  found, monkeypatch
):
  monkeypatch.setattr(allocator, "gpu_visible", lambda environ: True)
  assert allocator.preload_env({}) is None
  assert allocator.preload_env({allocator.ENV: "tcmalloc"})["LD_PRELOAD"] == (
    FAKE
  )
