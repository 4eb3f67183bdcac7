"""Data: annotation readers, the top-down tf.data pipeline, augmentation, a synthetic set.

TensorFlow-free: :mod:`~kpose.data.samples`, the readers (:mod:`~kpose.data.coco`,
:mod:`~kpose.data.mpii`, :mod:`~kpose.data.readers`), :mod:`~kpose.data.images`,
:mod:`~kpose.data.synthetic` (crops are warped by :func:`kpose.geometry.warp_crop`).
TensorFlow: :mod:`~kpose.data.pipeline` (``make_topdown_dataset``) and
:mod:`~kpose.data.augment`. Importing this package imports no TensorFlow.
"""

from kpose.data.samples import PersonSamples

__all__ = ["PersonSamples"]
