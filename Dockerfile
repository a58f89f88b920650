# The operator image. git is needed for the backport's cherry-pick.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir . && useradd --uid 65532 --no-create-home operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["hotfix-operator", "run"]
