"""hvrnn_tf's side of bench.peer: the paper's model in a child process.

`python -m bench.peer --child --batch=B ...` runs `child_main`, which serves
OursChild's handlers over bench/peer_torch_driver.py's protocol, as the
release's child does.
"""

import time

from absl import flags

from bench import cli
from bench import peer_torch_driver as driver

# The child's flags (bench.peer and bench.malloc start it with them).
CHILD_FLAGS = flags.FlagValues()
flags.DEFINE_bool("child", False, "Run as the child.", flag_values=CHILD_FLAGS)
flags.DEFINE_integer("batch", None, "Train batch.", flag_values=CHILD_FLAGS)
flags.DEFINE_integer("context_frames", None, "", flag_values=CHILD_FLAGS)
flags.DEFINE_integer("future_frames", None, "", flag_values=CHILD_FLAGS)
flags.DEFINE_integer("n_hid", None, "Base width.", flag_values=CHILD_FLAGS)
flags.mark_flags_as_required(
  ["batch", "context_frames", "future_frames", "n_hid"],
  flag_values=CHILD_FLAGS,
)
flags.DEFINE_string(
  "precision", "fp32", "fp32 or bf16.", flag_values=CHILD_FLAGS
)


def paper_config(n_hid: int, context_frames: int, future_frames: int):
  """gin/bair.gin's model (bench config bair_h3) at base width `n_hid`.

  The release ties the latent channels to n_hid (8, 8, 2 times it); 64 is
  the paper's model, 16 a small one for the smoke tests.
  """
  from bench import common  # pylint: disable=g-import-not-at-top

  return common.model_config(
    "bair_h3",
    n_hid=n_hid,
    latent_channels=(8 * n_hid, 8 * n_hid, 2 * n_hid),
    context_frames=context_frames,
    future_frames=future_frames,
  )


class OursChild:
  """hvrnn_tf's side of the protocol of peer_torch_driver.serve."""

  def __init__(self, batch, context_frames, future_frames, n_hid, precision):
    from bench import common  # pylint: disable=g-import-not-at-top

    start = time.perf_counter()
    self.common = common
    self.config = paper_config(n_hid, context_frames, future_frames)
    self.trainer = common.make_trainer(
      self.config,
      batch,
      precision="mixed_bfloat16" if precision == "bf16" else "float32",
    )
    self.video = common.synthetic_video(self.config, batch)
    self.build_s = time.perf_counter() - start

  def train(self, steps=1, precision=None):
    del precision  # fixed when the Trainer was built
    last = {}

    def step():
      last["loss"] = self.trainer.train_step(self.video)[0]["loss"]
      return last["loss"]

    runs = driver.timed(step, steps, self.common.sync)
    return {"runs_s": runs, "loss": float(last["loss"]) if runs else None}

  def sample(
    self, batch=1, future=28, steps=1, precision=None, iterations=None
  ):
    """`batch` samples x `future` frames of one context sequence, in one call."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    del precision, iterations
    context = self.video[:1, : self.config.context_frames]
    num_future, seed = tf.constant(future), tf.constant([0, 1])
    runs = driver.timed(
      lambda: self.trainer.model.sample(context, num_future, batch, seed),
      steps,
      self.common.sync,
    )
    return {
      "runs_s": runs,
      "batch": batch,
      "future": future,
      "extrapolation_factor": 1.0,
    }

  def flops(self, precision=None):
    from bench import hlo_flops  # pylint: disable=g-import-not-at-top

    del precision
    start = time.perf_counter()
    counts = hlo_flops.train_step_flops(self.trainer, self.video)
    return {**counts, "seconds": time.perf_counter() - start}

  def matmul(self, size=4096, precision="fp32", steps=3):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    from bench import hardware  # pylint: disable=g-import-not-at-top

    dtype = tf.bfloat16 if precision == "bf16" else tf.float32
    peak = hardware.matmul_peak(size, dtype, 1, steps)
    return {
      "kind": "TF " + peak["kind"],
      "flops": peak["flops"],
      "runs_s": peak["timing"]["runs_s"],
      "flops_per_s": peak["flops_per_s"],
    }

  def info(self):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    return {
      "parameters": self.common.num_parameters(
        self.trainer.model.trainable_variables
      ),
      "peak_rss_bytes": driver.peak_rss_bytes(),
      "rss_bytes": driver.rss_bytes(),
      "build_s": self.build_s,
      "tensorflow": tf.__version__,
      "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
    }

  def handlers(self) -> dict:
    return {
      "train": self.train,
      "sample": self.sample,
      "flops": self.flops,
      "matmul": self.matmul,
      "info": self.info,
    }


def child_main(argv, child_class=OursChild) -> None:
  """Serves a `child_class` built from CHILD_FLAGS (bench.malloc's has its own)."""
  args = cli.parse_flags(CHILD_FLAGS, argv, __doc__)
  child = child_class(
    args.batch,
    args.context_frames,
    args.future_frames,
    args.n_hid,
    args.precision,
  )
  driver.serve(child.handlers())
