# The image every Vertex AI pipeline step runs: TFX 1.16 plus textmill with
# the same pinned requirements the Makefile installs.
FROM gcr.io/tfx-oss-public/tfx:1.16.0

WORKDIR /textmill
COPY requirements/constraints.txt requirements/constraints.txt
COPY pyproject.toml README.md ./
COPY textmill textmill
# Same command as `make setup` (minus the venv: the image's Python is 3.10).
RUN python -m pip install --no-cache-dir -c requirements/constraints.txt .
ENV PYTHONUNBUFFERED=1
