# bulletin-bot: installs the same way the README does, serves the bundled bulletins by default.
FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN python3 -m venv .venv && .venv/bin/pip install --no-cache-dir -e .
ENV PATH="/app/.venv/bin:$PATH"
# SQLite, FAISS and keyword files (and ingested bulletins) persist here.
VOLUME ["/app/data"]
CMD ["bulletin-bot", "chat"]
