"""Eq. 7 of Zhao & Lee: train the RGB student against a frozen flow teacher.

    L = ce_weight * CE(P_rgb, T) + distill_weight * MSE(F_rgb, F_of)

`F` is the output of the layer named "features" of each network; MSE is the
mean over the feature dimension and the batch (the paper's squared norm
`||F_rgb - F_of||^2` is D times this: `lambda_sum = distill_weight / D`).
"""

from typing import Optional

import keras
from keras import layers
from keras import ops

from tsnet_tf.models import classifiers
from tsnet_tf.utils import tf_graph


@keras.saving.register_keras_serializable(package="tsnet_tf")
class DistillationModel(keras.Model):
  """Student + frozen teacher with the Eq. 7 `train_step` (TF backend).

  * `teacher` is set `trainable = False` and always called with
    `training=False` (BatchNorm uses its moving statistics, dropout is off).
  * If the feature sizes differ, or `projection="always"`, a linear Dense
    `projection` maps student features to the teacher's size (trained, used
    only for the loss); otherwise there is none.
  * `confidence_weighting`: each clip's MSE is weighted by the teacher's
    softmax probability of the true class (no gradient through it), so clips
    the teacher gets wrong pull the student less.
  * `feature_layer` may also name an intermediate block output, e.g.
    `stage3_block1_out`: F is then the spatio-temporal map `[B, T', H', W', C]`,
    the MSE is the mean over all its elements and the projection acts on the
    channel axis (a 1x1x1 linear map). Student and teacher maps must agree in
    T', H', W'. A spatially resolved target tells the student *where* the
    motion is; the pooled vector only says what its average is.
  * `ce_weight` and `distill_weight` are non-trainable variables the trainer
    may assign between epochs: `ce_weight = 0` is the paper's MSE-only
    warm-up, which trains the part of the student below "features".
  * `test_step` and `call` run the student alone (`val_loss` is its CE).
  * Metrics: `loss`, `ce_loss`, `distill_loss`, `accuracy` (student).
  * Under `tf.distribute`, losses follow Keras' convention: the per-replica
    mean divided by the number of replicas, so summed gradients equal the
    global-batch mean; a `LossScaleOptimizer` scales the loss.

  Save `model.student` for inference; it loads with plain
  `keras.saving.load_model` after `import tsnet_tf`.

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
  """

  def __init__(self, student: keras.Model, teacher: keras.Model,
               distill_weight: float = 1.0, ce_weight: float = 1.0,
               feature_layer: str = "features", projection: str = "auto",
               confidence_weighting: bool = False, **kwargs):
    super().__init__(**kwargs)
    if projection not in ("auto", "always"):
      raise ValueError(f"projection must be 'auto' or 'always', got {projection!r}")
    self.projection_mode = projection
    self.confidence_weighting = bool(confidence_weighting)
    self.student = student
    self.teacher = teacher
    self.teacher.trainable = False
    self.feature_layer = feature_layer
    self._student_fl = classifiers.feature_and_logits(student, feature_layer)
    self._teacher_fl = classifiers.feature_and_logits(teacher, feature_layer)
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
      # a replica context under tf.distribute.
      self.projection.build((None, student_dim))
    else:
      self.projection = None
    self.distill_weight = keras.Variable(
        float(distill_weight), trainable=False, dtype="float32",
        name="distill_weight")
    self.ce_weight = keras.Variable(
        float(ce_weight), trainable=False, dtype="float32", name="ce_weight")
    self._ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    self._mse = keras.losses.MeanSquaredError()
    self.loss_tracker = keras.metrics.Mean(name="loss")
    self.ce_tracker = keras.metrics.Mean(name="ce_loss")
    self.distill_tracker = keras.metrics.Mean(name="distill_loss")
    self.accuracy_metric = keras.metrics.SparseCategoricalAccuracy(
        name="accuracy")
    # Everything is built above (sub-models are functional, the projection
    # explicitly), so Keras need not trace a symbolic build.
    self.built = True

  def build(self, input_shape=None):
    del input_shape  # built in __init__
    self.built = True

  def compile(self, *args, **kwargs):
    # The frozen teacher's TV-L1 while loops break under one Grappler rewrite
    # inside a training step (tsnet_tf/utils/tf_graph.py); every student graph
    # is compiled here, so this is the one place that needs to say so.
    tf_graph.disable_add_ops_rewrite()
    super().compile(*args, **kwargs)

  @property
  def metrics(self):
    return [self.loss_tracker, self.ce_tracker, self.distill_tracker,
            self.accuracy_metric]

  def call(self, inputs, training=False):
    return self.student(inputs, training=training)

  def _student_trainable(self):
    weights = list(self.student.trainable_weights)
    if self.projection is not None:
      weights += self.projection.trainable_weights
    return weights

  def _regularization(self):
    """Weight regularizers of the student and projection, replica-scaled."""
    losses = []
    for variable in self._student_trainable():
      if variable.regularizer is not None:
        # Keras' TF trainer divides additional losses by the replica count.
        losses.append(self._aggregate_additional_loss(
            variable.regularizer(variable)))
    return ops.sum(ops.stack(losses)) if losses else ops.zeros(())

  def compute_distillation_losses(self, x, y, sample_weight=None,
                                  training=True):
    """Returns `(total, ce, mse, logits)`; total excludes regularization.

    Under tf.distribute the losses are already divided by the number of
    replicas (the Keras loss reduction does it), ready for gradients that the
    strategy sums; multiply back to report them.
    """
    teacher_features, teacher_logits = self._teacher_fl(x, training=False)
    teacher_features = ops.stop_gradient(ops.cast(teacher_features, "float32"))
    student_features, logits = self._student_fl(x, training=training)
    student_features = ops.cast(student_features, "float32")
    if self.projection is not None:
      student_features = self.projection(student_features)
    ce = self._ce(y, logits, sample_weight=sample_weight)
    mse_weight = sample_weight
    if self.confidence_weighting:
      probs = ops.softmax(ops.cast(teacher_logits, "float32"), axis=-1)
      labels = ops.reshape(ops.cast(y, "int32"), (-1,))
      confidence = ops.stop_gradient(ops.take_along_axis(
          probs, ops.expand_dims(labels, -1), axis=-1)[:, 0])
      mse_weight = confidence if sample_weight is None else confidence * ops.reshape(
          ops.cast(sample_weight, "float32"), (-1,))
    # Flattened to [B, D]: the per-clip MSE is the mean over every element of
    # F (a vector or a map), and a per-clip weight applies to all of it.
    batch = ops.shape(student_features)[0]
    mse = self._mse(ops.reshape(teacher_features, (batch, -1)),
                    ops.reshape(student_features, (batch, -1)),
                    sample_weight=mse_weight)
    total = self.ce_weight * ce + self.distill_weight * mse
    return total, ce, mse, logits

  def train_step(self, data):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from keras.src.losses import loss as loss_module  # pylint: disable=g-import-not-at-top

    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    weights = self._student_trainable()
    with tf.GradientTape() as tape:
      total, ce, mse, logits = self.compute_distillation_losses(
          x, y, sample_weight, training=True)
      loss = total + self._regularization()
      scaled = (self.optimizer.scale_loss(loss)
                if self.optimizer is not None else loss)
    gradients = tape.gradient(scaled, weights)
    self.optimizer.apply_gradients(zip(gradients, weights))

    batch = ops.shape(logits)[0]
    unscale = loss_module.unscale_loss_for_distribution
    self.loss_tracker.update_state(unscale(loss), sample_weight=batch)
    self.ce_tracker.update_state(unscale(ce), sample_weight=batch)
    self.distill_tracker.update_state(unscale(mse), sample_weight=batch)
    self.accuracy_metric.update_state(y, logits, sample_weight=sample_weight)
    return {m.name: m.result() for m in self.metrics}

  def test_step(self, data):
    from keras.src.losses import loss as loss_module  # pylint: disable=g-import-not-at-top

    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    logits = self.student(x, training=False)
    ce = loss_module.unscale_loss_for_distribution(
        self._ce(y, logits, sample_weight=sample_weight))
    batch = ops.shape(logits)[0]
    self.loss_tracker.update_state(ce, sample_weight=batch)
    self.ce_tracker.update_state(ce, sample_weight=batch)
    self.accuracy_metric.update_state(y, logits, sample_weight=sample_weight)
    # Only what the student alone can measure: no distill_loss here.
    return {m.name: m.result() for m in
            (self.loss_tracker, self.ce_tracker, self.accuracy_metric)}

  def predict_step(self, data):
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return self.student(x, training=False)

  def get_config(self):
    config = super().get_config()
    config.update(
        student=keras.saving.serialize_keras_object(self.student),
        teacher=keras.saving.serialize_keras_object(self.teacher),
        distill_weight=float(keras.ops.convert_to_numpy(self.distill_weight)),
        ce_weight=float(keras.ops.convert_to_numpy(self.ce_weight)),
        feature_layer=self.feature_layer,
        projection=self.projection_mode,
        confidence_weighting=self.confidence_weighting)
    return config

  @classmethod
  def from_config(cls, config, custom_objects=None):
    config = dict(config)
    config["student"] = keras.saving.deserialize_keras_object(
        config["student"], custom_objects=custom_objects)
    config["teacher"] = keras.saving.deserialize_keras_object(
        config["teacher"], custom_objects=custom_objects)
    return cls(**config)


class MseWarmup(keras.callbacks.Callback):
  """Trains on the MSE term alone for the first `warmup_epochs` epochs.

  Sets `model.ce_weight` to 0 before each warm-up epoch and to `ce_weight`
  after (the paper: MSE first for the early part of the student, then
  CE + MSE for the whole). Resumed runs get the right phase from the epoch.
  """

  def __init__(self, warmup_epochs: int, ce_weight: float = 1.0):
    super().__init__()
    self.warmup_epochs = int(warmup_epochs)
    self.ce_weight = float(ce_weight)

  def on_epoch_begin(self, epoch, logs=None):
    if not isinstance(self.model, DistillationModel):
      raise TypeError(
          f"MseWarmup needs a DistillationModel, got {type(self.model)}")
    self.model.ce_weight.assign(
        0.0 if epoch < self.warmup_epochs else self.ce_weight)


def build_distillation_model(student: keras.Model, teacher: keras.Model,
                             distill_weight: float = 1.0,
                             feature_layer: str = "features",
                             name: Optional[str] = "distillation",
                             **kwargs) -> DistillationModel:
  """Convenience constructor of `DistillationModel` (teacher gets frozen).

  `kwargs` go to `DistillationModel` (projection, confidence_weighting).
  """
  return DistillationModel(student, teacher, distill_weight=distill_weight,
                           feature_layer=feature_layer, name=name, **kwargs)
