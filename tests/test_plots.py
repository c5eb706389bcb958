"""Matplotlib figures of evaluation results."""

import numpy as np
from PIL import Image
import pytest

from hvrnn_tf.evaluation import plots


def test_per_timestep_plot_is_a_png(tmp_path):
  path = str(tmp_path / "curves.png")
  plots.plot_per_timestep(
    {"ssim": [0.9, 0.8, 0.7], "lpips": [0.1, 0.2, 0.3]},
    first_frame=3,
    path=path,
    num_samples=100,
  )
  with Image.open(path) as image:
    assert image.format == "PNG" and image.size[0] > image.size[1] > 100


def test_kl_plot_is_a_png_with_one_panel_per_level(tmp_path):
  one, two = str(tmp_path / "one.png"), str(tmp_path / "two.png")
  kl = [np.array([0.5, 0.001, 0.02]), np.array([0.0, 0.2])]
  plots.plot_kl_per_channel(kl[:1], [1], one)
  plots.plot_kl_per_channel(kl, [1, 8], two)
  with Image.open(one) as a, Image.open(two) as b:
    assert a.format == b.format == "PNG"
    assert b.size[0] > a.size[0]


def test_bad_input_is_rejected(tmp_path):
  with pytest.raises(ValueError, match="no curves"):
    plots.plot_per_timestep({}, 1, str(tmp_path / "x.png"), 1)
  with pytest.raises(ValueError, match="resolutions"):
    plots.plot_kl_per_channel([np.ones(2)], [1, 8], str(tmp_path / "x.png"))


def test_runs_plot_has_a_line_per_run_and_names_a_missing_curve(tmp_path):
  path = str(tmp_path / "runs.png")
  runs = {"hier": {"ssim": [0.9, 0.8]}, "copy": {"ssim": [0.7, 0.6]}}
  plots.plot_runs_per_timestep(runs, 6, path, 20)
  with Image.open(path) as image:
    assert image.format == "PNG"
  with pytest.raises(ValueError, match="'psnr'"):
    plots.plot_runs_per_timestep(
      {"hier": {"psnr": [1.0]}, "copy": {"ssim": [1.0]}}, 6, path, 20
    )
