#!/bin/bash
# What the SageMaker Python SDK's FrameworkProcessor runs: unpack the code where SageMaker put it.
set -e
cd /opt/ml/processing/input/code/
tar -xzf sourcedir.tar.gz
python process.py "$@"
