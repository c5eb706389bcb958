"""Tests of data_prep.cityscapes on small fake leftImg8bit_sequence trees."""

import shutil

from absl import flags
from absl.testing import flagsaver
import numpy as np
from PIL import Image
import pytest

from data_prep import cityscapes
from hvrnn_tf.data import inputs
from hvrnn_tf.data import records

WIDTH, HEIGHT, CROP, SIZE = (
  64,
  32,
  32,
  8,
)  # 2:1 frames like Cityscapes' 2048x1024.
# (city, seq, frame numbers): aachen has one 7-frame run, bochum two 3-frame runs.
FRAMES = [
  ("aachen", 0, range(0, 7)),
  ("bochum", 1, range(100, 103)),
  ("bochum", 1, range(200, 203)),
]


def _value(city: str, frame: int) -> int:
  return (frame % 97 + (100 if city == "bochum" else 0)) % 250


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
  """Frames whose centred square is flat _value(...) and whose cropped-away margins are white."""
  root = (
    tmp_path_factory.mktemp("cityscapes") / "leftImg8bit_sequence" / "train"
  )
  for city, seq, frames in FRAMES:
    (root / city).mkdir(parents=True, exist_ok=True)
    for frame in frames:
      image = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
      image[:, (WIDTH - CROP) // 2 : (WIDTH + CROP) // 2] = _value(city, frame)
      Image.fromarray(image).save(
        root / city / f"{city}_{seq:06d}_{frame:06d}_leftImg8bit.png"
      )
  (root / "aachen" / "README.txt").write_text("not a frame")
  return root


def test_groups_consecutive_frames_into_sequences(split_dir):
  sequences = cityscapes.find_sequences(str(split_dir), 3)
  names = [
    [p.rsplit("/", 1)[1][: -len("_leftImg8bit.png")] for p in s]
    for s in sequences
  ]
  assert names == [
    ["aachen_000000_000000", "aachen_000000_000001", "aachen_000000_000002"],
    ["aachen_000000_000003", "aachen_000000_000004", "aachen_000000_000005"],
    ["bochum_000001_000100", "bochum_000001_000101", "bochum_000001_000102"],
    ["bochum_000001_000200", "bochum_000001_000201", "bochum_000001_000202"],
  ]
  with pytest.raises(ValueError, match="No 8 consecutive"):
    cityscapes.find_sequences(str(split_dir), 8)


def test_frames_are_centre_cropped_and_resized(split_dir):
  sequence = cityscapes.cityscapes_sequences(str(split_dir), 3, CROP, SIZE)[2][
    "frames"
  ]
  assert sequence.shape == (3, SIZE, SIZE, 3) and sequence.dtype == np.uint8
  for frames, frame in zip(sequence, range(100, 103)):
    assert np.all(
      frames == _value("bochum", frame)
    )  # No white margin leaks in.


def test_resize_is_antialiased(tmp_path):
  checkerboard = (np.indices((HEIGHT, WIDTH)).sum(axis=0) % 2 * 255).astype(
    np.uint8
  )
  path = tmp_path / "x_000000_000000_leftImg8bit.png"
  Image.fromarray(checkerboard).save(path)
  frame = cityscapes.load_frame(str(path), CROP, SIZE)
  assert frame.shape == (SIZE, SIZE, 3) and np.all(
    np.abs(frame.astype(int) - 127.5) <= 3
  )
  with pytest.raises(ValueError, match="crop_size"):
    cityscapes.load_frame(str(path), 33, SIZE)


def test_random_subset_is_fixed_by_the_seed(split_dir):
  all_sequences = [
    s["frames"][0, 0, 0, 0]
    for s in cityscapes.cityscapes_sequences(str(split_dir), 3, CROP, SIZE)
  ]
  pick = lambda seed: [
    s["frames"][0, 0, 0, 0]
    for s in cityscapes.cityscapes_sequences(
      str(split_dir), 3, CROP, SIZE, max_sequences=2, seed=seed
    )
  ]
  assert pick(0) == pick(0)
  assert all(v in all_sequences for v in pick(0)) and len(pick(0)) == 2
  assert len({tuple(pick(seed)) for seed in range(10)}) > 1


def test_main_writes_shards_the_reader_accepts(tmp_path, split_dir):
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  with flagsaver.flagsaver(
    cityscapes_dir=str(split_dir.parents[1]),
    output_dir=str(tmp_path),
    cityscapes_crop_size=CROP,
    cityscapes_image_size=SIZE,
    cityscapes_frames=3,
    sequences_per_shard=3,
    num_workers=2,
  ):
    cityscapes.main([])
  paths = sorted(str(p) for p in tmp_path.glob("train-*.tfrecord"))
  assert records.read_metadata(paths)["frame_shape"] == [SIZE, SIZE, 3]
  batch = next(
    iter(
      inputs.make_dataset(
        "test",
        4,
        3,
        SIZE,
        3,
        source="tfrecord",
        file_pattern=paths[0][:-22] + "*",
      )
    )
  )
  expected = [_value("aachen", f) for f in range(6)] + [
    _value("bochum", f) for f in (100, 101, 102, 200, 201, 202)
  ]
  np.testing.assert_allclose(
    batch.numpy()[:, :, 0, 0, 0].ravel() * 255, expected, atol=1e-3
  )


def test_corrupt_frame_is_a_one_line_error(tmp_path, split_dir):
  root = tmp_path / "cityscapes"
  shutil.copytree(split_dir.parents[1], root)
  frame = (
    root
    / "leftImg8bit_sequence"
    / "train"
    / "bochum"
    / "bochum_000001_000201_leftImg8bit.png"
  )
  frame.write_bytes(frame.read_bytes()[:60])
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  with (
    flagsaver.flagsaver(
      cityscapes_dir=str(root),
      output_dir=str(tmp_path / "out"),
      cityscapes_crop_size=CROP,
      cityscapes_image_size=SIZE,
      cityscapes_frames=3,
      sequences_per_shard=1,
      num_workers=1,
    ),
    pytest.raises(SystemExit) as error,
  ):
    cityscapes.main([])
  assert error.value.code.startswith(
    f"data_prep.cityscapes: error: {frame}: truncated or corrupt image ("
  )
  assert "\n" not in error.value.code
  # Shards 0-2 were written before the last sequence's frame failed: removed.
  assert not list((tmp_path / "out").iterdir())


def test_file_of_unknown_format_is_a_clear_error(tmp_path):
  path = tmp_path / "a_leftImg8bit.png"
  path.write_bytes(b"not a png")
  with pytest.raises(
    ValueError,
    match="a_leftImg8bit.png",
  ):
    cityscapes.load_frame(str(path), CROP, SIZE)
