"""Eq. 7 of Zhao & Lee: train the RGB student against a frozen flow teacher.

    L = ce_weight * CE(P_rgb, T) + distill_weight * MSE(F_rgb, F_of)

`F` is the output of the layer named "features" of each network; MSE is the
mean over the feature dimension and the batch (the paper's squared norm
`||F_rgb - F_of||^2` is D times this: `lambda_sum = distill_weight / D`).

The loss is defined once, in `DistillationModel.compute_distillation_losses`,
and reaches the optimizer through Keras' own training step (`compute_loss`),
so `fit` trains the student under the TensorFlow, JAX and PyTorch backends.
"""

from typing import Dict, Optional

import keras
from keras import layers
from keras import ops

from tsnet_tf.models import classifiers
from tsnet_tf.models import flow_input
from tsnet_tf.utils import tf_graph

# The forward pass in training returns these (see `DistillationModel.call`).
LOGITS = "logits"
FEATURES = "features"
TEACHER_LOGITS = "teacher_logits"
TEACHER_FEATURES = "teacher_features"


def _replicas_in_sync() -> int:
  """Replicas that each compute a share of one step's global batch.

  The only backend-specific code of Eq. 7. Under TensorFlow, Keras' trainer
  sums the gradients of the replicas of a `tf.distribute` strategy, so each
  replica's loss is divided by their number (as Keras' own losses do). JAX
  (`keras.distribution`) and PyTorch compute one loss over the global batch.
  """
  if keras.backend.backend() != "tensorflow":
    return 1
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.distribute.get_strategy().num_replicas_in_sync


@keras.saving.register_keras_serializable(package="tsnet_tf")
class DistillationModel(keras.Model):
  """Student + frozen teacher trained with Eq. 7 by Keras' own `fit`.

  * `teacher` is set `trainable = False` and always called with
    `training=False` (BatchNorm uses its moving statistics, dropout is off).
  * If the feature sizes differ, or `projection="always"`, a linear Dense
    `projection` maps student features to the teacher's size (trained, used
    only for the loss); otherwise there is none.
  * `confidence_weighting`: each clip's MSE is weighted by the teacher's
    softmax probability of the true class (no gradient through it), so clips
    the teacher gets wrong pull the student less.
  * `logit_weight` > 0 adds Hinton's soft-logit term (not in the paper):
    `logit_weight * T^2 * KL(softmax(t / T) || softmax(s / T))` with the
    teacher's logits t, the student's s and `temperature` T, so the student
    also matches what the teacher predicts, not only its features. It is off
    (0) by default and, like CE, off during the MSE warm-up.
  * `feature_layer` may also name an intermediate block output, e.g.
    `stage3_block1_out`: F is then the spatio-temporal map `[B, T', H', W', C]`,
    the MSE is the mean over all its elements and the projection acts on the
    channel axis (a 1x1x1 linear map). Student and teacher maps must agree in
    T', H', W'. A spatially resolved target tells the student *where* the
    motion is; the pooled vector only says what its average is.
  * `ce_weight` and `distill_weight` are non-trainable variables the trainer
    may assign between epochs: `ce_weight = 0` is the paper's MSE-only
    warm-up, which trains the part of the student below "features".
  * `teacher_flow_input=True`: training batches may be dicts
    `{"clip": RGB [B, T, S, S, 3], "flow": [B, T-1, S, S, 2] px}` (the
    stored flow of `pipeline.make_dataset(stored_flow="clip_and_flow")`); the
    teacher's features then come from its layers after TV-L1
    (`flow_input.flow_network`) fed that flow, so no TV-L1 runs in the step.
    RGB-only batches still go through the whole teacher.
  * `call(x)` (inference) runs the student alone and returns its logits
    `[B, K]`; `call(x, training=True)` (what `fit` runs) returns a dict with
    the student's `logits` and `features` and the teacher's `teacher_logits`
    and `teacher_features`, all float32, in one forward pass of each network.
  * `compute_loss` (which Keras' trainer calls on every backend) turns that
    dict into Eq. 7 plus the student's weight regularizers; in evaluation
    (`training=False`) the loss is the student's CE alone (`val_loss`).
  * Metrics: `loss`, `ce_loss`, `distill_loss`, (`kd_loss`), `accuracy` (student);
    `evaluate` reports `loss`, `ce_loss`, `accuracy`.
  * Under `tf.distribute`, losses follow Keras' convention: the per-replica
    mean divided by the number of replicas, so summed gradients equal the
    global-batch mean; a `LossScaleOptimizer` scales the loss (all backends).

  Save `model.student` for inference; it loads with plain
  `keras.saving.load_model` after `import tsnet_tf.models`.

  Args:
    student: classifier with a "features" layer (`build_rgb_model`).
    teacher: trained classifier with a "features" layer (`build_teacher`).
    distill_weight: lambda of Eq. 7.
    ce_weight: weight of the cross-entropy term (1 normally, 0 in warm-up).
    feature_layer: name of the feature layer in both networks ("features",
      the pooled vector, or an intermediate block output).
    projection: "auto" (only when sizes differ) or "always".
    confidence_weighting: weight each clip's MSE by the teacher's probability
      of its label.
    logit_weight: weight of the soft-logit term (0: none, Eq. 7 alone).
    temperature: softmax temperature T of the soft-logit term (> 0).
    teacher_flow_input: accept `{"clip", "flow"}` batches (see above).
  """
  def __init__(self, student: keras.Model, teacher: keras.Model,
               distill_weight: float = 1.0, ce_weight: float = 1.0,
               feature_layer: str = "features", projection: str = "auto",
               confidence_weighting: bool = False, logit_weight: float = 0.0,
               temperature: float = 4.0, teacher_flow_input: bool = False, **kwargs):
    super().__init__(**kwargs)
    if projection not in ("auto", "always"):
      raise ValueError(f"projection must be 'auto' or 'always', got {projection!r}")
    if logit_weight < 0:
      raise ValueError(f"logit_weight must be >= 0, got {logit_weight}")
    if temperature <= 0:
      raise ValueError(f"temperature must be > 0, got {temperature}")
    self.projection_mode = projection
    self.confidence_weighting = bool(confidence_weighting)
    self.logit_weight = float(logit_weight)
    self.temperature = float(temperature)
    self.student = student
    self.teacher = teacher
    self.teacher.trainable = False
    self.feature_layer = feature_layer
    self._student_fl = classifiers.feature_and_logits(student, feature_layer)
    self._teacher_fl = classifiers.feature_and_logits(teacher, feature_layer)
    self.teacher_flow_input = bool(teacher_flow_input)
    self._teacher_flow_fl = (flow_input.flow_network(teacher, feature_layer)
                             if self.teacher_flow_input else None)
    student_map = tuple(self._student_fl.outputs[0].shape[1:-1])
    teacher_map = tuple(self._teacher_fl.outputs[0].shape[1:-1])
    if student_map != teacher_map:
      raise ValueError(
          f"feature_layer {feature_layer!r}: the student's output has positions "
          f"{student_map} but the teacher's {teacher_map} (all but the channel axis must "
          "match); pick a layer where they agree, e.g. a later stage or 'features'")
    student_dim = int(self._student_fl.outputs[0].shape[-1])
    teacher_dim = int(self._teacher_fl.outputs[0].shape[-1])
    if student_dim != teacher_dim or projection == "always":
      self.projection = layers.Dense(teacher_dim, dtype="float32",
                                     name="distill_projection")
      # Built now, not on the first step: variables cannot be created inside
      # a replica context under tf.distribute, nor inside a traced JAX step.
      self.projection.build((None, student_dim))
    else:
      self.projection = None
    self.distill_weight = keras.Variable(
        float(distill_weight), trainable=False, dtype="float32",
        name="distill_weight")
    self.ce_weight = keras.Variable(
        float(ce_weight), trainable=False, dtype="float32", name="ce_weight")
    self._ce = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="none")
    self._mse = keras.losses.MeanSquaredError(reduction="none")
    self.ce_tracker = keras.metrics.Mean(name="ce_loss")
    self.distill_tracker = keras.metrics.Mean(name="distill_loss")
    # Present only when used, so plain Eq. 7 reports exactly its two terms.
    self.kd_tracker = (keras.metrics.Mean(name="kd_loss")
                       if self.logit_weight > 0 else None)
    self.accuracy_metric = keras.metrics.SparseCategoricalAccuracy(
        name="accuracy")
    # Everything is built above (sub-models are functional, the projection
    # explicitly), so Keras need not trace a symbolic build.
    self.built = True

  def build(self, input_shape=None):
    del input_shape  # built in __init__
    self.built = True

  def make_train_function(self, force=False):
    """Keras' train function, run without Grappler's arithmetic optimizer.

    Under TensorFlow two Grappler passes break the frozen teacher's TV-L1
    loops in this step (tsnet_tf/utils/tf_graph.py); the setting applies to
    this function's calls only. The test and predict functions run the
    student alone and keep Grappler's defaults.
    """
    if self.train_function is not None and not force:
      return self.train_function
    super().make_train_function(force=force)
    self.train_function = tf_graph.without_add_ops_rewrite(self.train_function)
    return self.train_function

  def call(self, inputs, training=False):
    """Student logits `[B, K]`; with `training=True`, the dict of Eq. 7's inputs."""
    flow = None
    if isinstance(inputs, dict):
      if flow_input.FLOW_KEY in inputs and self._teacher_flow_fl is None:
        raise ValueError("a batch with stored flow needs DistillationModel("
                         "teacher_flow_input=True)")
      flow = inputs.get(flow_input.FLOW_KEY)
      inputs = inputs[flow_input.CLIP_KEY]
    if not training:
      return self.student(inputs, training=False)
    features, logits = self._student_fl(inputs, training=True)
    if flow is not None:
      teacher_features, teacher_logits = self._teacher_flow_fl(flow, training=False)
    else:
      teacher_features, teacher_logits = self._teacher_fl(inputs, training=False)
    return {
        LOGITS: ops.cast(logits, "float32"),
        FEATURES: ops.cast(features, "float32"),
        TEACHER_LOGITS: ops.stop_gradient(ops.cast(teacher_logits, "float32")),
        TEACHER_FEATURES: ops.stop_gradient(ops.cast(teacher_features, "float32")),
    }

  def loss_weights(self) -> Dict[str, keras.Variable]:
    """The weight of each term `compute_distillation_losses` returns."""
    weights = {"ce_loss": self.ce_weight, "distill_loss": self.distill_weight}
    if self.logit_weight > 0:
      # Scaled with CE: off in the MSE-only warm-up (ce_weight = 0) like CE.
      weights["kd_loss"] = self.logit_weight * self.ce_weight
    return weights

  def compute_distillation_losses(self, y, outputs, sample_weight=None
                                  ) -> Dict[str, "keras.KerasTensor"]:
    """The terms of Eq. 7, each a float32 scalar mean over the local batch.

    The one place that defines the distillation loss; `compute_loss` weights
    the terms with `loss_weights()` and adds the regularizers.

    Args:
      y: int labels `[B]`.
      outputs: `call(x, training=True)`'s dict.
      sample_weight: optional `[B]` weights (a weighted sum over the batch
        divided by the batch size, Keras' `sum_over_batch_size`).

    Returns:
      `{"ce_loss": CE(P_rgb, T), "distill_loss": MSE(P(F_rgb), F_of)}`, plus
      `"kd_loss": T^2 KL(P_of^T || P_rgb^T)` when `logit_weight` > 0; not
      divided by the replica count.
    """
    student_features = outputs[FEATURES]
    if self.projection is not None:
      student_features = self.projection(student_features)
    ce = self._ce(y, outputs[LOGITS], sample_weight=sample_weight)
    # Flattened to [B, D]: the per-clip MSE is the mean over every element of
    # F (a vector or a map), and a per-clip weight applies to all of it.
    batch = ops.shape(student_features)[0]
    mse = self._mse(ops.reshape(outputs[TEACHER_FEATURES], (batch, -1)),
                    ops.reshape(student_features, (batch, -1)),
                    sample_weight=sample_weight)
    if self.confidence_weighting:
      probs = ops.softmax(outputs[TEACHER_LOGITS], axis=-1)
      labels = ops.reshape(ops.cast(y, "int32"), (-1, 1))
      mse = mse * ops.stop_gradient(ops.take_along_axis(probs, labels, axis=-1)[:, 0])
    terms = {"ce_loss": ops.mean(ce), "distill_loss": ops.mean(mse)}
    if self.logit_weight > 0:
      t = self.temperature
      teacher_log_p = ops.log_softmax(outputs[TEACHER_LOGITS] / t, axis=-1)
      student_log_p = ops.log_softmax(outputs[LOGITS] / t, axis=-1)
      kl = ops.sum(ops.exp(teacher_log_p) * (teacher_log_p - student_log_p), axis=-1)
      if sample_weight is not None:
        kl = kl * ops.cast(ops.reshape(sample_weight, (-1,)), kl.dtype)
      # T^2 keeps the gradient's scale independent of T (Hinton et al.).
      terms["kd_loss"] = (t * t) * ops.mean(kl)
    return terms

  def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                   training=True):
    """Eq. 7 + regularizers in training, the student's CE in evaluation."""
    del x  # the forward pass is in y_pred
    if isinstance(y_pred, dict):
      terms = self.compute_distillation_losses(y, y_pred, sample_weight)
      weights = self.loss_weights()
      total = sum(weights[name] * value for name, value in terms.items())
      batch_logits = y_pred[LOGITS]
    else:
      ce = self._ce(y, y_pred, sample_weight=sample_weight)
      terms = {"ce_loss": ops.mean(ce)}
      total = terms["ce_loss"]
      batch_logits = y_pred
    batch = ops.shape(batch_logits)[0]
    trackers = {"ce_loss": self.ce_tracker, "distill_loss": self.distill_tracker,
                "kd_loss": self.kd_tracker}
    for name, value in terms.items():
      trackers[name].update_state(value, sample_weight=batch)
    total = total / _replicas_in_sync()
    if training and isinstance(y_pred, dict):
      # Weight regularizers of the student and projection (the frozen
      # teacher's are not in `self.losses`), replica-scaled by Keras.
      for loss in self.losses:
        total = total + self._aggregate_additional_loss(loss)
    return total

  def compute_metrics(self, x, y, y_pred, sample_weight=None):
    logits = y_pred[LOGITS] if isinstance(y_pred, dict) else y_pred
    self.accuracy_metric.update_state(y, logits, sample_weight=sample_weight)
    logs = super().compute_metrics(x, y, logits, sample_weight=sample_weight)
    if not isinstance(y_pred, dict):
      # Only what the student alone can measure: no distill_loss in evaluation.
      logs.pop("distill_loss", None)
      logs.pop("kd_loss", None)
    return logs

  def get_config(self):
    config = super().get_config()
    config.update(
        student=keras.saving.serialize_keras_object(self.student),
        teacher=keras.saving.serialize_keras_object(self.teacher),
        distill_weight=float(keras.ops.convert_to_numpy(self.distill_weight)),
        ce_weight=float(keras.ops.convert_to_numpy(self.ce_weight)),
        feature_layer=self.feature_layer,
        projection=self.projection_mode,
        confidence_weighting=self.confidence_weighting,
        logit_weight=self.logit_weight,
        temperature=self.temperature,
        teacher_flow_input=self.teacher_flow_input)
    return config

  @classmethod
  def from_config(cls, config, custom_objects=None):
    config = dict(config)
    config["student"] = keras.saving.deserialize_keras_object(
        config["student"], custom_objects=custom_objects)
    config["teacher"] = keras.saving.deserialize_keras_object(
        config["teacher"], custom_objects=custom_objects)
    return cls(**config)


def build_distillation_model(student: keras.Model, teacher: keras.Model,
                             distill_weight: float = 1.0,
                             feature_layer: str = "features",
                             name: Optional[str] = "distillation",
                             **kwargs) -> DistillationModel:
  """Convenience constructor of `DistillationModel` (teacher gets frozen).

  `kwargs` go to `DistillationModel` (projection, confidence_weighting,
  logit_weight, temperature).
  """
  return DistillationModel(student, teacher, distill_weight=distill_weight,
                           feature_layer=feature_layer, name=name, **kwargs)
