"""The paper's claims: verdicts count seeds, and only rows that ran are
compared."""

from hvrnn_tf.experiments import claims
from hvrnn_tf.experiments import studies


def _result(train_elbo, test_elbo, active, ssim, psnr=20.0):
  return {
    "train": {"neg_elbo": train_elbo},
    "test": {"neg_elbo": test_elbo},
    "active": active,
    "ssim": ssim,
    "psnr": psnr,
  }


def _by_statement(found):
  return {c.statement.split(" (")[0]: c for c in found}


def test_hierarchy_claims_count_seeds():
  study = studies.STUDIES["hierarchy"]
  results = {
    "levels_1": {
      0: _result(100, 110, [1], 0.5),
      1: _result(100, 110, [1], 0.6),
    },
    "levels_1_8": {
      0: _result(90, 100, [1, 2], 0.5),
      1: _result(90, 120, [1, 2], 0.6),
    },
    "levels_1_8_32": {
      0: _result(80, 95, [1, 2, 3], 0.4),
      1: _result(95, 125, [1, 2, 3], 0.5),
    },
    "levels_1_8_16_32": {
      0: _result(79, 94, [1, 2, 3, 4], 0.4),
      1: _result(70, 140, [1, 2, 3, 4], 0.5),
    },
  }
  found = _by_statement(claims.check_claims(study, results))
  train = found["more latent levels -> lower train ELBO"]
  assert [c.verdict for c in train.comparisons] == [
    "held (2/2 seeds)",
    "inconclusive (1/2 seeds)",
  ]
  assert train.verdict == "partly held / inconclusive"
  ssim = found[
    "the hierarchical model's samples beat the single-level "
    "model trained with the same budget on best-of-N SSIM"
  ]
  assert ssim.verdict == "did not hold"
  # Test gains per seed: seed 0: 10, 5, 1 (diminishing); seed 1: -10, -5, -15.
  returns = found[
    "diminishing returns: each added level gains less than the one before"
  ]
  assert returns.verdict == "inconclusive"
  assert (
    "1/2 seeds" in returns.note and "paper: +224, +151, -94" in returns.note
  )
  fourth = found[
    "a 4th level does not help: [1,8,32] has a lower test ELBO than [1,8,16,32]"
  ]
  assert fourth.comparisons[0].verdict == "inconclusive (1/2 seeds)"
  assert fourth.comparisons[0].paper == (
    1162,
    1256,
  )  # hvrnn_tf.experiments.paper's

  one_seed = {k: {0: v[0]} for k, v in results.items()}
  found = claims.check_claims(study, one_seed)
  assert found[0].comparisons[0].verdict == "held (1 seed)"
  assert found[0].verdict == "held"


def test_missing_rows_leave_claims_unchecked():
  study = studies.STUDIES["hierarchy"]
  found = _by_statement(
    claims.check_claims(study, {"levels_1": {0: _result(100, 110, [1], 0.5)}})
  )
  assert found["more latent levels -> lower test ELBO"].verdict == (
    "not run (rows missing)"
  )
  assert (
    found[
      "diminishing returns: each added level gains less than the one before"
    ].note
    == "needs all four rows"
  )
  assert len(found) == 3  # no 4th-level or SSIM claim without their rows


def test_training_claims_compare_active_units():
  study = studies.STUDIES["training"]
  results = {
    "naive": {0: _result(10, 10, [0, 1, 0], 0.5)},
    "beta_warmup_dense": {0: _result(9, 9, [1, 3, 2], 0.5)},
  }
  found = claims.check_claims(study, results)
  assert found[0].verdict == "held"
  assert found[0].comparisons[0].per_seed == [(6, 1)]
  assert found[1].verdict == "held"  # only the rows that ran are compared
  assert found[1].comparisons[0].paper == (883, 1127)


def test_likelihood_claims_chain_the_rows_and_describe_them():
  study = studies.STUDIES["likelihood"]
  results = {
    key: {0: _result(elbo, elbo, [1], 0.5)}
    for key, elbo in (
      ("convlstm1", 40),
      ("convlstm3", 30),
      ("convlstm6", 35),
      ("convlstm6_wider", 20),
    )
  }
  test = claims.check_claims(study, results)[1]
  assert [c.verdict for c in test.comparisons] == [
    "held (1 seed)",
    "did not hold (1 seed)",
    "held (1 seed)",
  ]
  assert test.verdict == "partly held / inconclusive"
  labels = {r.key: r.label for r in study.rows}
  assert test.comparisons[0].describe(labels) == (
    "test -ELBO: 3 ConvLSTM < 1 ConvLSTM — held (1 seed) [30 vs 40; paper "
    "2355 vs 3826]"
  )
