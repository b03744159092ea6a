# rootgraph service image (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY rootgraph rootgraph
COPY graph graph
COPY ingest ingest
COPY inference inference
COPY server server
COPY proto proto
COPY simulate simulate
RUN pip install --no-cache-dir . && useradd --system rootgraph
USER rootgraph
EXPOSE 50051 4317 4318
CMD ["rootgraph", "serve"]
