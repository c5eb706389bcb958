"""Tests of the picture helpers."""

import numpy as np
from PIL import Image

from hvrnn_tf.evaluation import visualize


def test_video_grid_places_videos_side_by_side():
  videos = np.stack([np.zeros([3, 4, 5, 1]), np.full([3, 4, 5, 1], 0.5)])
  grid = visualize.video_grid(videos, pad=2)
  assert grid.shape == (3, 4, 12, 1)
  assert np.all(grid[:, :, :5] == 0) and np.all(grid[:, :, 5:7] == 1)
  assert np.all(grid[:, :, 7:] == 0.5)


def test_image_strip_has_a_row_per_video_and_a_column_per_frame():
  strip = visualize.image_strip(np.random.rand(2, 3, 4, 5, 3), pad=1)
  assert strip.shape == (2 * 5 - 1, 3 * 6 - 1, 3)


def test_mark_frames_draws_a_border_in_rgb():
  marked = visualize.mark_frames(np.zeros([2, 6, 6, 1]), (1.0, 0.0, 0.0))
  assert marked.shape == (2, 6, 6, 3)
  np.testing.assert_array_equal(marked[:, 0, 3], [[1, 0, 0]] * 2)
  np.testing.assert_array_equal(marked[:, 3, 3], [[0, 0, 0]] * 2)


def test_gif_and_png_round_trip(tmp_path):
  frames = np.linspace(0, 1, 4)[:, None, None, None] * np.ones([4, 8, 8, 1])
  visualize.write_gif(str(tmp_path / "v.gif"), frames, fps=5)
  visualize.write_png(str(tmp_path / "f.png"), frames[2])
  gif = Image.open(tmp_path / "v.gif")
  assert gif.n_frames == 4 and gif.size == (8, 8)
  png = np.asarray(Image.open(tmp_path / "f.png"))
  assert (
    png.shape == (8, 8) and png[0, 0] == visualize.to_uint8(frames[2])[0, 0, 0]
  )
  assert not list(tmp_path.glob("*.tmp*"))


def test_write_comparison_stacks_truth_and_futures(tmp_path):
  truth = np.random.rand(5, 8, 8, 1)
  futures = np.random.rand(2, 3, 8, 8, 1)
  paths = visualize.write_comparison(str(tmp_path / "seq"), truth, futures, 2)
  assert paths == [str(tmp_path / "seq.gif"), str(tmp_path / "seq.png")]
  gif = Image.open(paths[0])
  assert gif.n_frames == 5 and gif.size == (3 * 8 + 2 * 2, 8)
  strip = np.asarray(Image.open(paths[1]))
  assert strip.shape == (3 * 8 + 2 * 2, 5 * 8 + 4 * 2, 3)
  # Context frames have no border; predicted ones a red one.
  assert tuple(strip[8 + 2, 0]) != (255, 0, 0)
  assert tuple(strip[8 + 2, 2 * 10]) == (255, 0, 0)
