#!/bin/bash
# EMR bootstrap action (runs on every node before Spark starts): the Spark job's Python packages.
# Spark itself comes with the EMR release (7.x: Spark 3.5). Same pins as requirements.txt (a test checks).
# They install into the nodes' `python3`: Python 3.9 on EMR 7.x (Amazon Linux 2023), so every pin is a
# release with cp39 wheels (numpy 2.0.x, pyarrow <= 21, onnxruntime <= 1.19 are the last for 3.9).
set -euo pipefail
sudo python3 -m pip install --quiet \
  "onnxruntime==1.19.2" \
  "numpy==2.0.2" \
  "pillow==11.3.0" \
  "pandas==2.3.3" \
  "pyarrow==21.0.0"
