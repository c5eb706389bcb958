"""What a run shows in TensorBoard, read back from its event files: the
HParams session and experiment, the training curves with the gradient norm,
the sample GIF, the sigma histograms, the profile, and eval's metrics and
per-timestep curves under the tags the experiment declares."""

import os

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
import tensorflow as tf

import gin
from hvrnn_tf.evaluation import evaluate
from hvrnn_tf.evaluation.config import EvalConfig
from hvrnn_tf.training import hparams
from hvrnn_tf.training import task

TRAINING = """
train.num_steps = 4
train.summary_every = 2
train.image_summary_every = 2
train.profile_steps = (2, 3)
train.checkpoint_every = 4
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A workdir trained 4 steps (gin/tiny.gin) and evaluated."""
  workdir = str(tmp_path_factory.mktemp("run"))
  gin.clear_config()
  gin.parse_config_files_and_bindings(["gin/tiny.gin"], TRAINING)
  task.train(workdir)
  metrics = evaluate.run(
    workdir,
    EvalConfig(
      num_samples=2,
      max_sequences=2,
      batch_size=2,
      i3d_handle="",
      lpips_weights="",
      num_visualized=0,
    ),
  )
  gin.clear_config()
  return workdir, metrics


def events(logdir):
  return event_accumulator.EventAccumulator(
    logdir, size_guidance={"tensors": 0}
  ).Reload()


def scalars(accumulator, tag):
  return [
    (e.step, float(tf.make_ndarray(e.tensor_proto)))
    for e in accumulator.Tensors(tag)
  ]


def test_the_workdir_is_an_hparams_session_with_the_experiment(run):
  workdir, _ = run
  root = events(workdir)
  content = root.SummaryMetadata(hparams_metadata.SESSION_START_INFO_TAG)
  session = hparams_metadata.parse_session_start_info_plugin_data(
    content.plugin_data.content
  )
  values = {k: v.WhichOneof("kind") for k, v in session.hparams.items()}
  hparam = lambda name: getattr(session.hparams[name], values[name])
  assert hparam("train.batch_size") == 4
  assert hparam("train.jit_compile") is False
  assert hparam("model.ModelConfig.latent_resolutions") == "(1, 8)"
  assert hparam("train.optimizer") == "schedules.torch_adam"
  assert hparam("train.profile_steps") == "(2, 3)"
  experiment = hparams_metadata.parse_experiment_plugin_data(
    root.SummaryMetadata(hparams_metadata.EXPERIMENT_TAG).plugin_data.content
  )
  assert {h.name for h in experiment.hparam_infos} == set(session.hparams)
  declared = {(m.name.group, m.name.tag) for m in experiment.metric_infos}
  assert {("train", "grad_norm"), ("eval", "elbo/neg_elbo")} <= declared
  assert ("eval", "ssim_best_of_n") in declared


def test_declared_metrics_are_written_where_the_experiment_says(run):
  workdir, metrics = run
  tags = {
    group: set(events(os.path.join(workdir, group)).Tags()["tensors"])
    for group in (hparams.TRAIN_GROUP, hparams.EVAL_GROUP)
  }
  written = {(g, t) for g, group_tags in tags.items() for t in group_tags}
  declared = {(m.group, m.tag) for m in map(_name, hparams.metrics())}
  skipped = {("eval", "fvd_mean"), ("eval", "lpips_best_of_n")}  # off here
  assert declared - skipped <= written
  eval_events = events(os.path.join(workdir, "eval"))
  assert scalars(eval_events, "elbo/neg_elbo") == [
    (4, pytest.approx(metrics["elbo"]["neg_elbo"]))
  ]


def _name(metric):
  return metric.as_proto().name


def test_grad_norm_gif_and_sigma_histograms_in_the_training_logs(run):
  workdir, _ = run
  train = events(os.path.join(workdir, "train"))
  norms = scalars(train, "grad_norm")
  assert [s for s, _ in norms] == [2, 4]
  assert all(np.isfinite(v) and v > 0 for _, v in norms)
  gif = train.Tensors("truth_reconstruction_prior_gif")[-1]
  assert gif.tensor_proto.string_val[2].startswith(b"GIF89a")
  for level in (0, 1):
    for name in ("prior", "posterior"):
      steps = [e.step for e in train.Tensors(f"sigma_level_{level}/{name}")]
      assert steps == [2, 4]


def test_profile_steps_write_a_profile(run):
  workdir, _ = run
  pattern = os.path.join(workdir, "train/plugins/profile/*/*.xplane.pb")
  (profile,) = tf.io.gfile.glob(pattern)
  assert tf.io.gfile.stat(profile).length > 0


def test_eval_per_timestep_curves_are_scalars_by_frame(run):
  workdir, metrics = run
  eval_events = events(os.path.join(workdir, "eval/per_timestep_step_4"))
  for name in ("ssim", "psnr"):
    curve = scalars(eval_events, f"per_timestep/{name}")
    # tiny.gin: 2 context frames, 2 predicted: frames 3 and 4.
    assert [s for s, _ in curve] == [3, 4]
    np.testing.assert_allclose(
      [v for _, v in curve], metrics[name]["per_timestep"], rtol=1e-6
    )
