"""bench.early_gradients: a model's early backward ops, as a table and JSON."""

from bench import early_gradients


def test_model_case_cli_table(tmp_path):
  output = tmp_path / "early.json"
  record = early_gradients.main(
    ["--cases=micro:2", f"--output={output}", "--top=3"]
  )
  (result,) = record["results"]
  assert result["config"] == "micro" and result["batch"] == 2
  assert result["total_mib"] == sum(g["mib"] for g in result["groups"])
  assert output.exists()
