"""Tests of the learning-rate and beta schedules and of the optimiser."""

import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.training import config as train_config
from hvrnn_tf.training import schedules
from hvrnn_tf.utils import gin_parsing

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_linear_warmup_ramps_then_stays():
  values = [
    float(schedules.linear_warmup(s, 1.0, 3.0, 10)) for s in (0, 5, 10, 50)
  ]
  np.testing.assert_allclose(values, [1.0, 2.0, 3.0, 3.0])
  assert float(schedules.linear_warmup(0, 0.0, 2.0, 0)) == 2.0


def test_paper_learning_rate_at_global_batch_128():
  # BAIR: 338 steps per epoch at batch 128, 5 warmup epochs.
  warmup = 5 * 338
  schedule = schedules.WarmupLearningRate(2e-5, warmup, global_batch_size=128)
  values = [
    float(schedule(s))
    for s in (0, warmup // 2, warmup, warmup + 1, 100 * warmup)
  ]
  np.testing.assert_allclose(
    values, [2e-5, 9e-5, 1.6e-4, 1.6e-4, 1.6e-4], rtol=1e-6
  )
  assert schedule.scale == 8.0
  assert schedules.WarmupLearningRate(**schedule.get_config()).peak == (
    pytest.approx(1.6e-4)
  )


def test_paper_learning_rate_at_global_batch_16_is_constant():
  schedule = schedules.WarmupLearningRate(2e-5, 1000, global_batch_size=16)
  np.testing.assert_allclose(
    [float(schedule(s)) for s in (0, 500, 1000, 5000)], [2e-5] * 4, rtol=1e-6
  )


def test_learning_rate_below_the_reference_batch_is_constant():
  schedule = schedules.WarmupLearningRate(2e-5, 1000, global_batch_size=4)
  np.testing.assert_allclose(
    [float(schedule(s)) for s in (0, 500, 5000)], [5e-6] * 3, rtol=1e-6
  )
  # smmnist_quick.gin: base 3.75e-4, reference batch 1, batch 8.
  quick = schedules.WarmupLearningRate(3.75e-4, 100, 8, reference_batch_size=1)
  np.testing.assert_allclose(
    [float(quick(0)), float(quick(100))], [3.75e-4, 3e-3], rtol=1e-6
  )


def torch_adam(
  w,
  gradients,
  learning_rates,
  weight_decay,
  beta_1=0.5,
  beta_2=0.9,
  epsilon=1e-8,
):
  """torch.optim.Adam's update (weight_decay coupled, amsgrad off), float64."""
  w = np.asarray(w, np.float64)
  m = np.zeros_like(w)
  v = np.zeros_like(w)
  for t, (g, lr) in enumerate(zip(gradients, learning_rates), start=1):
    g = np.asarray(g, np.float64) + weight_decay * w
    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g * g
    denominator = np.sqrt(v) / np.sqrt(1 - beta_2**t) + epsilon
    w = w - lr / (1 - beta_1**t) * m / denominator
  return w


# Entries 3 and 4 have zero weight and gradients comparable to epsilon: there
# the placement of epsilon (PyTorch's, after the bias correction) matters.
W0 = np.array([0.5, -1.5, 2.0, 0.0, 0.0], np.float32)
GRADIENTS = np.array(
  [
    [0.3, -0.2, 1e-3, 2e-8, -1e-8],
    [-0.1, 0.4, 2e-3, 1e-8, 3e-8],
    [0.2, 0.1, -1e-3, -2e-8, 1e-8],
  ],
  np.float32,
)


@pytest.mark.parametrize("weight_decay", [1e-4, 0.5])
def test_coupled_weight_decay_matches_pytorch_adam(weight_decay):
  schedule = schedules.WarmupLearningRate(1e-2, 2, global_batch_size=32)
  w = tf.Variable(W0)
  optimizer = schedules.TorchAdam(
    learning_rate=schedule,
    beta_1=0.5,
    beta_2=0.9,
    epsilon=1e-8,
    coupled_weight_decay=weight_decay,
  )
  for g in GRADIENTS:
    optimizer.apply_gradients([(tf.constant(g), w)])
  learning_rates = [float(schedule(s)) for s in range(3)]
  np.testing.assert_allclose(learning_rates, [1e-2, 1.5e-2, 2e-2], rtol=1e-6)
  expected = torch_adam(W0, GRADIENTS, learning_rates, weight_decay)
  np.testing.assert_allclose(w.numpy(), expected, rtol=2e-6, atol=1e-9)
  # The decay is not Keras's decoupled one, and epsilon is not Keras's
  # "epsilon hat": stock Adam gives measurably different weights.
  for stock in (
    keras.optimizers.Adam(
      learning_rate=schedule,
      beta_1=0.5,
      beta_2=0.9,
      epsilon=1e-8,
      weight_decay=weight_decay,
    ),
  ):
    w_stock = tf.Variable(W0)
    for g in GRADIENTS:
      stock.apply_gradients([(tf.constant(g), w_stock)])
    assert np.abs(w_stock.numpy() - expected).max() > 1e-4


def test_torch_adam_traces_the_step_scalars_once_for_all_variables():
  """Bias corrections etc. are built once per apply, not per variable (a
  smaller graph, traced faster); every variable still gets torch's update."""
  ws = [tf.Variable(W0 * k) for k in (1.0, -2.0, 0.5)]
  optimizer = schedules.TorchAdam(
    learning_rate=1e-2, beta_1=0.5, beta_2=0.9, coupled_weight_decay=0.5
  )
  optimizer.build(ws)
  apply = tf.function(
    lambda g: optimizer.apply_gradients(
      [(g * (i + 1), w) for i, w in enumerate(ws)]
    )
  )
  graph = apply.get_concrete_function(tf.TensorSpec(W0.shape)).graph
  assert sum(op.type == "Pow" for op in graph.get_operations()) == 2
  for g in GRADIENTS:
    apply(tf.constant(g))
  for i, (w, k) in enumerate(zip(ws, (1.0, -2.0, 0.5))):
    expected = torch_adam(W0 * k, GRADIENTS * (i + 1), [1e-2] * 3, 0.5)
    np.testing.assert_allclose(w.numpy(), expected, rtol=2e-6, atol=1e-9)


def test_torch_adam_rejects_decoupled_weight_decay():
  with pytest.raises(ValueError, match="coupled_weight_decay"):
    schedules.TorchAdam(weight_decay=1e-4)
  config = schedules.TorchAdam(coupled_weight_decay=1e-4).get_config()
  assert config["coupled_weight_decay"] == 1e-4
  assert config["weight_decay"] is None and config["epsilon"] == 1e-8


def _train_optimizer(gin_params):
  """The optimizer a run builds after `--gin_param`s `gin_params`."""
  gin_parsing.parse_gin(gin_params=gin_params)
  config = train_config.TrainConfig(num_steps=1)
  return config.optimizer(1e-2, config.weight_decay)


def test_torch_adam_defaults_to_the_papers_betas():
  optimizer = _train_optimizer([])
  assert (optimizer.beta_1, optimizer.beta_2) == (0.5, 0.9)
  assert optimizer.coupled_weight_decay == 1e-4


def test_gin_selects_the_releases_betas():
  """The release's main.py passes no betas: torch.optim.Adam's (0.9, 0.999).
  The documented bindings select them, and the updates are then torch's with
  those betas."""
  optimizer = _train_optimizer(
    [
      "schedules.torch_adam.beta_1=0.9",  # as docs/TRAINING.md's flags
      "schedules.torch_adam.beta_2=0.999",
    ]
  )
  assert isinstance(optimizer, schedules.TorchAdam)
  assert (optimizer.beta_1, optimizer.beta_2) == (0.9, 0.999)
  assert (optimizer.epsilon, optimizer.coupled_weight_decay) == (1e-8, 1e-4)
  w = tf.Variable(W0)
  for g in GRADIENTS:
    optimizer.apply_gradients([(tf.constant(g), w)])
  expected = torch_adam(
    W0, GRADIENTS, [1e-2] * 3, 1e-4, beta_1=0.9, beta_2=0.999
  )
  # float32: with beta_2 = 0.999 the near-epsilon entries agree to ~3e-6.
  np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5, atol=1e-9)
  paper = torch_adam(W0, GRADIENTS, [1e-2] * 3, 1e-4)
  assert np.abs(paper - expected).max() > 1e-4


# Logical devices must be set up before TensorFlow initialises: a fresh
# process. The replica step is built like Trainer's: each replica's loss is
# its slice's sum divided by the global batch, gradients go through
# Trainer._apply_gradients_if (merge_call + call_for_each_replica), the
# optimizer all-reduces (sums) them. Prints the weights after 3 steps on one
# device and on 2 replicas, each with and without loss scaling.
TWO_REPLICAS = """
import types
import numpy as np, tensorflow as tf, keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from hvrnn_tf.training import schedules
from hvrnn_tf.training.trainer import Trainer

x = np.random.RandomState(0).randn(4, 3).astype(np.float32)
w0 = np.array([0.5, -1.5, 2.0], np.float32)

def run(strategy, loss_scale):
  with strategy.scope():
    w = tf.Variable(w0)
    optimizer = schedules.TorchAdam(learning_rate=1e-2, beta_1=0.5, beta_2=0.9,
                                    epsilon=1e-8, coupled_weight_decay=0.5)
    if loss_scale:
      optimizer = keras.optimizers.LossScaleOptimizer(optimizer,
                                                      initial_scale=2.0 ** 10)
    optimizer.build([w])
  trainer = types.SimpleNamespace(optimizer=optimizer)

  def replica_step(xs):
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.square(xs * w - 1.0)) / 4.0
      scaled = optimizer.scale_loss(loss) if loss_scale else loss
    gradients = tape.gradient(scaled, [w])
    Trainer._apply_gradients_if(trainer, tf.constant(True), gradients, [w])

  @tf.function
  def step(batch):
    strategy.run(replica_step, args=(batch,))

  batches = iter(strategy.experimental_distribute_dataset(
      tf.data.Dataset.from_tensors(x).repeat()))
  for _ in range(3):
    step(next(batches))
  return w.numpy()

mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
for loss_scale in (False, True):
  single = run(tf.distribute.get_strategy(), loss_scale)
  double = run(mirrored, loss_scale)
  print(f"replicas_{int(loss_scale)}", mirrored.num_replicas_in_sync)
  print(f"single_{int(loss_scale)}", *single.tolist())
  print(f"mirrored_{int(loss_scale)}", *double.tolist())
"""


def test_weight_decay_counts_once_on_two_replicas():
  env = {
    **os.environ,
    "PYTHONPATH": str(REPO_ROOT),
    "TF_CPP_MIN_LOG_LEVEL": "2",
  }
  result = subprocess.run(
    [sys.executable, "-c", TWO_REPLICAS],
    cwd=REPO_ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  values = {
    line.split()[0]: [float(v) for v in line.split()[1:]]
    for line in result.stdout.splitlines()
    if line.strip()
  }
  x = np.random.RandomState(0).randn(4, 3)
  w0 = np.array([0.5, -1.5, 2.0], np.float32)
  gradient = lambda w: (w * (x**2).sum(axis=0) - x.sum(axis=0)) / 2
  # Loss sum((x w - 1)^2) / 4 over the global batch: gradient
  # (w sum(x^2) - sum(x)) / 2 (not proportional to w, else Adam's
  # normalisation would hide a wrong decay factor). It depends on w, so the
  # reference steps one at a time.
  gradients, ws = [], [w0.astype(np.float64)]
  for _ in range(3):
    gradients.append(gradient(ws[-1]))
    ws.append(torch_adam(w0, gradients, [1e-2] * len(gradients), 0.5))
  expected = ws[-1]
  # The same with the decay counted twice (once per replica): must differ.
  doubled = w0.astype(np.float64)
  doubled_gradients = []
  for _ in range(3):
    doubled_gradients.append(gradient(doubled) + 0.5 * doubled)
    doubled = torch_adam(w0, doubled_gradients, [1e-2] * 3, 0.5)
  for scaled in (0, 1):
    assert values[f"replicas_{scaled}"] == [2.0]
    np.testing.assert_allclose(values[f"single_{scaled}"], expected, rtol=1e-5)
    np.testing.assert_allclose(
      values[f"mirrored_{scaled}"], values[f"single_{scaled}"], rtol=1e-6
    )
  assert np.abs(np.asarray(values["mirrored_0"]) - doubled).max() > 1e-4
