# sdstream image for docker-compose.yml and deploy/ (not built here: no Docker engine).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY producers producers
COPY consumers consumers
COPY sdstream sdstream
COPY lifecycle lifecycle
COPY kafka_access kafka_access
RUN pip install --no-cache-dir .
USER 65534
ENTRYPOINT ["sdstream", "--log-json"]
