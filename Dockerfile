# The faultgraph service; docker-compose.yml runs it against Neo4j 5.26.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY service ./service
COPY importers ./importers
COPY schema ./schema
COPY examples ./examples
RUN pip install .

# The code finds schema/ (the JSON Schema and the Neo4j constraints) next to
# the service package, which a plain `pip install .` does not copy into
# site-packages, so the interpreter imports the package from /app.
ENV PYTHONPATH=/app

RUN useradd --system --no-create-home --home-dir /app faultgraph
USER faultgraph

EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["faultgraph", "serve", "--host", "0.0.0.0"]
