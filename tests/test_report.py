"""The report of a study: report.md, results.json and plots, from results of
two rows over two seeds (no training)."""

import json

from hvrnn_tf.experiments import report
from hvrnn_tf.experiments import scales
from hvrnn_tf.experiments import studies


def _result(levels, test_elbo, ssim, command="first"):
  return {
    "command": command,
    "finished": "2026-01-01 10:00 UTC",
    "num_params": 12_345,
    "train_seconds": 60.0,
    "eval_seconds": 30.0,
    "train": {"neg_elbo": test_elbo - 5},
    "test": {"neg_elbo": test_elbo, "nll": test_elbo - 2, "kl": 2.0},
    "kl_per_level": [2.0 / levels] * levels,
    "active": [1] * levels,
    "maximally_active": [0] * levels,
    "channels": [4] * levels,
    "ssim": ssim,
    "psnr": 14.0,
    "ssim_per_timestep": [ssim, ssim - 0.1],
    "num_test_sequences": 4,
  }


RESULTS = {
  "levels_1": {0: _result(1, 300.0, 0.4), 1: _result(1, 310.0, 0.5)},
  "levels_1_8_32": {
    0: _result(3, 250.0, 0.6),
    1: _result(3, 260.0, 0.7, command="second"),
  },
}


def test_report_tables_claims_plots_and_json(tmp_path):
  study = studies.STUDIES["hierarchy"]
  scale = scales.load("tiny")
  markdown = report.write_report(
    study,
    scale,
    "smmnist",
    RESULTS,
    str(tmp_path),
    "the command",
    "some digits",
    "2026-01-01 09:00 UTC",
    120.0,
  )
  assert markdown == (tmp_path / "report.md").read_text()
  assert markdown.startswith(
    "# Ablation study: Table 2: number of latent levels\n"
  )
  assert "by `the command` (started 2026-01-01 09:00 UTC, 2.0 min" in markdown
  assert "- 3 row run(s) by `first`" in markdown
  assert "- 1 row run(s) by `second`" in markdown
  assert "training + evaluation time of the rows reported: 6.0 min" in markdown
  assert "32x32, 2 -> 2 frames; some digits" in markdown
  # Mean ± std over seeds; the paper's -ELBO from hvrnn_tf.experiments.paper.
  assert (
    "| [1, 8, 32] | 12k | 250.0 ± 5.0 | 255.0 ± 5.0 | 253.0 ± 5.0 | "
    "2.000 ± 0.000 | 0.667 ± 0.000 / 0.667 ± 0.000 / 0.667 ± 0.000 | "
    "1 / 1 / 1 of 4 / 4 / 4 | 0 / 0 / 0 | 0.650 ± 0.050 | 14.0 ± 0.0 | "
    "883 / 1162 | 1.0 min |"
  ) in markdown
  assert "| [1] | 1 | 305.0 | 310.0 | 1 | 0.5000 | 14.00 |" in markdown
  assert "| [1, 8] |" not in markdown  # rows that did not run
  assert (
    "- **the hierarchical model's samples beat the single-level model "
    "trained with the same budget on best-of-N SSIM: held**"
  ) in markdown
  assert "best-of-N SSIM: [1, 8, 32] > [1] — held (2/2 seeds)" in markdown
  for plot in report.PLOTS:
    assert (tmp_path / plot).stat().st_size > 0
    assert f"![{plot}]({plot})" in markdown
  stored = json.loads((tmp_path / "results.json").read_text())
  assert stored["scale"]["description"] == scale.description
  assert stored["results"]["levels_1"]["1"]["test"]["neg_elbo"] == 310.0
  verdicts = {
    c["statement"].split(" (")[0]: c["verdict"] for c in stored["claims"]
  }
  assert verdicts["more latent levels -> lower test ELBO"] == (
    "not run (rows missing)"
  )  # [1, 8] did not run
  assert stored["claims"][-1]["comparisons"][0]["per_seed"] == [
    [0.6, 0.4],
    [0.7, 0.5],
  ]


def test_no_plots_without_results(tmp_path):
  assert (
    report.write_plots(studies.STUDIES["hierarchy"], {}, str(tmp_path)) == []
  )
  assert not list(tmp_path.iterdir())
