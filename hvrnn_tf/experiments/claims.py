"""The paper's directional claims for each study, checked seed by seed.

Results are {row key: {seed: result}} (hvrnn_tf.experiments.runner); a claim
is made of pairwise comparisons of rows on one metric, each "held", "did not
hold" or "inconclusive" (seeds disagree).
"""

import dataclasses

from hvrnn_tf.experiments import studies

METRICS = {
  # name: (how to read it from a result, lower is better, label)
  "train_elbo": (lambda r: r["train"]["neg_elbo"], True, "train -ELBO"),
  "test_elbo": (lambda r: r["test"]["neg_elbo"], True, "test -ELBO"),
  "active": (lambda r: sum(r["active"]), False, "active latent channels"),
  "ssim": (lambda r: r["ssim"], False, "best-of-N SSIM"),
  "psnr": (lambda r: r["psnr"], False, "best-of-N PSNR"),
}


@dataclasses.dataclass
class Comparison:
  """Whether row `better` beats row `worse` on `metric`, seed by seed."""

  metric: str
  better: str
  worse: str
  per_seed: list  # (value of better, value of worse) per seed
  paper: tuple | None = None  # the paper's (better, worse) values, if any

  @property
  def wins(self) -> int:
    lower = METRICS[self.metric][1]
    return sum((a < b) if lower else (a > b) for a, b in self.per_seed)

  @property
  def verdict(self) -> str:
    """held / did not hold / inconclusive (seeds disagree), with a note when
    there is a single seed."""
    n = len(self.per_seed)
    if self.wins == n:
      verdict = "held"
    elif self.wins == 0:
      verdict = "did not hold"
    else:
      verdict = "inconclusive"
    return verdict + (" (1 seed)" if n == 1 else f" ({self.wins}/{n} seeds)")

  def describe(self, labels) -> str:
    label = METRICS[self.metric][2]
    pairs = ", ".join(f"{_fmt(a)} vs {_fmt(b)}" for a, b in self.per_seed)
    paper = (
      f"; paper {_fmt(self.paper[0])} vs {_fmt(self.paper[1])}"
      if self.paper
      else ""
    )
    relation = "<" if METRICS[self.metric][1] else ">"
    return (
      f"{label}: {labels[self.better]} {relation} {labels[self.worse]}"
      f" — {self.verdict} [{pairs}{paper}]"
    )


def _fmt(x) -> str:
  if isinstance(x, float) and abs(x) < 10:
    return f"{x:.3f}"
  return f"{x:.0f}" if isinstance(x, (int, float)) else str(x)


def compare(results, metric, better, worse, paper=None) -> Comparison:
  """results: {row: {seed: result}}; compares on the seeds both rows have."""
  get = METRICS[metric][0]
  seeds = sorted(set(results[better]) & set(results[worse]))
  return Comparison(
    metric,
    better,
    worse,
    [(get(results[better][s]), get(results[worse][s])) for s in seeds],
    paper,
  )


def _paper_elbo(study: studies.Study, key: str, split: str) -> int:
  return study.row(key).paper_elbo[0 if split == "train" else 1]


@dataclasses.dataclass
class Claim:
  """A directional claim of the paper and the comparisons that test it.

  fixed_verdict: set by claims not made of pairwise comparisons.
  """

  statement: str
  comparisons: list
  note: str = ""
  fixed_verdict: str | None = None

  @property
  def verdict(self) -> str:
    if self.fixed_verdict:
      return self.fixed_verdict
    if not self.comparisons:
      return "not run (rows missing)"
    verdicts = [c.verdict.split(" (")[0] for c in self.comparisons]
    if all(v == "held" for v in verdicts):
      return "held"
    if all(v == "did not hold" for v in verdicts):
      return "did not hold"
    if "held" in verdicts or "inconclusive" in verdicts:
      return "partly held / inconclusive"
    return "did not hold"


def _ran(results, *keys) -> bool:
  return all(k in results and results[k] for k in keys)


def _chain(study, results, keys, metric, split=None) -> list:
  """Comparisons of consecutive rows of `keys`, each better than the one
  before; with the paper's -ELBO of `split` when given."""
  out = []
  for worse, better in zip(keys, keys[1:]):
    if _ran(results, worse, better):
      paper = (
        (_paper_elbo(study, better, split), _paper_elbo(study, worse, split))
        if split
        else None
      )
      out.append(compare(results, metric, better, worse, paper))
  return out


def _likelihood_claims(study, results) -> list:
  keys = [r.key for r in study.rows]
  return [
    Claim(
      f"more decoder capacity -> lower {split} ELBO "
      "(1 < 3 < 6 < 6 wider ConvLSTM)",
      _chain(study, results, keys, f"{split}_elbo", split),
    )
    for split in ("train", "test")
  ]


def _diminishing_returns(study, results) -> Claim:
  """Test -ELBO gain of each added level, checked seed by seed (the
  paper's 4th level even has a negative gain)."""
  keys = [r.key for r in study.rows]
  if not _ran(results, *keys):
    return Claim(
      "diminishing returns: each added level gains less than the one before",
      [],
      "needs all four rows",
    )
  get = METRICS["test_elbo"][0]
  seeds = sorted(set.intersection(*(set(results[k]) for k in keys)))
  gains = []  # per seed: test -ELBO gain of [1,8], [1,8,32], [1,8,16,32]
  for s in seeds:
    values = [get(results[k][s]) for k in keys]
    gains.append([a - b for a, b in zip(values, values[1:])])
  paper = [_paper_elbo(study, k, "test") for k in keys]
  paper_gains = [a - b for a, b in zip(paper, paper[1:])]
  holds = [g[2] < g[1] < g[0] for g in gains]
  verdict = (
    "held"
    if all(holds)
    else "did not hold"
    if not any(holds)
    else "inconclusive"
  )
  note = (
    "test -ELBO gain per added level, per seed: "
    + "; ".join(
      f"seed {s}: " + ", ".join(f"{x:+.1f}" for x in g)
      for s, g in zip(seeds, gains)
    )
    + f" (paper: {', '.join(f'{x:+.0f}' for x in paper_gains)}) — "
    f"{verdict} ({sum(holds)}/{len(holds)} seeds)"
  )
  return Claim(
    "diminishing returns: each added level gains less than the "
    "one before ([1]->[1,8] > [1,8]->[1,8,32] > "
    "[1,8,32]->[1,8,16,32])",
    [],
    note,
    fixed_verdict=verdict,
  )


def _hierarchy_claims(study, results) -> list:
  keys = ["levels_1", "levels_1_8", "levels_1_8_32"]
  claims = [
    Claim(
      f"more latent levels -> lower {split} ELBO ([1] > [1,8] > [1,8,32])",
      _chain(study, results, keys, f"{split}_elbo", split),
    )
    for split in ("train", "test")
  ]
  claims.append(_diminishing_returns(study, results))
  if _ran(results, "levels_1_8_32", "levels_1_8_16_32"):
    claims.append(
      Claim(
        "a 4th level does not help: [1,8,32] has a lower test ELBO than "
        "[1,8,16,32] (the paper's Table 2)",
        [
          compare(
            results,
            "test_elbo",
            "levels_1_8_32",
            "levels_1_8_16_32",
            (
              _paper_elbo(study, "levels_1_8_32", "test"),
              _paper_elbo(study, "levels_1_8_16_32", "test"),
            ),
          )
        ],
      )
    )
  if _ran(results, "levels_1_8_32", "levels_1"):
    psnr = compare(results, "psnr", "levels_1_8_32", "levels_1")
    claims.append(
      Claim(
        "the hierarchical model's samples beat the single-level model "
        "trained with the same budget on best-of-N SSIM",
        [compare(results, "ssim", "levels_1_8_32", "levels_1")],
        "same steps and batch size; the hierarchical model has more "
        "parameters (see the table). Not part of the claim, for context: "
        "best-of-N PSNR [1, 8, 32] vs [1]: "
        + ", ".join(f"{a:.2f} vs {b:.2f}" for a, b in psnr.per_seed),
      )
    )
  return claims


def _training_claims(study, results) -> list:
  comparisons = (
    [compare(results, "active", "beta_warmup_dense", "naive")]
    if _ran(results, "beta_warmup_dense", "naive")
    else []
  )
  claims = [
    Claim(
      "beta warmup + dense connectivity -> more active latent channels "
      "than naive training (paper Fig. 4)",
      comparisons,
      "active: average KL per channel > 0.01 nats on the test set, "
      "summed over levels; per level in the table",
    )
  ]
  for split in ("train", "test"):
    claims.append(
      Claim(
        f"beta warmup + dense -> lower {split} ELBO than each technique "
        "alone and than naive",
        [
          compare(
            results,
            f"{split}_elbo",
            "beta_warmup_dense",
            key,
            (
              _paper_elbo(study, "beta_warmup_dense", split),
              _paper_elbo(study, key, split),
            ),
          )
          for key in ("naive", "beta_warmup", "dense")
          if _ran(results, "beta_warmup_dense", key)
        ],
      )
    )
  return claims


_CLAIMS = {
  "likelihood": _likelihood_claims,
  "hierarchy": _hierarchy_claims,
  "training": _training_claims,
}


def check_claims(study: studies.Study, results) -> list:
  """The paper's directional claims for `study`, checked on `results`
  ({row key: {seed: result}}). Comparisons need both rows to have run."""
  return _CLAIMS[study.name](study, results)
