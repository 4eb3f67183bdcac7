"""Randomly initialized models with realistic activations, for tests that need distinct outputs.

A freshly built MobileNetV3's BatchNorm layers keep their initial moving statistics, so in
inference its outputs are ~1e-11 and differences between them are rounding noise.
:func:`set_batchnorm_statistics` sets the moving statistics from one batch of images instead.
"""

from __future__ import annotations

import keras
import numpy as np

from kpose.models.complexity import leaf_layers


def set_batchnorm_statistics(model: keras.Model, images: np.ndarray) -> keras.Model:
    """Set every BatchNorm layer's (nested sub-models included) moving mean and variance to
    those of ``images`` (B, H, W, 3) float32 pixel values; returns ``model``."""
    norms = [layer for layer in leaf_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0  # the next training-mode call sets the moving statistics
    model(images, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    return model
