"""The settings of `hvrnn_tf.export`: a gin-configurable, validated dataclass,
bound as `export.export_dir = 'exports/bair'` and `export.version = 3`."""

import dataclasses
import os

import gin
from hvrnn_tf.utils import validation


@gin.configurable("export", module="export")
@dataclasses.dataclass(frozen=True)
class ExportConfig:
  """Where the SavedModel goes: export_dir/<version>/.

  export_dir: base directory of the versions (default WORKDIR/export).
  version: the version number (default: the checkpoint's step).
  """

  export_dir: str | None = None
  version: int | None = None

  def __post_init__(self):
    """Raises ValueError naming the `export.*` setting that is wrong."""
    validation.check_types(
      "export",
      {"export_dir": self.export_dir, "version": self.version},
      ExportConfig,
    )
    if self.version is not None:
      validation.check_range("export", "version", self.version, minimum=0)
    if self.export_dir == "":  # pylint: disable=g-explicit-bool-comparison
      raise ValueError("export.export_dir is empty (unset it for the default)")

  def directory(self, workdir: str) -> str:
    """The base directory of the versions for a run in `workdir`."""
    return self.export_dir or os.path.join(workdir, "export")
