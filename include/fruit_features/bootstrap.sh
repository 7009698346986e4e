#!/bin/bash
# EMR bootstrap action (runs on every node before Spark starts): the Spark job's Python packages.
# Spark itself comes with the EMR release (7.x: Spark 3.5). Same pins as requirements.txt (a test checks).
set -euo pipefail
sudo python3 -m pip install --quiet \
  "onnxruntime==1.30.0" \
  "numpy==2.1.3" \
  "pillow==11.3.0" \
  "pandas==2.3.3" \
  "pyarrow==26.0.1"
