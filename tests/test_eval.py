"""End to end: a tiny training run, evaluated by hvrnn_tf.eval (the binary)
and hvrnn_tf.evaluation.evaluate (its library), with EvalConfig's checks.

FVD uses test_fvd's random I3D stand-in and LPIPS test_lpips's random weights:
the numbers check the plumbing, never the metrics' values.
"""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
from test_fvd import RandomI3D
from test_lpips import random_states

import gin
from hvrnn_tf.data import shard_writer
from hvrnn_tf.evaluation import evaluate
from hvrnn_tf.evaluation.config import EvalConfig
from hvrnn_tf.evaluation.metrics import image_metrics
from hvrnn_tf.training import task
from hvrnn_tf.training import workdir as workdir_lib

CONTEXT, TRAIN_FUTURE, EVAL_FUTURE = 2, 3, 4
LATENT_CHANNELS = (2, 3)


def _sequences(count=6, length=8, size=16):
  """Squares drifting right over noise, uint8 [length, size, size, 3]."""
  rng = np.random.default_rng(0)
  out = []
  for _ in range(count):
    frames = rng.integers(0, 60, size=(length, size, size, 3), dtype=np.uint8)
    x, y = rng.integers(0, size - 6, size=2)
    for t in range(length):
      frames[t, y : y + 5, (x + t) % (size - 5) : (x + t) % (size - 5) + 5] = (
        255
      )
    out.append({"frames": frames})
  return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("data"))
  shard_writer.write_shards(_sequences(), data_dir, "seq", 3)
  workdir = str(tmp_path_factory.mktemp("run"))
  gin.clear_config()
  gin.parse_config(
    [
      "model.ModelConfig.image_size = 16",
      "model.ModelConfig.channels = 3",
      f"model.ModelConfig.context_frames = {CONTEXT}",
      f"model.ModelConfig.future_frames = {TRAIN_FUTURE}",
      "model.ModelConfig.n_hid = 4",
      "model.ModelConfig.channel_multipliers = (1, 1, 1, 1)",
      "model.ModelConfig.latent_resolutions = (1, 4)",
      f"model.ModelConfig.latent_channels = {LATENT_CHANNELS}",
      "model.ModelConfig.decoder_convlstm_layers = 1",
      "data.make_dataset.source = 'tfrecord'",
      f"data.make_dataset.file_pattern = '{data_dir}/seq-*'",
      "train.train.num_steps = 2",
      "train.train.batch_size = 2",
      "train.train.sample_sequences = 0",
      "train.train.image_summary_every = 0",
      "train.train.checkpoint_every = 1",  # ckpt-1 and ckpt-2
    ]
  )
  task.train(workdir)
  gin.clear_config()
  return workdir


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_binary(*args):
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
  return subprocess.run(
    [sys.executable, "-m", "hvrnn_tf.eval", *args],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    check=False,
  )


@pytest.fixture(scope="module")
def evaluated(workdir, tmp_path_factory):
  """Runs the eval binary once with every metric; returns (output_dir,
  metrics, stdout)."""
  weights = tmp_path_factory.mktemp("weights")
  i3d_dir = str(weights / "i3d")
  i3d = RandomI3D()
  tf.saved_model.save(i3d, i3d_dir, signatures={"default": i3d.__call__})
  lin, vgg = random_states()
  np.savez(weights / "lin.npz", **lin)
  np.savez(weights / "vgg.npz", **vgg)
  output_dir = str(tmp_path_factory.mktemp("eval"))
  settings = {
    "output_dir": repr(output_dir),
    "num_samples": 3,
    "future_frames": EVAL_FUTURE,
    "max_sequences": 4,
    "batch_size": 2,
    "i3d_handle": repr(i3d_dir),
    "i3d_batch_size": 3,
    "lpips_weights": repr(str(weights / "lin.npz")),
    "lpips_backbone_weights": repr(str(weights / "vgg.npz")),
    "lpips_net": "'vgg'",
    "num_visualized": 2,
  }
  result = _run_binary(
    f"--workdir={workdir}",
    *(f"--gin_param=eval.{name} = {value}" for name, value in settings.items()),
  )
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(output_dir, "metrics.json")) as f:
    return output_dir, json.load(f), result.stdout


def test_metrics_json_holds_every_metric_and_the_protocol(evaluated):
  _, metrics, stdout = evaluated
  summary = json.loads(stdout.strip().splitlines()[-1])
  assert summary["ssim"] == metrics["ssim"]["mean"]
  assert summary["fvd"] == metrics["fvd"]["mean"]
  for name in ("ssim", "ssim_svg", "psnr", "lpips"):
    assert len(metrics[name]["per_timestep"]) == EVAL_FUTURE
    assert metrics[name]["num_sequences"] == 4
    assert np.isfinite(metrics[name]["mean"])
  assert -1.0 <= metrics["ssim"]["mean"] <= 1.0 and metrics["lpips"]["mean"] > 0
  assert len(metrics["fvd"]["repeats"]) == 5 and metrics["fvd"]["mean"] > 0
  assert metrics["elbo"]["neg_elbo"] == pytest.approx(
    metrics["elbo"]["nll"] + metrics["elbo"]["kl"]
  )
  assert [len(k) for k in metrics["kl"]["per_channel"]] == list(LATENT_CHANNELS)
  assert metrics["kl"]["channels"] == list(LATENT_CHANNELS)
  assert metrics["skipped"] == {}
  protocol = metrics["protocol"]
  assert protocol["checkpoint_step"] == 2  # not the last batch's index (1)
  assert (
    protocol["num_samples"],
    protocol["context_frames"],
    protocol["future_frames"],
  ) == (3, CONTEXT, EVAL_FUTURE)
  assert protocol["dataset"]["num_sequences"] == 4
  assert protocol["dataset"]["sequence_length"] == CONTEXT + EVAL_FUTURE
  assert protocol["predictor"] == "model"
  assert protocol["lpips"]["net"] == "vgg"
  assert protocol["horizon"].startswith(f"{EVAL_FUTURE} predicted frames")
  assert protocol["dataset"]["digits"] is None  # TFRecords, not SM-MNIST


def test_copy_last_frame_baseline_is_scored_by_the_same_code(workdir, tmp_path):
  config = EvalConfig(
    output_dir=str(tmp_path),
    num_samples=5,
    max_sequences=4,
    batch_size=2,
    future_frames=EVAL_FUTURE,
    i3d_handle="",
    lpips_weights="",
    num_visualized=1,
    baseline="copy_last_frame",
  )
  metrics = evaluate.run(workdir, config, checkpoint=1)
  assert "elbo" not in metrics and "kl" not in metrics
  assert metrics["protocol"]["predictor"] == "copy_last_frame"
  assert metrics["protocol"]["num_samples"] == 1
  assert metrics["protocol"]["checkpoint_step"] == 1
  videos = (
    np.concatenate(
      [v["frames"][: CONTEXT + EVAL_FUTURE] for v in _sequences()[:4]]
    ).reshape(4, CONTEXT + EVAL_FUTURE, 16, 16, 3)
    / 255.0
  )
  truth = videos[:, CONTEXT:]
  copied = np.repeat(videos[:, None, CONTEXT - 1 : CONTEXT], EVAL_FUTURE, 2)
  for name, score in (
    ("ssim", image_metrics.ssim_per_frame),
    ("ssim_svg", image_metrics.ssim_svg_per_frame),
  ):
    expected = score(truth, copied).numpy()[:, 0].mean(axis=0)
    np.testing.assert_allclose(
      metrics[name]["per_timestep"], expected, rtol=1e-5
    )
  assert os.path.exists(tmp_path / "per_timestep.png")
  assert not os.path.exists(tmp_path / "kl_per_channel.png")


def test_plots_and_videos_are_valid_images(evaluated):
  output_dir, _, _ = evaluated
  for name in (
    "per_timestep.png",
    "kl_per_channel.png",
    "sequence_0.png",
    "sequence_1.png",
  ):
    with Image.open(os.path.join(output_dir, name)) as image:
      assert image.format == "PNG"
  for i in range(2):
    with Image.open(os.path.join(output_dir, f"sequence_{i}.gif")) as gif:
      assert gif.n_frames == CONTEXT + EVAL_FUTURE
      assert gif.size == (3 * (16 + 2) - 2, 16)  # truth | best | random
  assert not os.path.exists(os.path.join(output_dir, "sequence_2.gif"))


def test_tensorboard_scalars_are_written(evaluated):
  output_dir, metrics, _ = evaluated
  scalars = {}
  for name in os.listdir(output_dir):
    if name.startswith("events.out.tfevents"):
      for event in tf.compat.v1.train.summary_iterator(
        os.path.join(output_dir, name)
      ):
        for value in event.summary.value:
          scalars[value.tag] = (event.step, tf.make_ndarray(value.tensor))
  step, ssim = scalars["ssim_best_of_n"]
  assert step == 2 and ssim == pytest.approx(metrics["ssim"]["mean"])
  assert {
    "fvd_mean",
    "lpips_best_of_n",
    "elbo/neg_elbo",
    "active_units/level_2",
  } <= set(scalars)


def test_binary_reports_errors_without_a_traceback(workdir, tmp_path):
  missing = _run_binary(f"--workdir={tmp_path}")
  bad_value = _run_binary(f"--workdir={workdir}", "--gin_param=eval.fps=0")
  for result, setting in (
    (missing, "operative_config.gin"),
    (bad_value, "eval.fps"),
  ):
    assert result.returncode != 0
    _, marker, error = result.stderr.partition("hvrnn_tf.eval: error:")
    assert marker and setting in error
    assert "\n" not in error.strip()  # One line, the last.
    assert "Traceback" not in result.stderr
  assert not os.path.exists(os.path.join(workdir, "eval"))


def test_help_lists_only_the_run_flags():
  result = _run_binary("--help")
  own = result.stdout.split("eval.py:", 1)[1].split("Try --helpfull")[0]
  flag_names = [
    line.split(":")[0] for line in own.splitlines() if line.startswith("  --")
  ]
  assert flag_names == [
    "  --checkpoint",
    "  --gin_file",
    "  --gin_param",
    "  --workdir",
  ]


@pytest.mark.parametrize(
  "setting,value",
  [
    ("num_samples", 0),
    ("batch_size", 0),
    ("fvd_repeats", 0),
    ("max_sequences", 1),  # FVD needs two
    ("future_frames", 0),
    ("seed", -1),
    ("lpips_net", "alexnet"),
    ("baseline", "copy_first_frame"),
    ("num_samples", "10"),
  ],
)
def test_bad_settings_name_the_setting(setting, value):
  with pytest.raises(ValueError, match=f"eval.{setting}"):
    EvalConfig(**{setting: value})


def test_gin_binds_the_settings():
  gin.parse_config("eval.num_samples = 7\neval.i3d_handle = ''")
  config = EvalConfig()
  assert (config.num_samples, config.i3d_handle, config.split) == (
    7,
    "",
    "test",
  )
  assert EvalConfig(max_sequences=1, i3d_handle="").max_sequences == 1


def test_a_chosen_checkpoint_is_loaded(workdir):
  latest, step = workdir_lib.load_model(workdir)
  first, first_step = workdir_lib.load_model(workdir, checkpoint=1)
  assert (step, first_step) == (2, 1)
  assert any(
    not np.array_equal(a.numpy(), b.numpy())
    for a, b in zip(latest.trainable_variables, first.trainable_variables)
  )
  with pytest.raises(FileNotFoundError, match="checkpoint=5"):
    workdir_lib.load_model(workdir, checkpoint=5)
