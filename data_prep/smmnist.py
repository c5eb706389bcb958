"""Writes Stochastic Moving MNIST as sequence TFRecord shards.

  python -m data_prep.smmnist --output_dir=/data/smmnist [--mnist_dir=/data/mnist] \
      [--smmnist_num_train=0] [--smmnist_num_test=256] [--smmnist_sequence_length=30] \
      [--smmnist_style=svg] [--split_test_file_at=8000]

The test set is the one `make_dataset(source="smmnist", split="test")` streams
(sequences 0.. of seed `smmnist.TEST_SEED`, MNIST test digits), so shard-based
and streamed evaluations agree. Train shards are optional: training usually
streams fresh sequences instead.
"""

from absl import app
from absl import flags

from data_prep import shard_flags
from hvrnn_tf.data import smmnist

MNIST_DIR = flags.DEFINE_string(
  "mnist_dir",
  None,
  "MNIST IDX folder; default: TFDS, else an offline stand-in.",
)
SPLIT_TEST_FILE_AT = flags.DEFINE_integer(
  "split_test_file_at",
  None,
  "Take both splits from MNIST's test file: its first N digits for train, the"
  " rest for test (needs --mnist_dir).",
  lower_bound=1,
)
STYLE = flags.DEFINE_enum(
  "smmnist_style",
  "svg",
  list(smmnist.STYLES),
  "Digit layout (svg: 32x32 digits).",
)
NUM_TRAIN = flags.DEFINE_integer(
  "smmnist_num_train", 0, "Train sequences to write (0: none).", lower_bound=0
)
NUM_TEST = flags.DEFINE_integer(
  "smmnist_num_test", 256, "Test sequences to write (0: none).", lower_bound=0
)
SEQUENCE_LENGTH = flags.DEFINE_integer(
  "smmnist_sequence_length", 30, "Frames per sequence.", lower_bound=1
)
IMAGE_SIZE = flags.DEFINE_integer(
  "smmnist_image_size", 64, "Frame height = width.", lower_bound=29
)
NUM_DIGITS = flags.DEFINE_integer(
  "smmnist_num_digits", 2, "Digits per sequence.", lower_bound=1
)
SEED = flags.DEFINE_integer(
  "smmnist_train_seed", 0, "Seed of the train sequences."
)


def main(argv: list[str]) -> None:
  del argv
  for split, count, seed in (
    ("train", NUM_TRAIN.value, SEED.value),
    ("test", NUM_TEST.value, None),
  ):
    if count:
      with shard_flags.reporting_errors("data_prep.smmnist"):
        smmnist.write_smmnist_shards(
          shard_flags.OUTPUT_DIR.value,
          split,
          count,
          SEQUENCE_LENGTH.value,
          image_size=IMAGE_SIZE.value,
          num_digits=NUM_DIGITS.value,
          seed=seed,
          mnist_dir=MNIST_DIR.value,
          split_test_file_at=SPLIT_TEST_FILE_AT.value,
          style=STYLE.value,
          sequences_per_shard=shard_flags.SEQUENCES_PER_SHARD.value,
          compression=shard_flags.compression(),
          num_workers=shard_flags.NUM_WORKERS.value,
        )


if __name__ == "__main__":
  flags.mark_flag_as_required("output_dir")
  app.run(main)
