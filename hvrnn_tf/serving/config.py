"""The settings of `hvrnn_tf.export`: a gin-configurable, validated dataclass,
bound as `export.export_dir = 'exports/bair'` and `export.version = 3`."""

import dataclasses
import os

import gin
from hvrnn_tf.utils import validation


@gin.configurable("export", module="export")
@dataclasses.dataclass(frozen=True)
class ExportConfig:
  """Where the SavedModel goes: export_dir/<version>/, and what it serves.

  export_dir: base directory of the versions (default WORKDIR/export).
  version: the version number (default: the checkpoint's step).
  num_future: frames each request generates (default: the model's training
    value, model.ModelConfig.future_frames).
  num_samples: futures per context sequence. Both are fixed at export, so
    that every signature input has a batch dimension
    (docs/design/serving-signature.md).
  """

  export_dir: str | None = None
  version: int | None = None
  num_future: int | None = None
  num_samples: int = 1

  def __post_init__(self):
    """Raises ValueError naming the `export.*` setting that is wrong."""
    values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
    validation.check_types("export", values, ExportConfig)
    for name in ("version", "num_future", "num_samples"):
      if values[name] is not None:
        validation.check_range(
          "export", name, values[name], minimum=0 if name == "version" else 1
        )
    if self.export_dir == "":  # pylint: disable=g-explicit-bool-comparison
      raise ValueError("export.export_dir is empty (unset it for the default)")

  def directory(self, workdir: str) -> str:
    """The base directory of the versions for a run in `workdir`."""
    return self.export_dir or os.path.join(workdir, "export")
