"""The clip contract in a `.keras` model: the `ClipContract` layer.

`attach` adds it to a classifier's output, `from_model` reads it back; the
spec itself (`ClipSpec`) is `tsnet_tf/data/clip_spec.py`'s.
"""

from typing import Any, List, Mapping, Optional, Sequence, Tuple

import keras

from tsnet_tf.data import clip_spec as clip_spec_lib

CONTRACT_LAYER = "clip_contract"


@keras.saving.register_keras_serializable(package="tsnet_tf")
class ClipContract(keras.layers.Layer):
  """Identity on the logits that carries the clip spec and class names.

  Holds no weights and computes nothing (`count_flops` and TFLite see no op);
  its config is the model's metadata: `clip_spec` (a `ClipSpec.to_dict()`)
  and `labels` (class names in label order). Never casts (autocast off), so a
  mixed-precision model's outputs keep their dtype.

  Input and output: the logits, any shape and dtype.
  """

  def __init__(self, clip_spec: Mapping[str, Any], labels: Sequence[str] = (), **kwargs):
    kwargs.pop("autocast", None)
    super().__init__(autocast=False, **kwargs)
    self.clip_spec = clip_spec_lib.ClipSpec.from_dict(clip_spec, "ClipContract layer").to_dict()
    self.labels = [str(l) for l in labels]

  def call(self, inputs):
    return inputs

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update(clip_spec=self.clip_spec, labels=list(self.labels))
    return config


def _contract_layers(model) -> List[Any]:
  return [l for l in getattr(model, "layers", []) if isinstance(l, ClipContract)]


def attach(model, spec: clip_spec_lib.ClipSpec, labels: Sequence[str] = ()):
  """`model` with the clip spec and class names attached (a new model, same layers).

  Args:
    model: a functional classifier `[B, T, S, S, 3]` -> logits `[B, K]`.
    spec: its clip spec (checked against the input shape).
    labels: its K class names (or none).

  Returns:
    A functional `keras.Model` named like `model` whose output passes through a
    `ClipContract` layer; an existing contract is replaced.
  """
  spec.check_model(model)
  labels = [str(l) for l in labels]
  if labels and len(labels) != int(model.output_shape[-1]):
    raise clip_spec_lib.ClipSpecError(
        f"{len(labels)} labels for a model with {model.output_shape[-1]} classes")
  output = model.outputs[0]
  for layer in _contract_layers(model):
    if layer.output is output:
      output = layer.input
  contract = ClipContract(spec.to_dict(), labels, name=CONTRACT_LAYER)
  # `model.input` keeps the input's structure (one tensor); `model.inputs` is a
  # list, and Keras then warns on every call with a plain clip tensor.
  return keras.Model(model.input, contract(output), name=model.name)


def from_model(model) -> Optional[Tuple[clip_spec_lib.ClipSpec, List[str]]]:
  """`(spec, labels)` a model carries (see `attach`), or None."""
  layers = _contract_layers(model)
  if not layers:
    return None
  layer = layers[-1]
  spec = clip_spec_lib.ClipSpec.from_dict(layer.clip_spec, f"model {model.name!r}")
  return spec, list(layer.labels)
