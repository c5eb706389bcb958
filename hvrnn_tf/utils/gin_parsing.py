"""Gin parsing with one-line errors: files, then bindings, reworded so that the
message names the problem and the binding (or file and line) that has it."""

import re
import tokenize

import tensorflow as tf

import gin
from hvrnn_tf.utils import paths

# Gin files on any TF filesystem (a run's operative config in a gs:// workdir).
gin.config.register_file_reader(tf.io.gfile.GFile, tf.io.gfile.exists)


def parse_gin(gin_files=(), gin_params=(), skip_unknown=False) -> None:
  """Parses gin files, then bindings; file bindings are made absolute.

  Gin files are found as given, else in the project's gin/ folder or root
  (paths.register_gin_search_paths).

  Raises:
    ValueError: a one-line message naming the problem and the binding (or
      file and line) that has it.
  """
  paths.register_gin_search_paths()
  sources = [(gin.parse_config_file, f, f"gin file {f}") for f in gin_files]
  sources += [
    (gin.parse_config, b, f"binding {' '.join(b.split())}") for b in gin_params
  ]
  for parse, text, name in sources:
    try:
      parse(text, skip_unknown)
    except _GIN_ERRORS as e:
      raise ValueError(_gin_error_message(e, name)) from e
  paths.absolute_path_bindings()


# What gin raises for bad files and bindings (ImportError: `import x` lines).
_GIN_ERRORS = (
  ValueError,
  OSError,
  TypeError,
  SyntaxError,
  ImportError,
  tokenize.TokenError,
)
# gin's messages, reworded.
_GIN_MESSAGES = (
  (
    r"Configurable '(.+)' doesn't have a parameter named '(.+)'\.",
    r"unknown gin parameter '\2' of '\1'",
  ),
  (
    r"No configurable matching reference '(.+)'\.",
    r"unknown gin configurable reference '\1'",
  ),
  (r"No configurable matching '(.+)'\.", r"unknown gin configurable '\1'"),
  (
    r"Unable to open file: (.+)\. Searched config paths: \['', (.*)\]\.",
    r"gin file '\1' not found (searched: the current directory, \2)",
  ),
)
# Where gin says an error is: the file (none for bindings), line and text.
_GIN_LOCATION = re.compile(
  r'\n  In (?:file "(.*)",|bindings string) line (\d+)\n    (.*)'
)


def _gin_error_message(error: Exception, source: str) -> str:
  """One line: what is wrong, and in which binding or file line.

  `source` ("binding ...", "gin file ...") is named where gin gives no place.
  """
  place = _gin_place(error)
  if place is None and isinstance(error, OSError):  # The gin file not found.
    return _gin_problem(error)
  return f"{_gin_problem(error)} in {place or source}"


def _gin_problem(error: Exception) -> str:
  """What is wrong, in gin's words (reworded where _GIN_MESSAGES has them)."""
  if isinstance(error, SyntaxError):  # The message's last line says what.
    return "gin syntax error: " + error.msg.strip().splitlines()[
      -1
    ].strip().rstrip(".")
  if isinstance(error, tokenize.TokenError):  # E.g. an unclosed bracket.
    return f"gin syntax error: {error.args[0]} (unclosed bracket or quote?)"
  problem = str(error).split("\n", 1)[0].strip()
  for pattern, wording in _GIN_MESSAGES:
    match = re.fullmatch(pattern, problem)
    if match:
      return match.expand(wording)
  return f"invalid gin configuration: {problem.rstrip('.')}"


def _gin_place(error: Exception) -> str | None:
  """Where gin says `error` is: "FILE line N: TEXT" or "binding TEXT"."""
  if isinstance(error, SyntaxError):
    file, line, text = error.filename, error.lineno, error.text
  else:
    match = _GIN_LOCATION.search(str(error))
    file, line, text = match.groups() if match else (None, None, None)
  if not text:
    return None
  return (
    f"{file} line {line}: {text.strip()}" if file else f"binding {text.strip()}"
  )


def error_line(error: Exception) -> str:
  """`error`'s message for a binary's one-line error, less the "In call to
  configurable 'train' (<function ...>)" line gin appends to exceptions
  raised in configurables."""
  return re.sub(
    r"\s*In call to configurable '[\w.]+' \(<.*?>\)", "", str(error)
  ).strip()
