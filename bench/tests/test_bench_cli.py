"""bench.cli: each bench's flags, parsed from their defaults."""

from absl import flags
import pytest

from bench import cli


def test_flags_are_parsed_from_their_defaults_each_time(tmp_path):
  values = cli.define_flags("example")
  assert cli.parse_flags(values, ["--repeats=5"], "doc").repeats == 5
  parsed = cli.parse_flags(values, [f"--output={tmp_path}/x.json"], "doc")
  assert parsed.repeats == 3 and parsed.output == f"{tmp_path}/x.json"
  with pytest.raises(flags.Error, match="extra"):
    cli.parse_flags(values, ["extra"], "doc")


def test_lists_drop_blanks():
  assert cli.csv_list(" a, b,,") == ["a", "b"]
  assert cli.int_list("1, 2,") == [1, 2]


def test_help_prints_the_doc_and_the_flags(capsys):
  with pytest.raises(SystemExit):
    cli.parse_flags(cli.define_flags("example"), ["--help"], "The doc.")
  out = capsys.readouterr().out
  assert out.startswith("The doc.") and "--repeats" in out
