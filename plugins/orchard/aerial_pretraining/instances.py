"""The SageMaker instance types aerial_pretraining offers, and what it needs to know about each."""

from __future__ import annotations

# GPUs per instance: the per-device batch is batch_size / (GPUs x instances).
GPUS = {
    "ml.p4d.24xlarge": 8,
    "ml.p3.16xlarge": 8,
    "ml.p3.8xlarge": 4,
    "ml.p3.2xlarge": 1,
    "ml.g5.2xlarge": 1,
    "ml.g5.xlarge": 1,
    "ml.g4dn.xlarge": 1,
    "ml.m5.xlarge": 0,
}
# SMDDP (SageMaker's data-parallel library) runs only on these with the PyTorch 2.x images.
SMDDP_INSTANCES = {"ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p5.48xlarge"}
CPU_INSTANCES = {"ml.m5.xlarge", "ml.m5.2xlarge", "ml.c5.xlarge"}
