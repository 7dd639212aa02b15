"""Parameter and analytic FLOP counts of functional Keras models.

FLOPs are 2 per multiply-add, from the static shapes of the functional graph:
convolutions and dense layers, recursing into nested models and
`TimeDistributed`; a layer with `compute_flops(input_shape)` (the TV-L1 flow
layer) reports its own cost; elementwise layers count 0.
"""

import math
import warnings

import keras
from keras import layers


def count_params(model: keras.Model, trainable_only: bool = False) -> int:
  """Number of parameters (all weights, or only trainable ones)."""
  weights = model.trainable_weights if trainable_only else model.weights
  return int(sum(math.prod(w.shape) for w in weights))


def _shape(tensor):
  return tuple(tensor.shape)


def _layer_flops(layer, input_shapes, output_shapes) -> int:
  """FLOPs (2 per multiply-add) of one call of `layer`, batch excluded."""
  if hasattr(layer, "compute_flops"):
    return int(layer.compute_flops(input_shapes[0]))
  if isinstance(layer, keras.Model):
    return _model_flops(layer)
  if isinstance(layer, layers.TimeDistributed):
    steps = input_shapes[0][1]
    inner_in = [(s[0],) + tuple(s[2:]) for s in input_shapes]
    inner_out = [(s[0],) + tuple(s[2:]) for s in output_shapes]
    return steps * _layer_flops(layer.layer, inner_in, inner_out)
  if isinstance(layer, layers.Conv3D) or isinstance(layer, layers.Conv2D) \
      or isinstance(layer, layers.Conv1D):
    cin = input_shapes[0][-1]
    out = output_shapes[0]
    macs = (math.prod(layer.kernel_size) * (cin // layer.groups)
            * layer.filters * math.prod(out[1:-1]))
    return 2 * macs
  if isinstance(layer, layers.Dense):
    shape = input_shapes[0]
    return 2 * math.prod(shape[1:]) * layer.units
  if type(layer).__name__ == "TVL1Flow":
    warnings.warn(
        f"layer {layer.name!r} defines no compute_flops(input_shape); its "
        "TV-L1 cost is not in the count")
  # Normalisation, activations, pooling, adds: elementwise, negligible next to
  # the convolutions and not counted (as in the usual GFLOPs tables).
  return 0


def _model_flops(model: keras.Model) -> int:
  total = 0
  # Only this graph's nodes: a layer or nested model shared with other
  # models has inbound nodes in those graphs too.
  nodes_by_depth = model._nodes_by_depth  # pylint: disable=protected-access
  for nodes in nodes_by_depth.values():
    for node in nodes:
      layer = node.operation
      if isinstance(layer, keras.layers.InputLayer):
        continue
      inputs = [_shape(t) for t in node.input_tensors]
      outputs = [_shape(t) for t in node.output_tensors]
      if any(None in s[1:] for s in inputs + outputs):
        raise ValueError(
            f"layer {layer.name!r} of {model.name!r} has unknown dimensions "
            f"{inputs} -> {outputs}; build the model with fixed T and S")
      total += _layer_flops(layer, inputs, outputs)
  return total


def count_flops(model: keras.Model, input_shape=None) -> int:
  """Analytic FLOPs per example (2 per multiply-add) of one forward pass.

  Counts convolutions and dense layers from the static shapes of the
  functional graph, recursing into nested models; a layer that defines
  `compute_flops(input_shape)` (e.g. the TV-L1 flow layer) reports its own
  cost. Elementwise layers are not counted.

  Args:
    model: a functional model built with fixed shapes.
    input_shape: optional `(T, S, S, C)` or `(1, T, S, S, C)`; checked
      against the model's input shape (the count is per example).

  Returns:
    int FLOPs for a batch of one.
  """
  if input_shape is not None:
    expected = tuple(model.input_shape[1:])
    given = tuple(input_shape)
    if len(given) == len(expected) + 1:
      given = given[1:]
    if given != expected:
      raise ValueError(
          f"input_shape {tuple(input_shape)} does not match the model's "
          f"input {expected}; rebuild the model for that shape")
  return _model_flops(model)
