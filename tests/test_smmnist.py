"""Tests of hvrnn_tf.data.smmnist: rendering, bouncing, determinism, tf.data stream."""

import numpy as np
import pytest

from hvrnn_tf.data import digits
from hvrnn_tf.data import smmnist

SIZE = 28


@pytest.fixture(scope="module")
def real_digits() -> np.ndarray:
  return digits.sklearn_digits("test")


def _render_boxes(
  positions: np.ndarray, value: int, image_size: int
) -> np.ndarray:
  """Expected frames when every digit is a flat square of `value`."""
  frames = np.zeros((len(positions), image_size, image_size), np.int64)
  for t, frame_positions in enumerate(positions):
    for y, x in frame_positions:
      frames[t, y : y + SIZE, x : x + SIZE] += value
  return np.minimum(frames, 255)[..., None]


@pytest.mark.parametrize("value", [100, 200])  # 200: overlaps clip at 255.
def test_frames_show_each_digit_whole_at_its_position(value):
  squares = np.full((3, SIZE, SIZE), value, np.uint8)
  generator = smmnist.StochasticMovingMnist(squares, image_size=48, seed=1)
  for index in range(10):
    frames, positions = generator.sequence(index, 25)
    assert frames.shape == (25, 48, 48, 1) and frames.dtype == np.uint8
    assert positions.shape == (25, 2, 2)
    assert positions.min() >= 0 and positions.max() <= 48 - SIZE
    np.testing.assert_array_equal(frames, _render_boxes(positions, value, 48))


def test_pixel_mass_is_conserved_while_digits_do_not_overlap(real_digits):
  generator = smmnist.StochasticMovingMnist(real_digits, num_digits=1, seed=3)
  for index in range(5):
    frames, _ = generator.sequence(index, 30)
    masses = frames.reshape(30, -1).sum(axis=1)
    assert (
      masses.min() == masses.max() > 0
    )  # One digit, always fully inside the frame.


def _displacements(positions: np.ndarray) -> np.ndarray:
  return np.diff(positions, axis=0)


def test_velocity_changes_only_at_borders_and_bounces_redraw_it():
  generator = smmnist.StochasticMovingMnist(
    np.zeros((1, SIZE, SIZE), np.uint8), seed=7
  )
  limit = generator.max_position
  bounces, redrawn_tangent = 0, 0
  for index in range(30):
    _, positions = generator.sequence(index, 40)
    for digit in range(2):
      p = positions[:, digit]
      d = _displacements(p)
      at_border = (p == 0) | (p == limit)
      # Never moving into a border the digit touches.
      assert np.all(d[p[:-1] == 0] >= 0) and np.all(d[p[:-1] == limit] <= 0)
      for t in range(1, len(d)):
        if np.any(
          d[t] != d[t - 1]
        ):  # A bounce at frame t, or a clipped step into a border at t + 1.
          assert at_border[t : t + 2].any(), (
            f"velocity changed away from a border at frame {t}"
          )
          bounces += 1
          # Bounce off a y border (only), x far from borders before and after:
          # a deterministic bounce would keep dx; the stochastic one redraws it.
          if at_border[t, 0] and not at_border[t - 1 : t + 2, 1].any():
            redrawn_tangent += d[t, 1] != d[t - 1, 1]
  assert bounces > 50
  assert redrawn_tangent > 5


def test_same_seed_same_sequence_in_any_order(real_digits):
  first = smmnist.StochasticMovingMnist(real_digits, seed=5)
  second = smmnist.StochasticMovingMnist(real_digits, seed=5)
  later = [second.sequence(i, 10)[0] for i in (3, 2, 1)]
  for i, frames in zip((3, 2, 1), later):
    np.testing.assert_array_equal(first.sequence(i, 10)[0], frames)
  assert not np.array_equal(first.sequence(1, 10)[0], first.sequence(2, 10)[0])
  other_seed = smmnist.StochasticMovingMnist(real_digits, seed=6)
  assert not np.array_equal(
    first.sequence(1, 10)[0], other_seed.sequence(1, 10)[0]
  )


def test_dataset_streams_the_generator_sequences_in_order(real_digits):
  dataset = smmnist.smmnist_dataset(
    real_digits, 6, image_size=40, seed=2, num_sequences=3
  )
  assert dataset.element_spec.shape == (6, 40, 40, 1)
  generator = smmnist.StochasticMovingMnist.from_style(
    real_digits, "svg", image_size=40, seed=2
  )
  streamed = [x.numpy() for x in dataset]
  assert len(streamed) == 3
  for i, frames in enumerate(streamed):
    np.testing.assert_array_equal(frames, generator.sequence(i, 6)[0])


def test_infinite_dataset_keeps_going(real_digits):
  dataset = smmnist.smmnist_dataset(
    real_digits, 2, image_size=32, num_digits=1, style="mnist28"
  )
  assert dataset.cardinality() == -1  # tf.data.INFINITE_CARDINALITY
  assert len(list(dataset.take(5))) == 5


@pytest.mark.parametrize(
  "kwargs, message",
  [
    ({"image_size": 28}, "image_size=28 must exceed the digit size 28"),
    ({"num_digits": 0}, "num_digits=0"),
  ],
)
def test_invalid_parameters(real_digits, kwargs, message):
  with pytest.raises(ValueError, match=message):
    smmnist.StochasticMovingMnist(real_digits, **kwargs)


def test_rejects_non_uint8_digits():
  with pytest.raises(ValueError, match="uint8 array"):
    smmnist.StochasticMovingMnist(np.zeros((2, SIZE, SIZE), np.float32))


def test_svg_style_draws_32x32_digits_at_positions_0_to_31(real_digits):
  generator = smmnist.StochasticMovingMnist.from_style(
    real_digits, "svg", seed=4
  )
  assert generator.digits.shape[1:] == (32, 32)
  positions = np.concatenate(
    [generator.sequence(i, 40)[1].reshape(-1, 2) for i in range(20)]
  )
  # SVG's release: top-left in 0..image_size - 33, both ends reached.
  assert positions.min() == 0 and positions.max() == 31
  frames, positions = generator.sequence(0, 1)
  (y, x) = positions[0, 0]
  assert frames[0, y : y + 32, x : x + 32].max() > 0


def test_mnist28_style_keeps_the_digits(real_digits):
  generator = smmnist.StochasticMovingMnist.from_style(real_digits, "mnist28")
  np.testing.assert_array_equal(generator.digits, real_digits)
  assert generator.max_position == 64 - 28


def test_svg_half_style_is_svg_at_half_scale(real_digits):
  generator = smmnist.StochasticMovingMnist.from_style(
    real_digits, "svg_half", image_size=32, seed=4
  )
  assert generator.digits.shape[1:] == (16, 16)
  assert generator.max_speed == 2
  positions = np.stack([generator.sequence(i, 40)[1] for i in range(20)])
  assert positions.min() == 0 and positions.max() == 32 - 17
  assert np.abs(np.diff(positions, axis=1)).max() == 2  # pixels per frame


def test_a_style_needs_frames_larger_than_its_digits(real_digits):
  with pytest.raises(ValueError, match="18"):
    smmnist.StochasticMovingMnist.from_style(
      real_digits, "svg_half", image_size=17
    )


def test_unknown_style_is_named(real_digits):
  with pytest.raises(ValueError, match="style='svg32'"):
    smmnist.StochasticMovingMnist.from_style(real_digits, "svg32")
