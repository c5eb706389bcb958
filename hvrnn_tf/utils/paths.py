"""Where the project's files are, and how user-given paths are resolved.

Paths on the command line mean what they mean in the shell they were typed
in: relative to the current directory (under `bazel run`, the py_cli wrapper
changes to the directory bazel was called from first). Gin files are also
looked up in the project's `gin/` folder and the folder that holds it, so
`--gin_file=bair.gin` and `include 'gin/bair.gin'` work from any directory.
That folder is the checkout's root, or in an installed copy (`pip install .`)
hvrnn_tf/configs/, where pyproject.toml puts the copy of gin/.
"""

import logging
import os

import gin

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_INSTALLED_CONFIG_ROOT = os.path.join(_PACKAGE_DIR, "configs")
# The folder that holds gin/: the installed copy's when there is one (the
# folder above an installed package is site-packages), else the checkout.
CONFIG_ROOT = (
  _INSTALLED_CONFIG_ROOT
  if os.path.isdir(os.path.join(_INSTALLED_CONFIG_ROOT, "gin"))
  else os.path.dirname(_PACKAGE_DIR)
)
GIN_DIR = os.path.join(CONFIG_ROOT, "gin")

# Gin bindings that name files: made absolute before a run records them, so
# that its operative_config.gin works from any directory (eval, sample).
PATH_BINDINGS = (
  "data.make_dataset.file_pattern",
  "data.make_dataset.mnist_dir",
)


def _not_gin_path_noise(record: logging.LogRecord) -> bool:
  # gin's package-resource reader logs "Path not found" (as an error) for
  # every search path it tries before the one that has the file.
  return record.msg != "Path not found: %s"


def register_gin_search_paths() -> None:
  """Lets gin find config files (and `include`s) in GIN_DIR and CONFIG_ROOT.

  gin tries the path as given first, so files relative to the current
  directory win. Idempotent.
  """
  if _not_gin_path_noise in logging.getLogger().filters:
    return
  gin.add_config_file_search_path(GIN_DIR)
  gin.add_config_file_search_path(CONFIG_ROOT)
  logging.getLogger().addFilter(_not_gin_path_noise)


def absolute_path_bindings() -> None:
  """Rebinds the PATH_BINDINGS that hold relative paths to absolute ones."""
  for name in PATH_BINDINGS:
    try:
      value = gin.query_parameter(name)
    except ValueError:  # not bound
      continue
    if isinstance(value, str) and value:
      gin.bind_parameter(name, absolute(value))


def absolute(path: str) -> str:
  """`path` made absolute; URLs (gs://, file://, ram://, ...) are left alone."""
  if "://" in path:
    return path
  return os.path.abspath(os.path.expanduser(path))
