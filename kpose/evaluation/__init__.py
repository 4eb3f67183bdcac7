"""Evaluation: COCO keypoint AP, CrowdPose AP, MPII PCKh, OKS and OKS-NMS.

numpy and pycocotools only, no TensorFlow; pycocotools is imported when an AP is computed,
so the OKS, top-down collection and PCKh parts run on a device install.
"""

from kpose.data.cocofile import load_annotations
from kpose.evaluation.coco import COCO_METRICS, evaluate_coco
from kpose.evaluation.crowdpose import CROWDPOSE_METRICS, evaluate_crowdpose, split_by_crowd_index
from kpose.evaluation.mpii import PCKhResult, head_sizes_from_boxes, pckh
from kpose.evaluation.oks import oks, oks_nms
from kpose.evaluation.pck import pck
from kpose.evaluation.resultsfile import load_results
from kpose.evaluation.topdown import TopDownResults, rescore

__all__ = [
    "COCO_METRICS",
    "CROWDPOSE_METRICS",
    "PCKhResult",
    "TopDownResults",
    "evaluate_coco",
    "evaluate_crowdpose",
    "head_sizes_from_boxes",
    "load_annotations",
    "load_results",
    "oks",
    "oks_nms",
    "pck",
    "pckh",
    "rescore",
    "split_by_crowd_index",
]
