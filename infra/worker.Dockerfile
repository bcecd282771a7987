# The modalops image: a Prefect worker for the process pool (its CMD), and the image the team
# stack's Prefect server, MLflow server and Kubernetes flow-run Jobs run too.
#
#   docker build -f infra/worker.Dockerfile -t modalops-worker:0.1.0 .      # from the repo root
#
# torch comes first, pinned, from PyTorch's CPU index: resolved from PyPI it is a CUDA build of
# several GB. (For GPU nodes, build with --build-arg TORCH_INDEX_URL=<a CUDA index>.)
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

WORKDIR /opt/modalops

# Dependencies before the code, so a code change rebuilds one small layer.
COPY constraints.txt ./
RUN pip install --index-url "${TORCH_INDEX_URL}" -c constraints.txt torch==2.13.0

COPY pyproject.toml README.md ./
COPY modalops ./modalops
COPY modalops_demo ./modalops_demo
COPY flows ./flows
COPY tasks ./tasks
COPY configs ./configs
# Editable, so the deployments `modalops deploy` registers from inside this image record
# /opt/modalops as their working directory (flows/deployments.py: the checkout's folder).
RUN pip install -c constraints.txt -e . \
    && python -c "import torch; assert torch.__version__.startswith('2.13.0') and torch.version.cuda is None, torch.__version__"

# Non-root, numeric (Kubernetes' runAsNonRoot can only verify a numeric USER).
RUN useradd --create-home --uid 10001 --user-group modalops
USER 10001:10001
ENV PREFECT_HOME=/home/modalops/.prefect

# --with-healthcheck serves http://127.0.0.1:8080/health (compose's healthcheck).
CMD ["prefect", "worker", "start", "--pool", "modalops-process", "--type", "process", "--with-healthcheck"]
