# sdstream image for docker-compose.yml and deploy/ (not built here: no Docker engine).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY producers producers
COPY consumers consumers
COPY sdstream sdstream
COPY lifecycle lifecycle
RUN pip install --no-cache-dir .
# One UID everywhere: deploy/kubernetes and the Helm chart (values `uid`) run as 65532.
USER 65532:65532
ENTRYPOINT ["sdstream", "--log-json"]
