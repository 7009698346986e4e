#!/bin/bash
# As on EMR: bootstrap actions install the step's Python packages on every node.
set -euo pipefail
sudo python3 -m pip install --quiet "pandas==2.3.3" "pyarrow==21.0.0"
