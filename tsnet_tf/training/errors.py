"""The training package's error for bad arguments (tools print it as one line)."""

from tsnet_tf.utils import errors


class TrainingError(errors.InputError, ValueError):
  """Bad arguments to `trainer.train`: a missing or malformed directory or flag."""
