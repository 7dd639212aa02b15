"""Training a teacher on flow computed elsewhere (stored in the TFRecords).

The teacher (`classifiers.build_teacher`) is one functional model: RGB clip
-> `TVL1Flow` ("flow") -> `FlowScaling` ("flow_scaling") -> backbone -> head.
`flow_network` is its part after TV-L1, the same layers and weights taking
flow in pixels; `FlowInputTeacher` trains those weights on given flow while
evaluating (and exporting) the whole RGB-input teacher.
"""

from typing import Optional

import keras

from tsnet_tf.data import stored_flow

# The teacher's layer that takes the flow in pixels (`classifiers.build_teacher`).
FLOW_INPUT_LAYER = "flow_scaling"
# The input dict keys of a batch of flow and of RGB clips (owned by `stored_flow`).
FLOW_KEY = stored_flow.FLOW_KEY
CLIP_KEY = stored_flow.CLIP_KEY


def flow_network(teacher: keras.Model, feature_layer: Optional[str] = None) -> keras.Model:
  """The teacher after its TV-L1 layer: flow `[B, T-1, S, S, 2]` px -> logits `[B, K]`.

  Shares the teacher's layers (and so its weights): training one trains the other.

  Args:
    teacher: a model of `build_teacher` (also one loaded from a .keras file).
    feature_layer: if given, the model outputs `(features, logits)`, the
      output of this layer of the teacher first (as `feature_and_logits`).

  Raises:
    ValueError: `teacher` has no `FlowScaling` layer named "flow_scaling", or
      no layer named `feature_layer`.
  """
  try:
    layer = teacher.get_layer(FLOW_INPUT_LAYER)
  except ValueError as e:
    raise ValueError(f"model {teacher.name!r} has no layer {FLOW_INPUT_LAYER!r}; build it "
                     "with tsnet_tf.models.build_teacher") from e
  outputs = teacher.outputs[0]
  if feature_layer is not None:
    try:
      outputs = [teacher.get_layer(feature_layer).output, outputs]
    except ValueError as e:
      raise ValueError(f"model {teacher.name!r} has no layer named {feature_layer!r}") from e
  return keras.Model(layer.input, outputs, name=f"{teacher.name}_from_flow")


class FlowInputTeacher(keras.Model):
  """A teacher whose training steps take flow instead of computing it.

  `call(x)`:
    x a dict with `"flow"` (float32 `[B, T-1, S, S, 2]` px, e.g. from
      `pipeline.make_dataset(stored_flow="flow")`): `flow_network(teacher)`,
      no TV-L1;
    x an RGB clip `[B, T, S, S, 3]`: the whole teacher (TV-L1 in the graph),
      so validation and `evaluate` score the model that is exported.
  Returns logits `[B, K]`. The weights are the teacher's (`self.teacher`),
  trained by Keras' own `fit` on every backend.
  """

  def __init__(self, teacher: keras.Model, **kwargs):
    kwargs.setdefault("name", teacher.name)
    super().__init__(**kwargs)
    self.teacher = teacher
    self.from_flow = flow_network(teacher)

  def call(self, inputs, training=None):
    if isinstance(inputs, dict):
      return self.from_flow(inputs[FLOW_KEY], training=training)
    return self.teacher(inputs, training=training)
