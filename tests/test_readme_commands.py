"""The README's command sequence as a user types it, and every documented command.

test_readme_sequence runs train, resume, sample, eval, export and
saved_model_cli one after the other at tiny scale with relative paths, from a
directory outside the repository (and the resume from the repository root).
test_documented_commands_exist checks every `python -m MODULE --flag ...` in
the README and docs against the flags MODULE really defines, and every
`--gin_param=eval.x=...` (sample., export., train.) against the settings of
that config.
"""

import ast
import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
DOCS = [
  "README.md",
  "docs/TRAINING.md",
  "docs/EVALUATION.md",
  "docs/RELIABILITY.md",
  "docs/PERFORMANCE.md",
  "docs/BAZEL.md",
  "docs/TESTING.md",
  "docs/REPRODUCTION.md",
  "docs/RESULTS.md",
  "docs/ARCHITECTURE.md",
  "bench/README.md",
]


def _run(args, cwd, timeout=300):
  env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run(
    args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
  )
  assert result.returncode == 0, (
    args,
    result.stdout[-3000:],
    result.stderr[-3000:],
  )
  return result


def _python(module, *flags, cwd):
  return _run([sys.executable, "-m", module, *flags], cwd)


@pytest.mark.slow
def test_readme_sequence(tmp_path):
  user_dir = tmp_path / "somewhere"
  user_dir.mkdir()
  workdir = "runs/tiny"
  mnist = REPO_ROOT.parent / "shared" / "data" / "mnist"
  has_mnist = (mnist / "t10k-images-idx3-ubyte.gz").exists()

  def mnist_flags(cwd):
    """Relative to `cwd`, as a user types it; the run records it absolute."""
    return (
      [
        f"--mnist_dir={os.path.relpath(mnist, cwd)}",
        "--gin_param=data.make_dataset.split_test_file_at=8000",
      ]
      if has_mnist
      else []
    )

  # The workdir defaults to runs/<gin file stem>.
  _python(
    "hvrnn_tf.train",
    "--gin_file=tiny.gin",
    "--gin_param=train.num_steps=4",
    "--gin_param=train.checkpoint_every=2",
    *mnist_flags(user_dir),
    cwd=user_dir,
  )
  # Re-running resumes; here from the repository root with a relative path.
  relative = os.path.relpath(user_dir / workdir, REPO_ROOT)
  resumed = _python(
    "hvrnn_tf.train",
    "--gin_file=gin/tiny.gin",
    f"--workdir={relative}",
    "--gin_param=train.num_steps=6",
    *mnist_flags(REPO_ROOT),
    cwd=REPO_ROOT,
  )
  assert re.search(r"Resumed from \S*ckpt-4 at step 4", resumed.stderr)
  _python(
    "hvrnn_tf.sample",
    f"--workdir={workdir}",
    "--gin_param=sample.num_sequences=1",
    "--gin_param=sample.num_samples=2",
    cwd=user_dir,
  )
  assert list((user_dir / workdir / "samples" / "step_6").glob("*.gif"))
  evaluated = _python(
    "hvrnn_tf.eval",
    f"--workdir={workdir}",
    "--gin_param=eval.num_samples=2",
    "--gin_param=eval.max_sequences=2",
    "--gin_param=eval.batch_size=2",
    "--gin_param=eval.i3d_handle=''",
    "--gin_param=eval.lpips_weights=''",
    "--gin_param=eval.output_dir='eval_out'",
    cwd=user_dir,
  )
  metrics = json.loads((user_dir / "eval_out" / "metrics.json").read_text())
  assert metrics["protocol"]["checkpoint_step"] == 6
  if has_mnist:
    assert metrics["protocol"]["dataset"]["digits"] == (
      f"idx:{mnist / 't10k-images-idx3-ubyte.gz'}[8000:10000]"
    )
    assert "warning" not in metrics
  else:
    assert "stand-in digits" in metrics["warning"]
  assert "ssim" in json.loads(evaluated.stdout.strip().splitlines()[-1])
  _python(
    "hvrnn_tf.export",
    f"--workdir={workdir}",
    "--gin_param=export.export_dir='exports/t'",
    "--gin_param=export.num_future=3",
    "--gin_param=export.num_samples=2",
    cwd=user_dir,
  )
  inputs = dict(
    context=np.zeros([1, 2, 32, 32, 1], np.float32),
    seed=np.array([[1, 2]], np.int32),
  )
  for name, value in inputs.items():
    np.save(user_dir / f"{name}.npy", value)
  ran = _run(
    [
      str(BIN / "saved_model_cli"),
      "run",
      "--dir",
      "exports/t/6",
      "--tag_set",
      "serve",
      "--signature_def",
      "serving_default",
      "--inputs",
      ";".join(f"{name}={name}.npy" for name in inputs),
      "--outdir",
      "served",
    ],
    cwd=user_dir,
  )
  assert "Result for output key frames" in ran.stdout
  # The printed array is abbreviated; the saved output has the whole tensor.
  frames = np.load(user_dir / "served" / "frames.npy")
  assert frames.shape == (1, 2, 3, 32, 32, 1)
  assert np.isfinite(frames).all()


def test_bare_gin_names_resolve_from_anywhere(tmp_path, monkeypatch):
  import gin  # pylint: disable=g-import-not-at-top

  # Registers the configurables the config binds (train.*, data.*).
  from hvrnn_tf.training import task  # noqa: F401
  from hvrnn_tf.utils import gin_parsing  # pylint: disable=g-import-not-at-top

  monkeypatch.chdir(tmp_path)
  # An ablation config whose `include 'gin/bair.gin'` needs the project root.
  gin_parsing.parse_gin(
    ["ablations/table2_hierarchy_1.gin"],
    ["data.make_dataset.file_pattern='bair/{split}-*'"],
  )
  assert list(gin.query_parameter("model.ModelConfig.latent_resolutions")) == [
    1
  ]
  assert gin.query_parameter("data.make_dataset.file_pattern") == str(
    tmp_path / "bair" / "{split}-*"
  )
  with pytest.raises(ValueError, match="no_such.gin"):
    gin_parsing.parse_gin(["no_such.gin"])


def _documented_commands():
  """(doc, module, [flag names], [(config, setting)] of its --gin_param) of
  every `python -m MODULE ...` in the docs."""
  for doc in DOCS:
    text = (REPO_ROOT / doc).read_text()
    text = text.replace("\\\n", " ")  # shell line continuations
    for match in re.finditer(r"python -m ([\w.]+)([^\n`]*)", text):
      module, rest = match.groups()
      if module in ("venv", "pytest"):
        continue
      settings = re.findall(
        r"--gin_param=[\"']?(eval|sample|export|train)\.(\w+)", rest
      )
      yield doc, module, re.findall(r"--(\w+)", rest), settings


def _defined_flags(module):
  """Flag names a module defines: absl DEFINE_* / argparse add_argument calls
  in it and in the project modules it imports (AST, no TensorFlow import)."""
  names, seen, todo = set(), set(), [module]
  while todo:
    current = todo.pop()
    path = REPO_ROOT / (current.replace(".", "/") + ".py")
    if current in seen or not path.exists():
      continue
    seen.add(current)
    for node in ast.walk(ast.parse(path.read_text())):
      if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and (
          node.func.attr.startswith("DEFINE_")
          or node.func.attr == "add_argument"
        )  # absl or argparse
        and node.args
        and isinstance(node.args[0], ast.Constant)
      ):
        names.add(node.args[0].value.lstrip("-"))
      elif isinstance(node, ast.ImportFrom) and node.module:
        todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
      elif isinstance(node, ast.Import):
        todo += [a.name for a in node.names]
  return names


def _settings():
  """gin name -> the settings of the binaries' configs."""
  # pylint: disable=g-import-not-at-top
  from hvrnn_tf.evaluation.config import EvalConfig
  from hvrnn_tf.evaluation.config import SampleConfig
  from hvrnn_tf.serving.config import ExportConfig
  from hvrnn_tf.training.config import TrainConfig

  configs = dict(
    eval=EvalConfig, sample=SampleConfig, export=ExportConfig, train=TrainConfig
  )
  return {
    name: {f.name for f in dataclasses.fields(config)}
    for name, config in configs.items()
  }


def test_documented_commands_exist():
  commands = list(_documented_commands())
  assert len(commands) > 20
  known = _settings()
  problems = []
  for doc, module, flags, settings in commands:
    problems += [
      f"{doc}: {module} has no setting {config}.{name}"
      for config, name in settings
      if name not in known[config]
    ]
    path = REPO_ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
      problems.append(f"{doc}: no module {module}")
      continue
    defined = _defined_flags(module) | {"help", "helpfull"}
    problems += [
      f"{doc}: {module} has no --{flag}"
      for flag in flags
      if flag not in defined
    ]
  assert not problems, problems
