"""Tests of the evaluation protocol's accumulator and its optional networks."""

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.evaluation import protocol
from hvrnn_tf.evaluation.config import EvalConfig
from hvrnn_tf.evaluation.metrics import image_metrics
from hvrnn_tf.model.vrnn import HierarchicalVRNN


def test_evaluation_keeps_the_best_sample_reproducibly(tiny_config):
  # Two levels and one decoder ConvLSTM: half the tiny model's tracing.
  config = tiny_config(
    latent_resolutions=(1, 4), latent_channels=(2, 3), decoder_convlstm_layers=1
  )
  model = HierarchicalVRNN(config)
  model.initialize()
  # Two batches of the same shape: the sampler and the ELBO trace once.
  videos = (
    np.random.default_rng(0).uniform(size=(4, 5, 16, 16, 1)).astype(np.float32)
  )
  evaluation = protocol.Evaluation(
    model, num_samples=3, fvd_repeats=2, num_visualized=3, seed=7
  )
  with pytest.raises(ValueError, match="no sequences"):
    evaluation.metrics()
  with pytest.raises(ValueError, match=r"T > 2"):
    evaluation.add(videos[:, :2], 0)
  evaluation.add(videos[:2], 0)
  evaluation.add(videos[2:], 1)
  metrics = evaluation.metrics()
  assert metrics["ssim"]["num_sequences"] == 4
  assert len(metrics["psnr"]["per_timestep"]) == 3
  assert "fvd" not in metrics and "lpips" not in metrics
  assert metrics["kl"]["channels"] == list(config.latent_channels)
  # Batch 0's samples are drawn again from the same seed: the displayed best
  # sample of sequence 1 is the one with the highest mean SSIM.
  samples = model.sample(videos[:2, :2], 3, 3, tf.constant([7, 0]))
  ssim = image_metrics.ssim_per_frame(videos[:2, 2:], samples).numpy()
  video, best, _ = evaluation.visuals[1]
  np.testing.assert_array_equal(video, videos[1])
  np.testing.assert_array_equal(best, samples[1, np.argmax(ssim[1].mean(1))])


def test_unavailable_networks_are_skipped_with_a_reason(tmp_path):
  lpips_metric, i3d, skipped = protocol.load_optional_metrics(
    EvalConfig(
      lpips_weights=str(tmp_path / "missing.pth"),
      lpips_backbone_weights=str(tmp_path / "missing.pth"),
      i3d_handle=str(tmp_path / "no_i3d"),
    )
  )
  assert lpips_metric is None and i3d is None
  assert "missing.pth" in skipped["lpips"]
  assert "not computed" in skipped["lpips"]
  assert "no_i3d" in skipped["fvd"]
  _, _, skipped = protocol.load_optional_metrics(
    EvalConfig(lpips_weights="", i3d_handle="")
  )
  assert "eval.lpips_weights" in skipped["lpips"]
  assert "eval.i3d_handle" in skipped["fvd"]
