"""Converts Cityscapes `leftImg8bit_sequence` to sequence TFRecord shards.

  python -m data_prep.cityscapes --cityscapes_dir=/data/cityscapes --cityscapes_split=train \
      --output_dir=/data/cityscapes128
  python -m data_prep.cityscapes --cityscapes_dir=/data/cityscapes --cityscapes_split=test \
      --cityscapes_max_sequences=256 --output_dir=/data/cityscapes128

Reads `<cityscapes_dir>/leftImg8bit_sequence/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`,
groups each (city, seq)'s frames by consecutive frame number into sequences of
`--cityscapes_frames` (leftover frames are dropped and counted), takes the
centred `--cityscapes_crop_size` square of every frame (2048x1024 -> 1024x1024) and resizes
it to `--cityscapes_image_size` with an antialiased Lanczos filter. `--cityscapes_max_sequences`
keeps that many sequences drawn at random with `--cityscapes_seed` (in their sorted order).
Shards are named `train-*` for the train split and `test-*` otherwise (see
`--cityscapes_prefix`).
"""

import collections
import io
import os
import re

from absl import app
from absl import flags
from absl import logging
import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError
import tensorflow as tf

from data_prep import shard_flags
from hvrnn_tf.data import shard_writer

_FRAME_RE = re.compile(
  r"^(?P<city>.+)_(?P<seq>\d+)_(?P<frame>\d+)_leftImg8bit\.png$"
)

CITYSCAPES_DIR = flags.DEFINE_string(
  "cityscapes_dir", None, "Cityscapes root (holding leftImg8bit_sequence/)."
)
SPLIT = flags.DEFINE_enum(
  "cityscapes_split",
  "train",
  ["train", "val", "test"],
  "Cityscapes split to convert.",
)
CROP_SIZE = flags.DEFINE_integer(
  "cityscapes_crop_size",
  1024,
  "Side of the centred square crop.",
  lower_bound=1,
)
IMAGE_SIZE = flags.DEFINE_integer(
  "cityscapes_image_size", 128, "Side of the stored frames.", lower_bound=1
)
FRAMES = flags.DEFINE_integer(
  "cityscapes_frames", 30, "Frames per sequence.", lower_bound=1
)
MAX_SEQUENCES = flags.DEFINE_integer(
  "cityscapes_max_sequences",
  0,
  "Keep this many random sequences (0: all).",
  lower_bound=0,
)
SEED = flags.DEFINE_integer(
  "cityscapes_seed", 0, "Seed of the --cityscapes_max_sequences draw."
)
PREFIX = flags.DEFINE_string(
  "cityscapes_prefix",
  None,
  "Shard prefix; default 'train' for the train split, else 'test'.",
)


def find_sequences(split_dir: str, frames_per_sequence: int) -> list[list[str]]:
  """Groups the frame files under `split_dir`/<city>/ into sequences.

  Returns:
    Lists of `frames_per_sequence` paths of consecutive frames, sorted by
    (city, seq, first frame).
  """
  snippets = collections.defaultdict(list)
  for city in sorted(tf.io.gfile.listdir(split_dir)):
    for name in tf.io.gfile.listdir(os.path.join(split_dir, city)):
      match = _FRAME_RE.match(name)
      if match:
        snippets[(match["city"], match["seq"])].append(
          (int(match["frame"]), os.path.join(split_dir, city, name))
        )
  sequences, dropped = [], 0
  for key in sorted(snippets):
    frames = sorted(snippets[key])
    run = [frames[0]]
    for frame in frames[1:] + [(None, None)]:  # The sentinel ends the last run.
      if frame[0] is not None and frame[0] == run[-1][0] + 1:
        run.append(frame)
        continue
      usable = len(run) - len(run) % frames_per_sequence
      sequences += [
        [path for _, path in run[i : i + frames_per_sequence]]
        for i in range(0, usable, frames_per_sequence)
      ]
      dropped += len(run) - usable
      run = [frame]
  if not sequences:
    raise ValueError(
      f"No {frames_per_sequence} consecutive <city>_<seq>_<frame>_leftImg8bit.png frames in "
      f"{split_dir}/<city>/."
    )
  logging.info(
    "%s: %d sequences of %d frames; %d leftover frames dropped.",
    split_dir,
    len(sequences),
    frames_per_sequence,
    dropped,
  )
  return sequences


def load_frame(path: str, crop_size: int, image_size: int) -> np.ndarray:
  """uint8 [image_size, image_size, 3]: the centred crop of `path`, resized (antialiased)."""
  with tf.io.gfile.GFile(path, "rb") as f:
    data = f.read()  # PIL probing a GFile can fail with TF's errors.
  try:
    image = Image.open(io.BytesIO(data)).convert("RGB")
  except (OSError, SyntaxError) as e:  # PIL's errors for damaged files.
    reason = "unknown format" if isinstance(e, UnidentifiedImageError) else e
    raise ValueError(f"{path}: truncated or corrupt image ({reason})") from e
  width, height = image.size
  if min(width, height) < crop_size:
    raise ValueError(
      f"{path} is {width}x{height}, smaller than crop_size={crop_size}."
    )
  left, top = (width - crop_size) // 2, (height - crop_size) // 2
  image = image.crop((left, top, left + crop_size, top + crop_size))
  if image_size != crop_size:
    image = image.resize((image_size, image_size), Image.Resampling.LANCZOS)
  return np.asarray(image, np.uint8)


def cityscapes_sequences(
  split_dir: str,
  frames_per_sequence: int = 30,
  crop_size: int = 1024,
  image_size: int = 128,
  max_sequences: int = 0,
  seed: int = 0,
) -> shard_writer.LazySequence:
  """The split's sequences, loaded lazily.

  Returns:
    Item i: {"frames": uint8 [frames_per_sequence, image_size, image_size, 3]}.
  """
  sequences = find_sequences(split_dir, frames_per_sequence)
  if 0 < max_sequences < len(sequences):
    keep = np.sort(
      np.random.default_rng(seed).choice(
        len(sequences), max_sequences, replace=False
      )
    )
    sequences = [sequences[i] for i in keep]
  return shard_writer.LazySequence(
    len(sequences),
    lambda i: {
      "frames": np.stack(
        [load_frame(p, crop_size, image_size) for p in sequences[i]]
      )
    },
  )


def main(argv: list[str]) -> None:
  del argv
  split_dir = os.path.join(
    CITYSCAPES_DIR.value, "leftImg8bit_sequence", SPLIT.value
  )
  if not tf.io.gfile.isdir(split_dir):
    raise app.UsageError(
      f"{split_dir} does not exist; --cityscapes_dir must hold leftImg8bit_sequence/."
    )
  with shard_flags.reporting_errors("data_prep.cityscapes"):
    sequences = cityscapes_sequences(
      split_dir,
      FRAMES.value,
      CROP_SIZE.value,
      IMAGE_SIZE.value,
      MAX_SEQUENCES.value,
      SEED.value,
    )
    prefix = PREFIX.value or ("train" if SPLIT.value == "train" else "test")
    info = {
      "source": f"cityscapes {split_dir}",
      "split": SPLIT.value,
      "cityscapes_crop_size": CROP_SIZE.value,
      "cityscapes_max_sequences": MAX_SEQUENCES.value,
      "cityscapes_seed": SEED.value,
    }
    shard_flags.write(sequences, prefix, info)


if __name__ == "__main__":
  flags.mark_flag_as_required("cityscapes_dir")
  flags.mark_flag_as_required("output_dir")
  app.run(main)
