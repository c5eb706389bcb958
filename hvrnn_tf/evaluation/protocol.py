"""The paper's evaluation protocol over test batches (sec. 5.2.1): best-of-N
SSIM / PSNR / LPIPS curves, FVD features, the test ELBO and KL per channel,
and the sequences kept for display. evaluation/evaluate.py runs it over a
run's test data; `hvrnn_tf.eval` is its binary."""

from absl import logging
import numpy as np
import tensorflow as tf

from hvrnn_tf.evaluation.config import EvalConfig
from hvrnn_tf.evaluation.metrics import best_of_n
from hvrnn_tf.evaluation.metrics import fvd
from hvrnn_tf.evaluation.metrics import image_metrics
from hvrnn_tf.evaluation.metrics import kl
from hvrnn_tf.evaluation.metrics import lpips
from hvrnn_tf.model import losses


class Evaluation:
  """Accumulates the protocol's results over test batches.

  Args:
    model: a HierarchicalVRNN (uses .config.context_frames, .sample, .elbo).
    num_samples: N futures drawn per sequence.
    lpips_metric: an lpips.LPIPS, or None to skip LPIPS.
    i3d: an fvd.I3DFeatures, or None to skip FVD.
    fvd_repeats: FVD repeats, each with its own random sample per sequence.
    num_visualized: how many (first) sequences to keep for display.
    seed: seeds the model's samples and the random picks.
    with_elbo: also score the test ELBO and KL (needs `model.elbo`; False
      for a baseline).
  """

  def __init__(
    self,
    model,
    num_samples,
    lpips_metric=None,
    i3d=None,
    fvd_repeats=5,
    num_visualized=8,
    seed=0,
    with_elbo=True,
  ):
    self.model, self.num_samples, self.i3d = model, num_samples, i3d
    self.with_elbo = with_elbo
    self.num_visualized, self.seed = num_visualized, seed
    self.scorers = {
      "ssim": image_metrics.ssim_per_frame,
      "ssim_svg": image_metrics.ssim_svg_per_frame,
      "psnr": image_metrics.psnr_per_frame,
    }
    if lpips_metric is not None:
      self.scorers["lpips"] = lpips_metric.per_frame
    self.curves = {name: [] for name in self.scorers}
    self.kl_channels, self.nll, self.kl = kl.KLPerChannel(), [], []
    self.real_features = []
    self.generated_features = [[] for _ in range(fvd_repeats)]
    # (video [c + f, H, W, C], best-SSIM sample [f, H, W, C], random sample)
    self.visuals = []
    self._rng = np.random.default_rng(seed)
    self._elbo = tf.function(self._elbo_terms)

  def _elbo_terms(self, video, seed):
    out = self.model.elbo(video, seed)
    return out.nll, out.kl, out.kl_per_level

  def add(self, video, batch_index: int) -> None:
    """Scores one batch of videos [B, c + f, H, W, C] in [0, 1]; the batch's
    index seeds its samples and posterior noise."""
    c = self.model.config.context_frames
    video = tf.convert_to_tensor(video, tf.float32)
    if video.shape.rank != 5 or video.shape[1] <= c:
      raise ValueError(
        f"test batches must be [B, T > {c}, H, W, C], got {video.shape}"
      )
    context, truth = video[:, :c], video[:, c:]
    samples = self.model.sample(
      context,
      truth.shape[1],
      self.num_samples,
      tf.constant([self.seed, 2 * batch_index]),
    )
    best = {}
    for name, score in self.scorers.items():
      best[name] = best_of_n.best_of_n(
        score(truth, samples).numpy(), best_of_n.HIGHER_IS_BETTER[name]
      )
      self.curves[name].append(best[name].per_timestep)
    if self.with_elbo:
      nll, kl_total, kl_per_level = self._elbo(
        video, tf.constant([self.seed, 2 * batch_index + 1])
      )
      self.nll.append(nll.numpy())
      self.kl.append(kl_total.numpy())
      self.kl_channels.update([k.numpy() for k in kl_per_level])
    # One random sample per sequence and repeat: for FVD and for display.
    picks = self._rng.integers(
      self.num_samples, size=(len(self.generated_features), video.shape[0])
    )
    if self.i3d is not None:
      self.real_features.append(self.i3d(video))
      generated = tf.concat(
        [
          tf.concat([context, tf.gather(samples, p, batch_dims=1)], 1)
          for p in picks
        ],
        axis=0,
      )
      for repeat, features in enumerate(
        np.split(self.i3d(generated), len(picks))
      ):
        self.generated_features[repeat].append(features)
    for b in range(
      min(self.num_visualized - len(self.visuals), video.shape[0])
    ):
      self.visuals.append(
        (
          video[b].numpy(),
          samples[b, best["ssim"].index[b]].numpy(),
          samples[b, picks[0, b]].numpy(),
        )
      )

  def metrics(self) -> dict:
    """JSON-ready results: a key per metric (see the module docstring)."""
    if not self.curves["ssim"]:
      raise ValueError("the dataset yielded no sequences")
    metrics = {
      name: best_of_n.summarize(np.concatenate(per_sequence))
      for name, per_sequence in self.curves.items()
    }
    if self.with_elbo:
      metrics.update(self._elbo_metrics())
    if self.i3d is not None:
      real = np.concatenate(self.real_features)
      repeats = [
        fvd.fvd(real, np.concatenate(g)) for g in self.generated_features
      ]
      metrics["fvd"] = {
        "mean": float(np.mean(repeats)),
        "std": float(np.std(repeats)),
        "repeats": repeats,
      }
    return metrics

  def _elbo_metrics(self) -> dict:
    nll, kl_total = np.concatenate(self.nll), np.concatenate(self.kl)
    elbo = {
      "neg_elbo": float(np.mean(losses.negative_elbo(nll, kl_total))),
      "nll": float(np.mean(nll)),
      "kl": float(np.mean(kl_total)),
      "units": "nats per sequence (lower is better)",
    }
    per_channel = self.kl_channels.result()
    return {
      "elbo": elbo,
      "kl": {
        "per_channel": [k.tolist() for k in per_channel],
        **kl.active_units(per_channel),
      },
    }


def load_optional_metrics(config: EvalConfig):
  """(lpips_metric, i3d, skipped): the networks of `config` that could be
  loaded, and for those that could not (or were disabled with an empty
  setting) the reason."""
  skipped = {}
  lpips_metric = i3d = None
  if config.lpips_weights == "":  # pylint: disable=g-explicit-bool-comparison
    skipped["lpips"] = "disabled (eval.lpips_weights is empty)"
  else:
    try:
      lpips_metric = lpips.load_lpips(
        config.lpips_weights,
        config.lpips_backbone_weights,
        net=config.lpips_net,
      )
    except Exception as e:  # pylint: disable=broad-except  # downloads, files
      skipped["lpips"] = (
        f"calibration weights unavailable ("
        f"{type(e).__name__}: {e}); LPIPS is not computed "
        "without them"
      )
  if not config.i3d_handle:
    skipped["fvd"] = "disabled (eval.i3d_handle is empty)"
  else:
    try:
      i3d = fvd.I3DFeatures(config.i3d_handle, config.i3d_batch_size)
    except Exception as e:  # pylint: disable=broad-except
      skipped["fvd"] = (
        f"I3D unavailable from {config.i3d_handle!r} ("
        f"{type(e).__name__}: {e}); for offline use set eval.i3d_handle to "
        "a local SavedModel dir"
      )
  for name, reason in skipped.items():
    logging.warning("%s skipped: %s", name.upper(), reason)
  return lpips_metric, i3d, skipped
