"""tsnet_tf.layers."""
