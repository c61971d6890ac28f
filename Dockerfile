# Footnote service image.
FROM python:3.11-slim
# httpx/openai use the OS trust store for TLS to search providers, pages and the upstream.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/footnote
COPY pyproject.toml README.md ./
COPY app ./app
COPY retrieval ./retrieval
RUN pip install --no-cache-dir .
ENV FOOTNOTE_HOST=0.0.0.0 FOOTNOTE_PORT=8000
EXPOSE 8000
USER nobody
CMD ["python", "-m", "app"]
