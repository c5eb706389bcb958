"""Tests of the training task: optimiser, schedules, precision, XLA."""

import numpy as np
import pytest
import tensorflow as tf

from hvrnn_tf.model import vrnn
from hvrnn_tf.testing import configs
from hvrnn_tf.training import schedules
from hvrnn_tf.training.config import TrainConfig
from hvrnn_tf.training.trainer import Trainer

# The "micro" model (hvrnn_tf/testing/configs.py: 8x8, one latent level, one
# ConvLSTM, 2 + 1 frames):
# tracing the train step is most of each test's cost.
MICRO = configs.model_config("micro")
MICRO_VIDEO = tf.random.stateless_uniform([2, 3, 8, 8, 1], seed=[0, 1])


def tiny_recipe(**overrides):
  """The unit tests' recipe: batch 2, a constant learning rate 1.25e-4, beta 1
  from the start, the paper's weight decay."""
  return TrainConfig(
    **{
      **dict(
        num_steps=1,
        batch_size=2,
        steps_per_epoch=10,
        learning_rate=1.25e-4,
        lr_reference_batch=2,
        lr_warmup_epochs=0,
        beta=1.0,
        beta_warmup_epochs=0,
        weight_decay=1e-4,
      ),
      **overrides,
    }
  )


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_losses_stay_finite(precision):
  # summary_every=1: every step's grad_norm is computed (else NaN).
  trainer = Trainer(MICRO, tiny_recipe(precision=precision, summary_every=1))
  for _ in range(3):
    metrics, reconstruction = trainer.train_step(MICRO_VIDEO)
    grad_norm = float(metrics.pop("grad_norm"))
    assert all(np.isfinite(float(v)) for v in metrics.values())
  # float16's first scaled gradients overflow (grad_norm says so, and the
  # loss scale halves) until the scale fits.
  assert np.isfinite(grad_norm) and grad_norm > 0
  assert reconstruction.dtype == tf.float32
  conv = trainer.model.encoder.stem
  assert conv.compute_dtype == precision.split("_")[1]
  assert conv.kernel.dtype == "float32"  # variables stay float32
  # The global policy is restored once the model is built.
  assert tf.keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.slow  # XLA compiles even the micro model for minutes on CPU
def test_xla_compiled_step_matches_the_plain_step():
  trainers = [
    Trainer(MICRO, tiny_recipe(jit_compile=jit)) for jit in (False, True)
  ]
  for a, b in zip(*[t.model.trainable_variables for t in trainers]):
    b.assign(a)
  plain, compiled = [t.train_step(MICRO_VIDEO)[0]["loss"] for t in trainers]
  np.testing.assert_allclose(plain, compiled, rtol=1e-4)


def test_trainer_uses_the_papers_optimizer_and_schedules():
  trainer = Trainer(
    MICRO,
    tiny_recipe(
      learning_rate=2e-5,
      lr_reference_batch=1,
      lr_warmup_epochs=5,
      beta_warmup_epochs=20,
      precision="mixed_float16",
    ),
  )
  optimizer = trainer.optimizer.inner_optimizer  # inside the loss scaling
  assert isinstance(optimizer, schedules.TorchAdam)
  assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (
    0.5,
    0.9,
    1e-8,
  )
  assert optimizer.coupled_weight_decay == 1e-4
  assert optimizer.weight_decay is None  # no decoupled (AdamW) decay
  # 2e-5 -> 2e-5 * 2 / 1 over 5 epochs of 10 steps; beta over 20 epochs.
  np.testing.assert_allclose(
    [float(trainer.learning_rate(s)) for s in (0, 25, 50, 80)],
    [2e-5, 3e-5, 4e-5, 4e-5],
    rtol=1e-6,
  )
  np.testing.assert_allclose(
    [float(trainer.beta_at(s)) for s in (0, 100, 200, 300)],
    [0.0, 0.5, 1.0, 1.0],
    rtol=1e-6,
  )


def test_step_loss_is_the_models_negative_elbo_and_updates_the_weights():
  trainer = Trainer(MICRO, tiny_recipe())
  noise = trainer.model.noise(vrnn.fold_in([0, 0], trainer.step), 2, 1)
  expected = trainer.model.elbo(MICRO_VIDEO, beta=1.0, noise=noise)
  before = [v.numpy() for v in trainer.model.trainable_variables]
  metrics, _ = trainer.train_step(MICRO_VIDEO)
  np.testing.assert_allclose(metrics["loss"], expected.loss, rtol=1e-5)
  np.testing.assert_allclose(
    metrics["nll"] + metrics["kl"], expected.loss, rtol=1e-5
  )
  assert trainer.current_step == 1 and float(metrics["nonfinite"]) == 0
  assert any(
    np.abs(a - b.numpy()).max() > 0
    for a, b in zip(before, trainer.model.trainable_variables)
  )


def test_batch_not_divisible_by_replicas_is_a_clear_error():
  class TwoReplicas:
    num_replicas_in_sync = 2

  with pytest.raises(
    ValueError,
    match=r"train.batch_size=3 must be divisible "
    r"by the number of replicas \(2\)",
  ):
    Trainer(MICRO, tiny_recipe(batch_size=3), TwoReplicas())


def test_a_nonfinite_gradient_element_is_caught_even_with_a_finite_loss():
  trainer = Trainer(MICRO, tiny_recipe())
  ones = tf.ones([3, 4])
  check = lambda loss, *grads: float(trainer._nonfinite(loss, list(grads)))  # pylint: disable=protected-access
  assert check(tf.constant(2.0), ones, None, -ones) == 0.0
  for bad in (np.inf, -np.inf, np.nan):
    gradient = tf.tensor_scatter_nd_update(ones, [[1, 2]], [bad])
    assert check(tf.constant(2.0), ones, gradient) == 1.0, bad
    assert check(tf.constant(bad), ones) == 1.0, bad
  # +inf and -inf in one tensor: their sum is NaN, still caught.
  both = tf.constant([np.inf, -np.inf, 1.0])
  assert check(tf.constant(2.0), both) == 1.0


def test_given_noise_steps_as_the_runs_own_draws():
  """train_step_with_noise(video, the noise train_step would draw) is train_step."""
  trainers = [Trainer(MICRO, tiny_recipe()) for _ in range(2)]
  for a, b in zip(*[t.model.trainable_variables for t in trainers]):
    b.assign(a)
  own, _ = trainers[0].train_step(MICRO_VIDEO)
  b = trainers[1]
  noise = b.model.noise(
    vrnn.fold_in([b.seed, 0], b.step), b.batch_size, MICRO.future_frames
  )
  given, _ = b.train_step_with_noise(MICRO_VIDEO, noise)
  np.testing.assert_allclose(
    float(given["loss"]), float(own["loss"]), rtol=1e-6
  )
  assert int(b.step.numpy()) == 1


def test_grad_norm_is_the_gradients_global_norm_on_summary_steps():
  trainer = Trainer(MICRO, tiny_recipe(num_steps=5, summary_every=2))
  variables = trainer.model.trainable_variables
  norms = []
  for _ in range(3):
    noise = trainer.model.noise(vrnn.fold_in([0, 0], trainer.step), 2, 1)
    with tf.GradientTape() as tape:
      loss = trainer.model.elbo(MICRO_VIDEO, beta=1.0, noise=noise).loss
    expected = tf.linalg.global_norm(tape.gradient(loss, variables))
    metrics, _ = trainer.train_step(MICRO_VIDEO)
    norms.append((float(metrics["grad_norm"]), float(expected)))
  assert np.isnan(norms[0][0]) and np.isnan(norms[2][0])  # steps 1, 3
  np.testing.assert_allclose(*norms[1], rtol=1e-5)  # step 2
  assert norms[1][0] > 0
