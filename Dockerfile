# bulletin-bot: the web page, HTTP API, Telegram and WeChat in one container, the bundled index built into the image.
# Build: docker build -t bulletin-bot .      Run: see README, "Docker".
FROM python:3.11-slim

# Only what the bot needs (.dockerignore keeps .venv, data/, salts, .git and caches out of the build context).
WORKDIR /app
COPY pyproject.toml config.toml ./
COPY bot ./bot
COPY corpus ./corpus
COPY index ./index
# The same install as the README's, without pip's cache; the venv is the only thing installed.
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir . && rm -rf /root/.cache
ENV PATH="/opt/venv/bin:$PATH" \
    BULLETIN_BOT_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
# Inside a container the web page and API must listen on every interface.
RUN sed 's/^host = "127.0.0.1"/host = "0.0.0.0"/' config.toml > /app/container.toml

# A non-root user owns the data folder.
RUN useradd --create-home --uid 10001 bulletin && mkdir /data && chown bulletin:bulletin /data
USER bulletin
# Build the index of the bundled bulletins now, so a container answers at once. It must come before VOLUME:
# a named volume mounted at /data starts as a copy of this (Docker fills a new volume from the image).
RUN bulletin-bot --config /app/container.toml issues
# SQLite, FAISS and keyword files, the vector cache, the query log (and its salt) and ingested bulletins.
VOLUME ["/data"]
EXPOSE 8080
# /healthz answers 200 while an index is served (a channel that is retrying does not make it unhealthy).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
# Secrets come from the environment (names in config.toml), e.g. -e BULLETIN_BOT_TELEGRAM_TOKEN=...
CMD ["bulletin-bot", "--config", "/app/container.toml", "serve"]
