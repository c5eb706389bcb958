"""Runs the binaries under TCMalloc when the machine has it (faster on CPU).

With glibc's malloc, every large tensor of a TensorFlow CPU step is a fresh
mmap whose pages fault in and are returned on free: ~560,000 page faults and
~1 s of system time per train step of the paper's BAIR model on 2 cores.
Under TCMalloc, which keeps freed memory for reuse, the step ran 1.08x faster
(docs/design/tcmalloc.md). An allocator is chosen when a process
starts, so `reexec_with_tcmalloc` restarts the binary (same PID, argv and
environment) with LD_PRELOAD set.

Under TCMalloc it also sets TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1 (unless the
environment sets it): TensorFlow's oneDNN CPU allocator then hands large
tensors to malloc (TCMalloc) instead of keeping its own best-fit pool, whose
slack added ~0.7 GiB to the peak RSS of the paper's model at batch 2.

HVRNN_TF_MALLOC=system keeps the system allocator; =tcmalloc insists (an
error when the library is missing); unset or =auto uses TCMalloc if found and
no NVIDIA GPU is visible: like the ops' speed paths, TCMalloc was measured on
CPU only, so a GPU process keeps the system allocator unless told otherwise
(docs/design/speed-paths-by-device.md).
Install it with `apt-get install libtcmalloc-minimal4` (Debian/Ubuntu).
"""

import glob
import os
import sys

ENV = "HVRNN_TF_MALLOC"
# TensorFlow's switch from its oneDNN allocator's pool to malloc for all sizes.
TF_SYSTEM_ALLOCATOR_ENV = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"
# Set in the restarted process, so that it does not restart again.
MARKER = "HVRNN_TF_MALLOC_REEXECUTED"
# One entry per GPU the NVIDIA driver runs (read without importing TF).
NVIDIA_GPUS_DIR = "/proc/driver/nvidia/gpus"
_PATTERNS = (
  "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
  "/usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4",
  "/usr/lib64/libtcmalloc_minimal.so.4",
  "/usr/lib/libtcmalloc_minimal.so.4",
  "/usr/local/lib/libtcmalloc_minimal.so.4",
)


def find_tcmalloc() -> str | None:
  """Path of libtcmalloc_minimal.so.4 on this machine, or None."""
  for pattern in _PATTERNS:
    found = sorted(glob.glob(pattern))
    if found:
      return found[0]
  return None


def loaded(library_name: str = "tcmalloc") -> bool:
  """Whether a library whose path contains `library_name` is mapped in this process."""
  try:
    with open("/proc/self/maps", encoding="utf-8") as maps:
      return any(library_name in line for line in maps)
  except OSError:
    return False


def _choice(value) -> str:
  choice = value or "auto"
  if choice not in ("auto", "tcmalloc", "system"):
    raise ValueError(f"{ENV}={choice!r}: use auto, tcmalloc or system")
  return choice


def child_env(environ: dict, choice: str) -> dict:
  """`environ` for a new process that should run with `choice`'s allocator.

  choice: auto (TCMalloc if found), tcmalloc (ValueError if not found) or
  system (any TCMalloc in LD_PRELOAD removed). Under TCMalloc, TensorFlow's
  tensors go to it too (TF_SYSTEM_ALLOCATOR_ENV=1, unless `environ` sets it).
  """
  choice = _choice(choice)
  environ = dict(environ)
  others = [
    p
    for p in environ.pop("LD_PRELOAD", "").split(":")
    if p and "tcmalloc" not in p
  ]
  library = None if choice == "system" else find_tcmalloc()
  if library is None and choice == "tcmalloc":
    raise ValueError(
      f"{ENV}=tcmalloc but libtcmalloc_minimal.so.4 was not found "
      f"(looked for {', '.join(_PATTERNS)}); "
      "apt-get install libtcmalloc-minimal4"
    )
  preload = ([library] if library else []) + others
  if preload:
    environ["LD_PRELOAD"] = ":".join(preload)
  if library:
    # TCMalloc reports every allocation over 1 GiB on stderr by default.
    environ.setdefault("TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD", str(2**40))
    environ.setdefault(TF_SYSTEM_ALLOCATOR_ENV, "1")
  return environ


def gpu_visible(environ: dict, gpus_dir: str = NVIDIA_GPUS_DIR) -> bool:
  """Whether the NVIDIA driver runs a GPU that CUDA_VISIBLE_DEVICES leaves
  visible to this process."""
  if environ.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1"):
    return False
  try:
    return bool(os.listdir(gpus_dir))
  except OSError:
    return False


def preload_env(environ=None) -> dict | None:
  """The environment to restart this process with, or None to go on as it is.

  Raises ValueError for an unknown HVRNN_TF_MALLOC, or =tcmalloc without
  the library.
  """
  environ = dict(os.environ if environ is None else environ)
  choice = _choice(environ.get(ENV))
  if choice == "system" or environ.get(MARKER) or loaded():
    return None
  if choice == "auto" and gpu_visible(environ):
    return None
  restarted = child_env(environ, choice)
  if restarted.get("LD_PRELOAD") == environ.get("LD_PRELOAD"):
    return None  # auto, and no TCMalloc here
  restarted[MARKER] = "1"
  return restarted


def reexec_with_tcmalloc() -> None:
  """Restarts this binary with TCMalloc preloaded, when preload_env says so.

  Call from a binary's `if __name__ == "__main__":` block before TensorFlow
  is imported (a restart repeats every import). Does not return when it
  restarts (os.execve keeps the PID, so signals and process managers see the
  same process); exits with a message for a bad HVRNN_TF_MALLOC.
  """
  try:
    environ = preload_env()
  except ValueError as e:
    sys.exit(f"error: {e}")
  if environ is None:
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, list(sys.orig_argv), environ)


def describe() -> str:
  """One line for a binary's log: which allocator this process runs on."""
  if loaded():
    return f"TCMalloc ({ENV}=system to use glibc's malloc)"
  return f"the system malloc ({ENV}=auto uses TCMalloc when installed)"
