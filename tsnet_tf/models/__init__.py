"""tsnet_tf.models."""
