"""Necks: feature fusion between a backbone and its heads (SRPose's coarse-to-fine fusion)."""

from kpose.models.necks.convnext import convnext_block
from kpose.models.necks.srpose import WIDTHS, fuse_module, lr_fusion

__all__ = ["WIDTHS", "convnext_block", "fuse_module", "lr_fusion"]
