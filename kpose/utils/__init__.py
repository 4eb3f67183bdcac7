"""Small helpers shared by several parts of kpose (no TensorFlow)."""
