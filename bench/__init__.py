"""Benchmarks of hvrnn_tf (scripts, not timed tests); see bench/README.md.

Each module is a script, ``python -m bench.<name> [--flags]``, that prints a
Markdown table and writes a JSON file with the configuration, the hardware and
the medians of several runs after warm-up:

  bench.train_step      train-step throughput: eager / tf.function / XLA, float32 / mixed_bfloat16
  bench.sampling        sampling frames/s (BAIR protocol), O(T) scaling vs the naive O(T^2) sampler
  bench.input_pipeline  TFRecord / SM-MNIST input throughput vs what the train step consumes
  bench.hardware        FLOPs per train step (XLA HLO), achieved FLOP/s, fraction of measured peak
  bench.memory          peak resident memory per config and batch; largest batch in a budget
  bench.op_profile      where a train step's time goes (TF profiler op times by kind and model part)
  bench.optimizations   the model's optimisations vs the old paths (and proposals): numerics, speed-up
  bench.run_all         runs all of the above, each in its own process
  bench.peer            the authors' PyTorch model vs ours, interleaved (bench/peer_torch_driver.py)
  bench.gpu             one GPU: batch-16 train step fp32 / mixed bf16 / XLA, sampling, memory, MFU
"""
