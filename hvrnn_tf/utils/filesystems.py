"""Directories on any TensorFlow filesystem, and their errors in one line.

The binaries read and write through `tf.io.gfile`, whose failures are
`tf.errors.OpError`s with multi-line messages; these turn them into the
one-line `OSError`s the binaries print. Offline or without credentials, TF's
Google Cloud Storage client fails at once (no retries) with
FailedPreconditionError ("Could not resolve host"); with a network but no
credentials, GCS answers HTTP 401.
"""

import os

import tensorflow as tf

_UNREACHABLE = (
  tf.errors.FailedPreconditionError,
  tf.errors.UnavailableError,
  tf.errors.UnauthenticatedError,
  tf.errors.DeadlineExceededError,
)


def error_line(path: str, error: Exception, failure: str) -> str:
  """`path: <failure>: <error>` in one line; for a gs:// path that cannot be
  reached, `path: cannot reach Google Cloud Storage (...): <error>`."""
  message = " ".join(str(getattr(error, "message", None) or error).split())
  message = message or type(error).__name__
  if path.startswith("gs://") and (
    isinstance(error, _UNREACHABLE) or "response code 401" in message
  ):
    failure = "cannot reach Google Cloud Storage (no credentials or network?)"
  return f"{path}: {failure}: {message}"


def check_writable(directory: str, name: str = "workdir") -> None:
  """Creates `directory` and writes a probe file into it.

  Raises:
    OSError: one line naming `name` and `directory`, if it cannot be
      reached or written.
  """
  try:
    tf.io.gfile.makedirs(directory)
    probe = os.path.join(directory, f".write_test_{os.getpid()}")
    with tf.io.gfile.GFile(probe, "w") as f:
      f.write("ok")
    tf.io.gfile.remove(probe)
  except (tf.errors.OpError, OSError) as e:
    raise OSError(
      f"{name} {error_line(directory, e, 'is not writable')}"
    ) from e
