"""tsnet_tf.training."""
