"""Data: HMDB51 layout, synthetic videos, TFRecord conversion and tf.data input."""
