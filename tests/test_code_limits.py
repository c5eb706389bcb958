"""Size limits for the next engineer (docs/ARCHITECTURE.md): no function in hvrnn_tf/
or data_prep/ over 60 lines of body (docstring excluded), no module over 450
lines."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("hvrnn_tf", "data_prep")
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 450


def _modules():
  for package in PACKAGES:
    yield from sorted((ROOT / package).rglob("*.py"))


def _body_lines(function: ast.FunctionDef) -> int:
  body = function.body
  has_docstring = (
    isinstance(body[0], ast.Expr)
    and isinstance(body[0].value, ast.Constant)
    and isinstance(body[0].value.value, str)
  )
  if has_docstring:
    if len(body) == 1:
      return 0
    body = body[1:]
  return function.end_lineno - body[0].lineno + 1


def test_no_function_is_longer_than_the_limit():
  long = []
  for path in _modules():
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        lines = _body_lines(node)
        if lines > MAX_FUNCTION_LINES:
          long.append(
            f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
            f"({lines} lines)"
          )
  assert not long, "functions over 60 lines:\n" + "\n".join(long)


def test_no_module_is_longer_than_the_limit():
  long = [
    f"{path.relative_to(ROOT)} ({n} lines)"
    for path in _modules()
    if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
  ]
  assert not long, "modules over 450 lines:\n" + "\n".join(long)


def test_the_measure_counts_body_lines_without_the_docstring():
  function = ast.parse(
    'def f():\n  """Doc.\n\n  More."""\n  a = 1\n  return a\n'
  ).body[0]
  assert _body_lines(function) == 2
