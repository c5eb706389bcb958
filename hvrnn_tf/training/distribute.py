"""Choosing a tf.distribute strategy, and what only the chief worker does."""

import json
import os

import tensorflow as tf

import gin


@gin.configurable(module="distribute")
def default_strategy() -> tf.distribute.Strategy:
  """TensorFlow's default strategy: no distribution."""
  return tf.distribute.get_strategy()


@gin.configurable(module="distribute")
def local_devices_strategy(device_type: str = "GPU") -> tf.distribute.Strategy:
  """MirroredStrategy over the visible `device_type` devices if there are 2
  or more, else TensorFlow's default strategy (its one GPU, or the CPU).

  The paper configs' strategy (gin/base/paper_recipe.gin): every GPU of the
  machine, the global batch split over them.
  """
  devices = [d.name for d in tf.config.list_logical_devices(device_type)]
  if len(devices) < 2:
    return tf.distribute.get_strategy()
  return tf.distribute.MirroredStrategy(devices)


@gin.configurable(module="distribute")
def mirrored_strategy() -> tf.distribute.Strategy:
  """MirroredStrategy over all local GPUs (the CPU if there are none)."""
  return tf.distribute.MirroredStrategy()


@gin.configurable(module="distribute")
def multi_worker_strategy() -> tf.distribute.Strategy:
  """MultiWorkerMirroredStrategy configured by the TF_CONFIG variable."""
  if "TF_CONFIG" not in os.environ:
    raise ValueError(
      "strategy 'multi_worker' needs the TF_CONFIG environment "
      "variable (cluster and task of this worker)"
    )
  return tf.distribute.MultiWorkerMirroredStrategy()


@gin.configurable(module="distribute")
def one_device_strategy() -> tf.distribute.Strategy:
  """OneDeviceStrategy on the first GPU, else the CPU."""
  gpus = tf.config.list_logical_devices("GPU")
  return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


# The factories by name, for code that picks one from a string (bench, tests);
# gin configs refer to them as @distribute.<name>_strategy.
STRATEGIES = {
  "default": default_strategy,
  "local_devices": local_devices_strategy,
  "mirrored": mirrored_strategy,
  "multi_worker": multi_worker_strategy,
  "one_device": one_device_strategy,
}


def make_strategy(name: str) -> tf.distribute.Strategy:
  """The strategy called `name`, one of STRATEGIES."""
  if name not in STRATEGIES:
    raise ValueError(
      f"Unknown strategy {name!r}; expected one of {tuple(STRATEGIES)}"
    )
  return STRATEGIES[name]()


def agree(strategy: tf.distribute.Strategy, flags: list[bool]) -> list[bool]:
  """Each flag, true if it is true on any worker.

  Workers must stop and save at the same step (saving is collective), but
  signals and clocks are per worker: with multi_worker this all-reduces the
  flags (one small collective); elsewhere they are returned as is.
  """
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return flags
  local = tf.constant([float(f) for f in flags])
  votes = strategy.run(lambda: tf.identity(local))
  total = strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None)
  return [bool(v > 0) for v in total.numpy()]


def task_id(strategy: tf.distribute.Strategy) -> int:
  """This worker's index in a multi-worker cluster (0 elsewhere)."""
  resolver = getattr(strategy.extended, "_cluster_resolver", None)
  if resolver is None or resolver.task_type is None:
    return 0
  return resolver.task_id


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes checkpoints, summaries and samples."""
  resolver = getattr(strategy.extended, "_cluster_resolver", None)
  if resolver is None or resolver.task_type is None:
    return True
  if resolver.task_type == "chief":
    return True
  cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
  return (
    resolver.task_type == "worker"
    and task_id(strategy) == 0
    and ("chief" not in cluster)
  )
