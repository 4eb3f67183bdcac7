"""Learning-rate schedule of the papers: linear warmup, then step decay at given epochs."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kpose")
class WarmupMultiStep(keras.optimizers.schedules.LearningRateSchedule):
    """``base * gamma ** (milestones passed)``, ramped up linearly over the first steps.

    Args:
        base_lr: learning rate after warmup.
        steps_per_epoch: optimizer steps in one epoch (global batches per epoch).
        milestones: epochs at whose start the rate is multiplied by ``gamma``
            (SRPose: 170 and 200; SimMRPose: 120 and 150).
        gamma: decay factor per milestone.
        warmup_steps: optimizer steps of linear warmup (SRPose: 500); 0 disables it.
        warmup_ratio: the rate at step 0, as a fraction of ``base_lr`` (MMPose: 0.001).
    """

    def __init__(
        self,
        base_lr: float,
        steps_per_epoch: int,
        milestones: Sequence[int] = (),
        gamma: float = 0.1,
        warmup_steps: int = 0,
        warmup_ratio: float = 0.001,
    ):
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
        self.base_lr = float(base_lr)
        self.steps_per_epoch = int(steps_per_epoch)
        self.milestones = [int(m) for m in milestones]
        self.gamma = float(gamma)
        self.warmup_steps = int(warmup_steps)
        self.warmup_ratio = float(warmup_ratio)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        epoch = ops.floor(step / self.steps_per_epoch)
        passed = sum((ops.cast(epoch >= m, "float32") for m in self.milestones), ops.zeros(()))
        rate = self.base_lr * ops.power(self.gamma, passed)
        if self.warmup_steps > 0:
            progress = ops.minimum(step / self.warmup_steps, 1.0)
            rate = rate * (self.warmup_ratio + (1.0 - self.warmup_ratio) * progress)
        return rate

    def get_config(self) -> dict:
        return {
            "base_lr": self.base_lr,
            "steps_per_epoch": self.steps_per_epoch,
            "milestones": self.milestones,
            "gamma": self.gamma,
            "warmup_steps": self.warmup_steps,
            "warmup_ratio": self.warmup_ratio,
        }
