"""A small, full or read-only file system for the tests of failed writes."""

import contextlib
import subprocess

import pytest


@pytest.fixture
def small_disk(tmp_path):
  """A 24 MB tmpfs (needs root, as does the read-only bind mount of
  read_only); the test is skipped where it cannot be mounted."""
  mount_point = tmp_path / "disk"
  mount_point.mkdir()
  result = subprocess.run(
    ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount_point)],
    capture_output=True,
    text=True,
    check=False,
  )
  if result.returncode:
    pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr}")
  yield mount_point
  subprocess.run(["umount", "-R", "-l", str(mount_point)], check=False)


def fill(directory):
  """Writes directory/filler until the file system is full."""
  with open(directory / "filler", "wb", buffering=0) as f:
    for chunk in (1 << 20, 4096):
      with contextlib.suppress(OSError):
        while True:
          f.write(b"\0" * chunk)


def read_only(directory):
  """Makes `directory` read-only (a bind mount onto itself)."""
  subprocess.run(
    f"mount --bind {directory} {directory} && "
    f"mount -o remount,bind,ro {directory}",
    shell=True,
    check=True,
  )
