# bulletin-bot: installs the same way the README does, serves the bundled bulletins by default.
FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN python3 -m venv .venv && .venv/bin/pip install --no-cache-dir -e .
ENV PATH="/app/.venv/bin:$PATH"
# Inside a container the web page and API must listen on every interface.
RUN sed 's/^host = "127.0.0.1"/host = "0.0.0.0"/' config.toml > /app/container.toml
# SQLite, FAISS and keyword files, the query log and ingested bulletins persist here.
VOLUME ["/app/data"]
EXPOSE 8080
# Secrets come from the environment (names in config.toml), e.g. -e BULLETIN_BOT_TELEGRAM_TOKEN=...
CMD ["bulletin-bot", "--config", "/app/container.toml", "serve"]
