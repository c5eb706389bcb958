"""Main of every Bazel py_test (tests/BUILD): runs one test file under pytest.

Bazel runs a py_test's main as a plain script, from the workspace folder of the
runfiles tree. This hands the test file(s) named on the command line to
pytest with the project's pyproject.toml, so conftest.py fixtures,
parametrize, tmp_path and the default `-m 'not slow'` behave as under
`pytest -q`. Also maps Bazel's test protocol onto pytest:

  XML_OUTPUT_FILE       -> --junitxml (per-test results in bazel-testlogs)
  TEST_TMPDIR           -> --basetemp (tmp_path lives in Bazel's test tmpdir)
  TESTBRIDGE_TEST_ONLY  -> -k (`bazel test --test_filter=EXPR`)

Extra pytest flags: `bazel test //tests:test_vrnn --test_arg=-m --test_arg=slow`
(a later -m replaces pyproject's), `--test_arg=-x`, ...
"""

import os
import sys

import pytest


def main(argv: list[str]) -> int:
  if not os.path.exists("pyproject.toml"):
    sys.exit(
      f"pyproject.toml not found in {os.getcwd()}: the py_test needs "
      "data = [\"//:pyproject.toml\"] (tests/BUILD's :conftest has it)."
    )
  # -n 0: one process per target (Bazel runs targets in parallel itself).
  args = ["-c", "pyproject.toml", "--rootdir", os.curdir, "-q", "-n", "0"]
  if os.environ.get("XML_OUTPUT_FILE"):
    args.append("--junitxml=" + os.environ["XML_OUTPUT_FILE"])
  if os.environ.get("TEST_TMPDIR"):
    args.append(
      "--basetemp=" + os.path.join(os.environ["TEST_TMPDIR"], "pytest")
    )
    # The sandbox makes $HOME read-only; matplotlib would warn and rebuild its
    # font cache in a fresh temporary folder in every process.
    os.environ.setdefault(
      "MPLCONFIGDIR", os.path.join(os.environ["TEST_TMPDIR"], "matplotlib")
    )
  test_filter = os.environ.get("TESTBRIDGE_TEST_ONLY")
  if test_filter:
    args += ["-k", test_filter]
  code = pytest.main(args + argv)
  if code == pytest.ExitCode.NO_TESTS_COLLECTED and not test_filter:
    # Every test of the file deselected by `-m 'not slow'`: nothing failed.
    return 0
  return int(code)


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
