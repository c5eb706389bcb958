"""Stochastic Moving MNIST (Denton & Fergus, 2018), generated on the fly.

Each sequence shows `num_digits` digits on a black `image_size` square.
A digit starts at a uniform random position, fully inside the frame, with an
integer velocity (dy, dx), each component uniform in [-max_speed, max_speed].
It moves with constant velocity until it would leave the frame; then it is put
against that border and gets a NEW random velocity: the component normal to the
border points away from it (uniform in [1, max_speed] in magnitude) and the other
component is redrawn uniformly in [-max_speed, max_speed] (in a corner both
components point away).

Layouts (`STYLES`):
  "svg" (default): Denton & Fergus's release (edenton/svg), which the paper's
    SM-MNIST numbers follow: MNIST's 28x28 digits bilinearly resized to 32x32,
    top-left positions 0..S-33 (a digit never touches the last row/column),
    speeds up to 4 pixels per frame.
  "mnist28": digits keep MNIST's 28x28 size, positions 0..S-28.
  "svg_half": SVG's layout at half scale for 32x32 frames: 16x16 digits,
    speeds up to 2 pixels per frame (the quick-default pilots of
    docs/RESULTS.md).

Digits are combined by a clipped sum (min(a + b, 255)), as in their release.

Determinism: sequence `index` of a generator with seed `seed` draws everything
from `np.random.default_rng([seed, index])`, so it is the same on every run and
independent of which other sequences were generated, in any order or thread.
"""

import typing

import numpy as np
import tensorflow as tf

from hvrnn_tf.data import digits as digits_lib
from hvrnn_tf.data import shard_writer

TEST_SEED = 1_000_003  # The fixed seed of every SM-MNIST test set (streamed or written to shards).


class Style(typing.NamedTuple):
  """A digit layout: positions run 0..image_size - digit_size - margin."""

  digit_size: int
  margin: int
  max_speed: int

  @property
  def min_image_size(self) -> int:
    return self.digit_size + self.margin + 1


STYLES = {
  "svg": Style(32, 1, 4),
  "mnist28": Style(digits_lib.DIGIT_SIZE, 0, 4),
  "svg_half": Style(16, 1, 2),
}


class StochasticMovingMnist:
  """Generates Stochastic Moving MNIST sequences from a set of digits.

  Attributes:
    digits: uint8 [N, d, d] source digits.
    image_size: side of the square frames, in pixels (> d).
    num_digits: digits per sequence.
    max_speed: largest velocity component, in pixels per frame.
    seed: generator seed; with the sequence index it fixes each sequence.
    margin: rows/columns at the bottom/right a digit never reaches (SVG: 1).
  """

  def __init__(
    self,
    digits: np.ndarray,
    image_size: int = 64,
    num_digits: int = 2,
    max_speed: int = 4,
    seed: int = 0,
    margin: int = 0,
  ):
    digits = np.asarray(digits)
    if (
      digits.ndim != 3
      or digits.dtype != np.uint8
      or digits.shape[1] != digits.shape[2]
      or not len(digits)
    ):
      raise ValueError(
        f"digits must be a non-empty uint8 array [N, d, d]; got {digits.dtype} {digits.shape}."
      )
    if image_size <= digits.shape[1] + margin:
      raise ValueError(
        f"image_size={image_size} must exceed the digit size {digits.shape[1]}"
        f" plus margin {margin}."
      )
    if num_digits < 1 or max_speed < 1:
      raise ValueError(
        f"num_digits={num_digits} and max_speed={max_speed} must both be >= 1."
      )
    self.digits = digits
    self.image_size = image_size
    self.num_digits = num_digits
    self.max_speed = max_speed
    self.seed = seed
    self.margin = margin

  @classmethod
  def from_style(cls, digits: np.ndarray, style: str = "svg", **kwargs):
    """A generator laid out as `style` (see `STYLES`) from 28x28 MNIST digits."""
    if style not in STYLES:
      raise ValueError(f"style={style!r} is not one of {tuple(STYLES)}.")
    layout = STYLES[style]
    image_size = kwargs.get("image_size", 64)
    if image_size < layout.min_image_size:
      size = layout.digit_size
      fitting = [k for k, v in STYLES.items() if image_size >= v.min_image_size]
      raise ValueError(
        f"style={style!r} draws {size}x{size} digits: image_size={image_size}"
        f" must be at least {layout.min_image_size} (styles that fit it:"
        f" {fitting})."
      )
    kwargs.setdefault("max_speed", layout.max_speed)
    return cls(
      digits_lib.resize_digits(digits, layout.digit_size),
      margin=layout.margin,
      **kwargs,
    )

  @property
  def max_position(self) -> int:
    """Largest top-left coordinate a digit takes (fully inside the frame)."""
    return self.image_size - self.digits.shape[1] - self.margin

  def _trajectory(self, rng: np.random.Generator, length: int) -> np.ndarray:
    """int64 [length, 2] top-left (y, x) positions of one bouncing digit."""
    limit, speed = self.max_position, self.max_speed
    position = rng.integers(0, limit + 1, size=2)
    velocity = rng.integers(-speed, speed + 1, size=2)
    positions = np.empty((length, 2), np.int64)
    for t in range(length):
      outside = (position < 0) | (position > limit)
      if outside.any():
        away = np.where(position < 0, 1, -1)
        position = np.clip(position, 0, limit)
        velocity = rng.integers(-speed, speed + 1, size=2)
        velocity[outside] = away[outside] * rng.integers(
          1, speed + 1, size=int(outside.sum())
        )
      positions[t] = position
      position = position + velocity
    return positions

  def sequence(self, index: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Generates sequence `index`.

    Args:
      index: sequence number (>= 0); with `seed` it fixes the sequence.
      length: number of frames T.

    Returns:
      (frames, positions): uint8 [T, image_size, image_size, 1] frames, and int64
      [T, num_digits, 2] top-left (y, x) digit positions.
    """
    rng = np.random.default_rng([self.seed, index])
    chosen = self.digits[rng.integers(len(self.digits), size=self.num_digits)]
    positions = np.stack(
      [self._trajectory(rng, length) for _ in range(self.num_digits)], axis=1
    )
    size = self.digits.shape[1]
    canvas = np.zeros((length, self.image_size, self.image_size), np.uint16)
    for t in range(length):
      for digit, (y, x) in zip(chosen, positions[t]):
        canvas[t, y : y + size, x : x + size] += digit
    frames = np.minimum(canvas, 255).astype(np.uint8)[..., None]
    return frames, positions


def smmnist_dataset(
  digits: np.ndarray,
  sequence_length: int,
  image_size: int = 64,
  num_digits: int = 2,
  seed: int = 0,
  num_sequences: int | None = None,
  style: str = "svg",
) -> tf.data.Dataset:
  """Streams SM-MNIST sequences 0, 1, 2, ... into tf.data, in index order.

  Args:
    digits: uint8 [N, d, d] digits (see `load_digits`).
    sequence_length: frames per sequence T.
    image_size: frame side H = W.
    num_digits: digits per sequence.
    seed: generator seed (see the module docstring).
    num_sequences: None for an infinite stream, else that many sequences.
    style: digit layout, see `STYLES`.

  Returns:
    Dataset of uint8 [T, image_size, image_size, 1]; the same elements, in the
    same order, on every iteration and every run.
  """
  generator = StochasticMovingMnist.from_style(
    digits, style, image_size=image_size, num_digits=num_digits, seed=seed
  )
  indices = (
    tf.data.Dataset.counter()
    if num_sequences is None
    else tf.data.Dataset.range(num_sequences)
  )
  shape = (sequence_length, image_size, image_size, 1)

  def make(index: np.int64) -> np.ndarray:
    return generator.sequence(int(index), sequence_length)[0]

  def generate(index: tf.Tensor) -> tf.Tensor:
    return tf.ensure_shape(
      tf.numpy_function(make, [index], tf.uint8, stateful=False), shape
    )

  return indices.map(
    generate, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
  )


def write_smmnist_shards(
  output_dir: str,
  split: str,
  num_sequences: int,
  sequence_length: int,
  image_size: int = 64,
  num_digits: int = 2,
  seed: int | None = None,
  mnist_dir: str | None = None,
  split_test_file_at: int | None = None,
  style: str = "svg",
  sequences_per_shard: int = 256,
  compression: str | None = None,
  num_workers: int = 1,
) -> list[str]:
  """Writes SM-MNIST sequences 0..num_sequences-1 as `<split>-*` shards (see `records`).

  Args:
    output_dir: destination folder.
    split: "train" or "test": which MNIST digits are used, and the shard prefix.
    num_sequences: sequences to write.
    sequence_length: frames per sequence T.
    image_size, num_digits: see `StochasticMovingMnist`.
    seed: generator seed; None means `TEST_SEED` for "test" (the sequences
      `make_dataset` streams for its test split) and 0 for "train".
    mnist_dir, split_test_file_at: see `load_digits`.
    style: digit layout, see `STYLES`.
    sequences_per_shard, compression, num_workers: see
      `shard_writer.write_shards`.

  Returns:
    The shard paths.
  """
  digits, source = digits_lib.load_digits(
    mnist_dir, split, split_test_file_at=split_test_file_at
  )
  if seed is None:
    seed = TEST_SEED if split == "test" else 0
  generator = StochasticMovingMnist.from_style(
    digits, style, image_size=image_size, num_digits=num_digits, seed=seed
  )
  sequences = shard_writer.LazySequence(
    num_sequences,
    lambda i: {"frames": generator.sequence(i, sequence_length)[0]},
  )
  info = {
    "source": "smmnist",
    "split": split,
    "digits": source,
    "seed": seed,
    "num_digits": num_digits,
    "style": style,
  }
  return shard_writer.write_shards(
    sequences,
    output_dir,
    split,
    sequences_per_shard,
    compression=compression,
    info=info,
    num_workers=num_workers,
  )
