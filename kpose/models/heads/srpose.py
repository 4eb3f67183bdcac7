"""SRPose (coarse to fine): LR heatmaps, fuse modules and four SR heads.

Training outputs: ``lr_heatmaps`` (M_LR, 1/32), ``sr1``, ``sr2``, ``sr3`` (1/4, from M5, M4, M3:
supervision only) and ``heatmaps`` (from M2, k x the input size). The deploy graph keeps only
``heatmaps`` (see :func:`kpose.models.inference_model`).
"""

from __future__ import annotations

from typing import Mapping

import keras

from kpose.models.backbones import STRIDES, BackboneSpec
from kpose.models.heads.sr import EMBED, KERNEL_SIZE, sr_head, upscale_factor
from kpose.models.necks import WIDTHS, fuse_module, lr_fusion

# (e, r, kernel) of the supervision heads on M5, M4, M3: each reaches 1/4 of the input.
SUPERVISION_HEADS = ((16, 8, 3), (8, 4, 5), (4, 2, 7))


def build_srpose(
    features: Mapping[str, keras.KerasTensor],
    backbone: BackboneSpec,
    num_keypoints: int,
    *,
    scale: float = 1.0,
) -> dict[str, keras.KerasTensor]:
    """SRPose on F2..F5.

    Args:
        scale: k, the final heatmap size over the input size (paper: 0.25, 0.5, 1, 2).

    Returns:
        {"lr_heatmaps": (B, H/32, W/32, K), "sr1"/"sr2"/"sr3": (B, H/4, W/4, K),
        "heatmaps": (B, H*k, W*k, K)}, all float32.
    """
    final_upscale = upscale_factor(STRIDES["F2"], scale, "srpose")
    m_lr, m = lr_fusion(features["F5"], num_keypoints, WIDTHS[0])
    stages = [m]
    for level, width in zip(("F4", "F3", "F2"), WIDTHS[1:]):
        m = fuse_module(m, features[level], width, f"fuse{level[1]}")
        stages.append(m)
    outputs = {"lr_heatmaps": m_lr}
    for i, (m, (embed, upscale, kernel)) in enumerate(zip(stages, SUPERVISION_HEADS), start=1):
        outputs[f"sr{i}"] = sr_head(m, num_keypoints, embed, upscale, kernel, f"sr{i}", f"sr{i}")
    outputs["heatmaps"] = sr_head(
        stages[-1], num_keypoints, EMBED, final_upscale, KERNEL_SIZE, "sr4", "heatmaps"
    )
    return outputs
