"""tsnet_tf.flow."""
