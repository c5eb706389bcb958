"""Choosing a tf.distribute strategy, and what only the chief worker does."""

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "one_device")


def make_strategy(name: str) -> tf.distribute.Strategy:
  """The strategy called `name`.

  default: TensorFlow's default (no distribution); mirrored: MirroredStrategy
  over all local GPUs (the CPU if there are none); multi_worker:
  MultiWorkerMirroredStrategy configured by the TF_CONFIG environment variable;
  one_device: OneDeviceStrategy on the first GPU, else the CPU.
  """
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    if "TF_CONFIG" not in os.environ:
      raise ValueError("strategy 'multi_worker' needs the TF_CONFIG environment "
                       "variable (cluster and task of this worker)")
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == "one_device":
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
  raise ValueError(f"Unknown strategy {name!r}; expected one of {STRATEGIES}")


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
  return resolver.task_type == "worker" and task_id(strategy) == 0 and (
      "chief" not in cluster)
