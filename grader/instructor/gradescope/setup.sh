#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu).
# litlabs goes into a virtual environment under /opt, so that the unprivileged user
# that runs submitted code can execute the interpreter (root's home is private).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip util-linux
python3 -m venv /opt/litlabs-venv
# The CPU build of torch: the autograder has no GPU, and the CUDA build is several GB (and about 300 MB
# more memory per process). torch and torchvision come from the same index, in one command: a CPU torch
# with PyPI's (CUDA) torchvision fails at import ("operator torchvision::nms does not exist").
/opt/litlabs-venv/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch torchvision
# litlabs and the rest; torch and torchvision are already satisfied and stay the CPU builds.
/opt/litlabs-venv/bin/pip install -e /autograder/source
/opt/litlabs-venv/bin/python -c "import torch, torchvision.transforms.v2, torchvision.ops; assert not torch.version.cuda, torch.__version__"
# The check modules are read by root only; the sandbox user reads the rest.
chmod -R go-rwx /autograder/source/grader/hidden
chmod 755 /autograder /autograder/source
