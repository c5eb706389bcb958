"""Which CPU speed paths the model's layers take: one value, set by ModelConfig.

Each path computes the same function as the plain one (up to the order of its
sums); the options pick the faster kernels per device. The CPU paths are
those measured fastest on CPU (docs/design/ and bench.optimizations time
each against its alternative by switching these options); on a GPU, where
none of them was measured, the model takes TensorFlow's plain ops
(docs/design/speed-paths-by-device.md).
"""

from collections.abc import Sequence
import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class SpeedPaths:
  """Options of hvrnn_tf/ops, as ModelConfig's fields of the same names.

  Attributes:
    group_norm_xla_gradient: GroupNorm's closed-form gradient runs as one XLA
      computation (group_norm.GroupNorm); False: as TensorFlow ops.
    patch_matmul_max_rows: (forward, input gradient, kernel gradient): a
      ConvLSTM's hidden convolution (shared_kernel.SharedKernel) runs as a
      matmul over k x k patches on maps of at most these many rows (batch x
      height x width; the kernel gradient's over all steps), else as oneDNN's
      convolutions. (0, 0, 0): convolutions everywhere.
  """

  group_norm_xla_gradient: bool = True
  patch_matmul_max_rows: tuple[int, int, int] = (256, 128, 2048)


# The CPU paths: ModelConfig's where no GPU is visible, and those of layers
# built without a config.
DEFAULT = SpeedPaths()
# Every map size takes the convolutions (no patch matmuls).
CONVOLUTIONS_ONLY = (0, 0, 0)
# TensorFlow's plain ops: ModelConfig's where a GPU is visible.
PLAIN = SpeedPaths(
  group_norm_xla_gradient=False, patch_matmul_max_rows=CONVOLUTIONS_ONLY
)


def by_device(gpus: Sequence | None = None) -> SpeedPaths:
  """The paths for a process that sees `gpus` (default: TensorFlow's
  visible GPUs, listed without initialising the runtime)."""
  if gpus is None:
    gpus = tf.config.get_visible_devices("GPU")
  return PLAIN if gpus else DEFAULT
