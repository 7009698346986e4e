#!/bin/bash
# numpy 2.1.3 needs Python >= 3.10 (no cp39 wheel): on an EMR 7.x node (python3 = 3.9) this fails.
set -euo pipefail
sudo python3 -m pip install --quiet "numpy==2.1.3"
