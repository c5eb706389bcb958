"""Draws docs/architecture.png: the packages of hvrnn_tf as layers, and the
flow of one training step and one evaluation through them.

    python tools/architecture_diagram.py [--output=docs/architecture.png]

tests/test_architecture_doc.py checks that every package drawn here exists.
"""

import argparse
import pathlib
import textwrap

import matplotlib

matplotlib.use("Agg")
from matplotlib import patches  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Top to bottom: each row's boxes (package, what it holds); a row uses those
# below it.
LAYERS = (
  (
    (
      "binaries",
      "hvrnn_tf.train, eval, sample, export, convert: absl + gin mains",
    ),
    ("experiments", "paper's ablations: studies, scales, runner"),
  ),
  (
    ("training", "TrainConfig, Trainer, loop, hooks, checkpointing"),
    ("evaluation", "EvalConfig, protocol, metrics, plots"),
    ("serving", "ExportConfig, SavedModel signatures"),
  ),
  (("model", "ModelConfig, encoder, latents, decoder, VRNN, losses"),),
  (
    ("ops", "speed paths: GroupNorm, shared kernel, shapes"),
    ("data", "make_dataset: SM-MNIST, TFRecords"),
    ("utils", "gin_parsing, validation, paths, atomic_write"),
  ),
)

TRAIN_STEP = (
  "train.py: gin -> TrainConfig, ModelConfig",
  "data.inputs: a batch of video",
  "training.loop.run_loop:\nhooks may ask to stop / save",
  "training.trainer.train_step",
  "model.vrnn: encoder -> posterior / prior\nlatents -> decoder (teacher forcing)",
  "model.losses.negative_elbo",
  "gradients; skip if non-finite;\nschedules.torch_adam applies them",
  "training.hooks: summaries, checkpoints",
)

EVALUATION = (
  "eval.py: gin -> EvalConfig",
  "training.workdir: operative_config.gin\n+ checkpoint -> model",
  "data.inputs: the test split",
  "evaluation.protocol: ELBO (beta = 1),\nbest-of-N samples (HierarchicalVRNN.sample)",
  "evaluation.metrics: SSIM, PSNR,\nLPIPS, FVD, KL per channel",
  "metrics.json, plots, GIFs",
)


def _box(ax, x, y, w, h, title, body, color):
  ax.add_patch(
    patches.FancyBboxPatch(
      (x, y), w, h, boxstyle="round,pad=0.01", fc=color, ec="0.3", lw=0.8
    )
  )
  ax.text(
    x + w / 2,
    y + h * 0.64,
    title,
    ha="center",
    va="center",
    fontsize=9,
    weight="bold",
  )
  ax.text(
    x + w / 2,
    y + h * 0.3,
    textwrap.fill(body, int(w * 75)),
    ha="center",
    va="center",
    fontsize=6.5,
  )


def draw_layers(ax) -> None:
  """The package rows, top (binaries) to bottom (ops, data, utils)."""
  colors = ("#dbe9f6", "#e3f1dd", "#fbe7c6", "#eeeeee")
  height, gap = 0.17, 0.07
  for row, (boxes, color) in enumerate(zip(LAYERS, colors)):
    y = 1 - (row + 1) * (height + gap) + gap / 2
    width = (1 - 0.02 * (len(boxes) - 1)) / len(boxes)
    for i, (name, body) in enumerate(boxes):
      _box(ax, i * (width + 0.02), y, width, height, name, body, color)
    if row:
      ax.annotate(
        "",
        xy=(0.5, y + height + 0.005),
        xytext=(0.5, y + height + gap - 0.005),
        arrowprops={"arrowstyle": "<-", "color": "0.4"},
      )
  ax.set_title(
    "hvrnn_tf: packages by layer (each uses those below)", fontsize=10
  )


def draw_flow(ax, steps, title, color) -> None:
  """`steps` as a chain of boxes, top to bottom."""
  height = 1 / len(steps)
  for i, text in enumerate(steps):
    y = 1 - (i + 1) * height
    ax.add_patch(
      patches.FancyBboxPatch(
        (0.02, y + 0.12 * height),
        0.96,
        0.76 * height,
        boxstyle="round,pad=0.01",
        fc=color,
        ec="0.4",
        lw=0.6,
      )
    )
    ax.text(0.5, y + height / 2, text, ha="center", va="center", fontsize=6.5)
    if i:
      ax.annotate(
        "",
        xy=(0.5, y + 0.88 * height),
        xytext=(0.5, y + 1.12 * height),
        arrowprops={"arrowstyle": "->", "color": "0.3"},
      )
  ax.set_title(title, fontsize=10)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument(
    "--output", default=str(ROOT / "docs" / "architecture.png")
  )
  args = parser.parse_args()
  fig = plt.figure(figsize=(12, 5.2), dpi=90)
  grid = fig.add_gridspec(1, 3, width_ratios=(2.2, 1, 1), wspace=0.08)
  axes = [fig.add_subplot(g) for g in grid]
  draw_layers(axes[0])
  draw_flow(axes[1], TRAIN_STEP, "one training step", "#e3f1dd")
  draw_flow(axes[2], EVALUATION, "one evaluation", "#fbe7c6")
  for ax in axes:
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(0, 1)
    ax.axis("off")
  fig.savefig(args.output, bbox_inches="tight", metadata={"Software": None})
  print(f"Wrote {args.output}")


if __name__ == "__main__":
  main()
