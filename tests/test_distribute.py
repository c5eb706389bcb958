"""Tests of distributed training: 2 logical CPUs and 2 local worker processes."""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.data import shard_writer
from hvrnn_tf.testing import configs
from hvrnn_tf.training import distribute
from hvrnn_tf.training.config import TrainConfig
from hvrnn_tf.utils import gin_parsing

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}

# Logical devices must be set up before TensorFlow initialises, hence a fresh
# process. It prints the largest difference between a 2-replica Mirrored step
# and a single-device step on the same global batch from the same weights, of
# the "micro" model (hvrnn_tf/testing/configs.py; each step's tracing is most
# of the cost).
MIRRORED_VS_SINGLE = """
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from hvrnn_tf.testing import configs
from hvrnn_tf.training.config import TrainConfig
from hvrnn_tf.training.trainer import Trainer
config = configs.model_config("micro")
video = tf.random.stateless_uniform(
    [4, config.sequence_length, config.image_size, config.image_size, 1],
    seed=[0, 1])
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
recipe = TrainConfig(num_steps=1, batch_size=4, steps_per_epoch=10,
                     learning_rate=2.5e-4, lr_reference_batch=4,
                     lr_warmup_epochs=0, beta=1.0, beta_warmup_epochs=0,
                     weight_decay=1e-4)
trainers = [Trainer(config, recipe, strategy)
            for strategy in (tf.distribute.get_strategy(), mirrored)]
for a, b in zip(*[t.model.trainable_variables for t in trainers]):
  b.assign(a)
initial = [v.numpy() for v in trainers[0].model.trainable_variables]
single_metrics, _ = trainers[0].train_step(video)
batch = next(iter(mirrored.experimental_distribute_dataset(
    tf.data.Dataset.from_tensors(video))))
mirrored_metrics, _ = trainers[1].train_step(batch)
print("replicas", mirrored.num_replicas_in_sync)
print("loss", float(single_metrics["loss"]), float(mirrored_metrics["loss"]))
print("grad_norm", float(single_metrics["grad_norm"]),
      float(mirrored_metrics["grad_norm"]))
print("max_weight_diff", max(
    float(np.abs(a.numpy() - b.numpy()).max()) for a, b in
    zip(*[t.model.trainable_variables for t in trainers])))
print("max_update", max(
    float(np.abs(a.numpy() - b).max()) for a, b in
    zip(trainers[0].model.trainable_variables, initial)))
"""


def _printed_values(script: str) -> dict[str, str]:
  """{name: rest of line} of the "name value..." lines `script` prints, run
  in a fresh process (its own logical devices)."""
  result = subprocess.run(
    [sys.executable, "-c", script],
    cwd=REPO_ROOT,
    env=ENV,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return dict(line.split(" ", 1) for line in result.stdout.splitlines())


def test_mirrored_step_equals_single_device_step():
  values = _printed_values(MIRRORED_VS_SINGLE)
  assert values["replicas"] == "2"
  single, mirrored = map(float, values["loss"].split())
  assert abs(single - mirrored) <= 1e-4 * abs(single)
  # The norm of the gradient summed over replicas, not a sum of norms.
  single, mirrored = map(float, values["grad_norm"].split())
  assert single > 0 and abs(single - mirrored) <= 1e-4 * single
  # The step moved the weights by far more than the two runs differ. The
  # bound is relative to the update: two replicas sum the gradient in another
  # order than one device (float32 round-off, ~1e-7 of the summed terms), and
  # Adam's first step moves a weight by lr * g / (|g| + eps), which amplifies
  # that round-off for gradients near cancellation up to a fraction of lr.
  # Seen: 1.1e-3 of the update under Bazel; 1e-2 leaves room for schedules.
  max_update = float(values["max_update"])
  assert max_update > 1e-4
  assert float(values["max_weight_diff"]) < 1e-2 * max_update


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


TINY = [
  "--gin_file=gin/tiny.gin",
  "--gin_param=train.log_every = 1",
  "--gin_param=train.checkpoint_every = 2",
]


def micro_on_records(data_dir):
  """Gin flags for the "micro" model (hvrnn_tf/testing/configs.py, gin/tiny.gin
  at 8x8: too small for SM-MNIST's digits) on TFRecord shards of random
  frames in `data_dir`."""
  config = configs.model_config("micro")
  frames = np.random.default_rng(0).integers(
    0,
    256,
    (8, config.sequence_length, config.image_size, config.image_size, 1),
    dtype=np.uint8,
  )
  shard_writer.write_shards(
    [{"frames": f} for f in frames], str(data_dir), "train", 4
  )
  bindings = [
    f"model.ModelConfig.{k} = {v!r}"
    for k, v in configs.CONFIGS["micro"][1].items()
  ]
  bindings += [
    "data.make_dataset.source = 'tfrecord'",
    f"data.make_dataset.file_pattern = '{data_dir}/{{split}}-*'",
    "train.image_summary_every = 0",
  ]
  return [f"--gin_param={b}" for b in bindings]


@pytest.mark.slow  # end to end: two worker processes and a coordinator
def test_two_workers_finish_with_identical_weights(tmp_path):
  cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(2)]}
  micro = micro_on_records(tmp_path / "data")
  workdir = tmp_path / "run"
  workers = []
  try:
    for index in range(2):
      tf_config = {
        "cluster": cluster,
        "task": {"type": "worker", "index": index},
      }
      args = (
        TINY
        + micro
        + [
          "--gin_param=train.num_steps = 3",
          "--gin_param=train.strategy = @distribute.multi_worker_strategy",
        ]
      )
      workers.append(
        subprocess.Popen(
          [
            sys.executable,
            "-m",
            "hvrnn_tf.train",
            f"--workdir={workdir}",
            *args,
          ],
          cwd=REPO_ROOT,
          env={**ENV, "TF_CONFIG": json.dumps(tf_config)},
          stdout=subprocess.PIPE,
          stderr=subprocess.STDOUT,
          text=True,
        )
      )
    logs = [w.communicate(timeout=360)[0] for w in workers]
  finally:
    for w in workers:
      w.kill()
  assert [w.returncode for w in workers] == [0, 0], logs[0][-3000:]
  fingerprints = [
    re.findall(r"Weights fingerprint at step 3: (\w+)", log) for log in logs
  ]
  assert fingerprints[0] and fingerprints[0] == fingerprints[1]
  assert all("2 replica(s)" in log for log in logs)
  # Only the chief's checkpoints remain; the other worker's scratch is gone.
  assert tf.train.latest_checkpoint(workdir / "checkpoints").endswith("ckpt-3")
  assert not list(workdir.glob(".worker_*"))


# The paper configs' strategy in a process with 2 logical CPUs and no GPU;
# the model config is built first, as the binaries do (its speed paths look
# at the GPUs without starting TensorFlow's runtime).
LOCAL_DEVICES = """
import tensorflow as tf
from hvrnn_tf.model.config import ModelConfig
ModelConfig()
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from hvrnn_tf.training import distribute
from hvrnn_tf.training.config import TrainConfig
from hvrnn_tf.utils import gin_parsing
print("gpus_default", distribute.local_devices_strategy()
      is tf.distribute.get_strategy())
cpus = distribute.local_devices_strategy("CPU")
print("cpus_replicas", cpus.num_replicas_in_sync)
batch = next(iter(cpus.experimental_distribute_dataset(
    tf.data.Dataset.range(128).batch(128))))
print("per_replica", *[int(b.shape[0])
                       for b in cpus.experimental_local_results(batch)])
"""


def test_local_devices_mirror_two_or_more_and_split_the_global_batch():
  values = _printed_values(LOCAL_DEVICES)
  assert values["gpus_default"] == "True"  # no GPU here: one device
  assert values["cpus_replicas"] == "2"
  assert values["per_replica"] == "64 64"  # global batch 128 over 2 replicas


@pytest.mark.parametrize("name", ["bair.gin", "cityscapes.gin", "smmnist.gin"])
def test_paper_configs_use_every_local_gpu(name):
  gin_parsing.parse_gin([str(REPO_ROOT / "gin" / name)], skip_unknown=True)
  recipe = TrainConfig()
  assert recipe.strategy is distribute.local_devices_strategy
  assert recipe.batch_size == 128


def test_strategy_names():
  assert distribute.make_strategy("default") is tf.distribute.get_strategy()
  assert distribute.is_chief(tf.distribute.get_strategy())
  with pytest.raises(ValueError, match="'mirror'.*mirrored"):
    distribute.make_strategy("mirror")


def test_multi_worker_without_tf_config_is_a_clear_error(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(ValueError, match="TF_CONFIG"):
    distribute.make_strategy("multi_worker")
