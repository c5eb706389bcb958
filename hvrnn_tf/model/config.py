"""The model's configuration: one gin-configurable, validated dataclass."""

import dataclasses

import gin
from hvrnn_tf.model import encoder
from hvrnn_tf.model import initialization
from hvrnn_tf.ops import speed_paths

RECONSTRUCTION_LOSSES = ("l1", "l2", "bernoulli")


class ConfigError(ValueError):
  """A configuration value is invalid; the message names the parameter."""


@gin.configurable(module="model")
@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Every architectural choice of the hierarchical VRNN.

  Defaults: the model the paper measured on BAIR, the authors'
  s2s_big_hier_v4 with latents [1, 8, 32] (224,443,715 parameters).

  Attributes:
    image_size: frame height = width S (a power of two, >= 8).
    channels: colour channels C of the frames.
    context_frames: c, the number of conditioning frames.
    future_frames: number of predicted frames during training.
    n_hid: base width; encoder widths are n_hid * channel_multipliers.
    channel_multipliers: one per encoder resolution (S, S/2, ..., 4, 1);
      the decoder stage at a resolution has the encoder's width there.
    latent_resolutions: spatial size of each latent level, top (coarsest) first.
    latent_channels: channels of each latent level (the release: the
      encoder's width at the level's resolution, 512, 512, 128).
    dense: connect every latent level to all levels above it (paper); when
      False a level sees only the level directly above it.
    decoder_convlstm_layers: the first k decoder stages (1x1, 4x4, 8x8, ...)
      are ConvLSTMs, the rest 3x3 DcConv blocks (paper ablation: 1, 3, 6;
      all stages, 6 at 64x64 and 7 at 128x128, in the paper's models).
    decoder_width_multiplier: scales decoder widths ("wider" ablation).
    decoder_skips: not in the paper (False there): every decoder stage after
      the 1x1 one also takes x_{t-1}'s encoder features at its resolution,
      skip connections in the spirit of SVG's (which skips from the last
      context frame), so that the decoder can carry the frame's appearance
      forward instead of redrawing it from the latents (the quick default).
    reconstruction_loss: "l1" (authors' default), "l2" or "bernoulli".
    kernel_size: ConvLSTM kernel size.
    initialization: "pytorch" (the release's, PyTorch's defaults: every
      convolution's kernel and bias uniform within +-1/sqrt(fan_in); the
      paper's results were trained from it) or "keras" (Glorot-uniform
      kernels, zero biases). See hvrnn_tf/model/initialization.py.
    release_group_counts: every GroupNorm gets the release's fixed group
      count (16 in ConvLSTMs and latent branches, 4 in ResBlocks and DcConvs)
      at any width, as the release does; False keeps at least 4 channels per
      group (layers.num_groups). The two agree at the paper's width; at
      reduced widths only True computes what the release computes (n_hid a
      multiple of 16). hvrnn_tf.convert sets it.
    group_norm_xla_gradient, patch_matmul_max_rows: which kernels compute
      GroupNorm's gradient and a ConvLSTM's hidden convolutions, the same
      function either way (hvrnn_tf/ops/speed_paths.py; no weights depend
      on them, checkpoints restore under any setting). None (default): by
      device, the CPU paths without a visible GPU, TensorFlow's plain ops
      with one (speed_paths.by_device); a bound value wins.
  """

  image_size: int = 64
  channels: int = 3
  context_frames: int = 2
  future_frames: int = 10
  n_hid: int = 64
  channel_multipliers: tuple[int, ...] = (1, 2, 4, 8, 8, 8)
  latent_resolutions: tuple[int, ...] = (1, 8, 32)
  latent_channels: tuple[int, ...] = (512, 512, 128)
  dense: bool = True
  decoder_convlstm_layers: int = 6
  decoder_width_multiplier: float = 1.0
  decoder_skips: bool = False
  reconstruction_loss: str = "l1"
  kernel_size: int = 3
  initialization: str = "pytorch"
  release_group_counts: bool = False
  group_norm_xla_gradient: bool | None = None
  patch_matmul_max_rows: tuple[int, int, int] | None = None

  def __post_init__(self):
    device_paths = speed_paths.by_device()
    for name in ("group_norm_xla_gradient", "patch_matmul_max_rows"):
      if getattr(self, name) is None:
        object.__setattr__(self, name, getattr(device_paths, name))
    # Gin passes lists for tuple-valued bindings; store tuples (hashable, frozen).
    for name in (
      "channel_multipliers",
      "latent_resolutions",
      "latent_channels",
      "patch_matmul_max_rows",
    ):
      object.__setattr__(self, name, tuple(getattr(self, name)))
    self._validate()

  @property
  def resolutions(self) -> tuple[int, ...]:
    """Encoder pyramid resolutions, finest first (S, ..., 4, 1)."""
    return encoder.pyramid_resolutions(self.image_size)

  @property
  def sequence_length(self) -> int:
    return self.context_frames + self.future_frames

  @property
  def speed_paths(self) -> speed_paths.SpeedPaths:
    """The ops' speed-path options, for the layers."""
    return speed_paths.SpeedPaths(
      self.group_norm_xla_gradient, self.patch_matmul_max_rows
    )

  def _validate(self):
    def fail(name, message):
      raise ConfigError(
        f"ModelConfig.{name}: {message} (got {getattr(self, name)!r})"
      )

    size = self.image_size
    if size < 8 or size & (size - 1):
      fail("image_size", "must be a power of two >= 8")
    for name in (
      "channels",
      "context_frames",
      "future_frames",
      "n_hid",
      "kernel_size",
    ):
      if getattr(self, name) < 1:
        fail(name, "must be >= 1")
    if len(self.channel_multipliers) != len(self.resolutions):
      fail(
        "channel_multipliers",
        f"needs one entry per encoder resolution {self.resolutions}",
      )
    if not self.latent_resolutions:
      fail("latent_resolutions", "needs at least one latent level")
    if len(self.latent_channels) != len(self.latent_resolutions):
      fail(
        "latent_channels",
        "needs one entry per latent level "
        f"(latent_resolutions={self.latent_resolutions})",
      )
    unknown = set(self.latent_resolutions) - set(self.resolutions)
    if unknown:
      fail(
        "latent_resolutions",
        f"{sorted(unknown)} not produced by the "
        f"encoder, which has resolutions {self.resolutions}",
      )
    if list(self.latent_resolutions) != sorted(set(self.latent_resolutions)):
      fail(
        "latent_resolutions", "must be strictly increasing (top level first)"
      )
    if not 1 <= self.decoder_convlstm_layers <= len(self.resolutions):
      fail(
        "decoder_convlstm_layers",
        f"must be in [1, {len(self.resolutions)}] for image_size {size}",
      )
    if self.decoder_width_multiplier <= 0:
      fail("decoder_width_multiplier", "must be > 0")
    if self.reconstruction_loss not in RECONSTRUCTION_LOSSES:
      fail("reconstruction_loss", f"must be one of {RECONSTRUCTION_LOSSES}")
    if self.initialization not in initialization.SCHEMES:
      fail("initialization", f"must be one of {initialization.SCHEMES}")
    if self.release_group_counts:
      self._validate_release_groups(fail)
    self._validate_speed_paths(fail)

  def _validate_speed_paths(self, fail):
    if not isinstance(self.group_norm_xla_gradient, bool):
      fail("group_norm_xla_gradient", "must be True or False")
    rows = self.patch_matmul_max_rows
    if len(rows) != 3 or not all(isinstance(r, int) and r >= 0 for r in rows):
      fail(
        "patch_matmul_max_rows",
        "must be 3 integers >= 0 (forward, input gradient, kernel gradient)",
      )

  def _validate_release_groups(self, fail):
    """The release's GroupNorm(16) must split every layer into equal groups."""
    if self.n_hid % 16:
      fail("n_hid", "must be a multiple of 16 with release_group_counts")
    for r, z in zip(self.latent_resolutions, self.latent_channels):
      if r > 1 and z % 8:
        fail(
          "latent_channels",
          "must be multiples of 8 below the top level with "
          "release_group_counts (GroupNorm(16) over 2 z channels)",
        )
