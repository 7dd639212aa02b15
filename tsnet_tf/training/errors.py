"""The training package's error for bad arguments (tools print it as one line)."""


class TrainingError(ValueError):
  """Bad arguments to `trainer.train`: a missing or malformed directory or flag."""
