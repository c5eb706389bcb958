"""Video datasets for the hierarchical VRNN.

Entry point (gin: `data.make_dataset`):
  inputs.make_dataset(split, batch_size, sequence_length, image_size, channels,
                      source="smmnist", file_pattern=None, mnist_dir=None,
                      seed=0, shuffle_buffer=256, num_test_sequences=256,
                      cache=False, compression=None, skip_corrupt=False)
      -> float32 [B, T, S, S, C] in [0, 1]. "train": infinite, shuffled,
      random T-frame windows; "test": finite, fixed order, first T frames.
      "{split}" in file_pattern is replaced by the split.
  inputs.dataset_for_config(config, split, batch_size, seed=None,
                            future_frames=None, **overrides)
      -> make_dataset with the model config's image_size, channels and
      context_frames + future_frames; errors name the ModelConfig settings.
  inputs.skipped_records_counter() -> int64 tf.Variable: records skipped
      with skip_corrupt=True (for a TensorBoard scalar).

Building blocks:
  digits.load_digits(mnist_dir=None, split="train", download=True)
      -> (uint8 [N, 28, 28], source): MNIST IDX files, else TFDS, else
      scikit-learn's 8x8 digits upsampled (offline stand-in, with a warning).
  smmnist.StochasticMovingMnist(digits, image_size=64, num_digits=2,
                                max_speed=4, seed=0)
      .sequence(index, length) -> (uint8 [T, S, S, 1], int64 [T, digits, 2])
  smmnist.smmnist_dataset(digits, sequence_length, image_size=64,
                          num_digits=2, seed=0, num_sequences=None)
      -> tf.data.Dataset of uint8 [T, S, S, 1]
  smmnist.write_smmnist_shards(output_dir, split, num_sequences,
                               sequence_length, image_size=64, num_digits=2,
                               seed=None, mnist_dir=None,
                               sequences_per_shard=256, compression=None,
                               num_workers=1) -> shard paths
  records: the sequence TFRecord format shared by all datasets.
      serialize_sequence({"frames": uint8 [T, H, W, C], <extra>: array})
          -> bytes
      parse_sequence(serialized, extra_names=())
          -> {"frames": uint8 [T, H, W, C], <extra>: float32}
      read_metadata(shard_paths) -> metadata dict, or None for foreign files.
  tfrecord_reader.tfrecord_frames(train, sequence_length, shape, file_pattern,
                                  seed, shuffle_buffer, cache, compression,
                                  skip_counter)
      -> tf.data.Dataset of checked uint8 [T, H, W, C] windows of the shards.
  shard_writer.write_shards(sequences, output_dir, prefix,
                            sequences_per_shard, compression=None, info=None,
                            num_workers=1) -> shard paths
      (atomic, resumable; metadata JSON written last)

Converting BAIR, Cityscapes and SM-MNIST to shards: `python -m data_prep.*`.
"""
