"""tsnet_tf.export."""
