"""The settings of `hvrnn_tf.eval` and `hvrnn_tf.sample`: gin-configurable,
validated dataclasses, bound as `eval.num_samples = 100` and
`sample.num_sequences = 8` (in a gin file or with --gin_param)."""

import dataclasses

import gin
from hvrnn_tf.evaluation import baselines
from hvrnn_tf.evaluation.metrics import fvd
from hvrnn_tf.evaluation.metrics import lpips
from hvrnn_tf.utils import validation


def _values(config) -> dict:
  return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


@gin.configurable("eval", module="eval")
@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """How a checkpoint is evaluated (the paper's protocol, sec. 5.2.1).

  Data: split, the first max_sequences sequences (required for an infinite
    split), batch_size sequences per model call, future_frames predicted
    frames (default: the model's training value; BAIR's protocol: 28).
  Best of N: num_samples futures per sequence; seed seeds them and the
    random picks.
  FVD: I3D from i3d_handle (TF-Hub handle or local SavedModel dir; "" skips
    FVD), i3d_batch_size videos per call, fvd_repeats draws.
  LPIPS v0.1: lpips_net (one of lpips.NETS), its calibration lpips_weights
    and the backbone's lpips_backbone_weights (paths or URLs; None: the
    official ones; lpips_weights "" skips LPIPS).
  baseline: score this baselines.BASELINES predictor instead of the
    checkpoint (one sample per sequence, no ELBO).
  Outputs: output_dir (default WORKDIR/eval); the first num_visualized
    sequences as GIFs at fps frames per second.
  """

  split: str = "test"
  num_samples: int = 100
  future_frames: int | None = None
  max_sequences: int | None = None
  batch_size: int = 8
  seed: int = 0
  i3d_handle: str = fvd.I3D_HANDLE
  i3d_batch_size: int = fvd.I3D_BATCH_SIZE
  fvd_repeats: int = 5
  lpips_net: str = "alex"
  lpips_weights: str | None = None
  lpips_backbone_weights: str | None = None
  baseline: str | None = None
  output_dir: str | None = None
  num_visualized: int = 8
  fps: float = 4.0

  def __post_init__(self):
    """Raises ValueError naming the `eval.*` setting that is wrong."""
    values = _values(self)
    validation.check_types("eval", values, EvalConfig)
    for name in ("num_samples", "batch_size", "i3d_batch_size", "fvd_repeats"):
      validation.check_range("eval", name, values[name], minimum=1)
    for name in ("seed", "num_visualized"):
      validation.check_range("eval", name, values[name], minimum=0)
    if self.future_frames is not None:
      validation.check_range(
        "eval", "future_frames", self.future_frames, minimum=1
      )
    if self.max_sequences is not None and self.max_sequences < (
      2 if self.i3d_handle else 1
    ):
      raise ValueError(
        f"eval.max_sequences={self.max_sequences}: FVD needs >= 2 "
        "sequences (or skip it with eval.i3d_handle = '')"
      )
    if self.fps <= 0:
      raise ValueError(f"eval.fps must be > 0 (got {self.fps!r})")
    validation.check_choice("eval", "lpips_net", self.lpips_net, lpips.NETS)
    if self.baseline is not None:
      validation.check_choice(
        "eval", "baseline", self.baseline, baselines.BASELINES
      )


@gin.configurable("sample", module="sample")
@dataclasses.dataclass(frozen=True)
class SampleConfig:
  """What `hvrnn_tf.sample` draws: num_samples futures for each of the first
  num_sequences test sequences, from `seed`."""

  num_sequences: int = 4
  num_samples: int = 3
  seed: int = 0

  def __post_init__(self):
    """Raises ValueError naming the `sample.*` setting that is wrong."""
    values = _values(self)
    validation.check_types("sample", values, SampleConfig)
    for name in ("num_sequences", "num_samples"):
      validation.check_range("sample", name, values[name], minimum=1)
