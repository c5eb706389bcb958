"""Which CPU speed paths the model's layers take: one value, set by ModelConfig.

Each path computes the same function as the plain one (up to the order of its
sums); the options pick the faster kernels per device. Their defaults here
are those measured fastest on CPU (docs/design/ and bench.optimizations time
each against its alternative by switching these options).
"""

import dataclasses


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


# The defaults (ModelConfig's, and those of layers built without a config).
DEFAULT = SpeedPaths()
# Every map size takes the convolutions (no patch matmuls).
CONVOLUTIONS_ONLY = (0, 0, 0)
