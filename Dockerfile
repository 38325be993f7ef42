# Citebot: the CLI and the Discord bot, CPU only, with the bundled 4-bit multilingual-e5-small.
# compose.yaml runs it beside a Chroma server (see the README's Docker section). Alone:
#   docker build -t citebot .
#   docker run --rm -v "$PWD/examples/articles:/articles:ro" -v citebot-data:/data citebot index
#   docker run --rm -v citebot-data:/data citebot ask "What models did TBD distill from?"
#   docker run -d --env-file .env -v citebot-data:/data -v "$PWD/articles:/articles:ro" citebot

# Build stage: a virtual environment with CPU torch and Citebot, copied whole into the runtime.
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/citebot/bin:$PATH

# The CPU build of torch from PyTorch's CPU index (the README's install line): PyPI's Linux
# torch is a multi-GB CUDA build, which sentence-transformers would otherwise pull in.
RUN python -m venv /opt/citebot \
    && pip install "torch==2.13.0+cpu" --extra-index-url https://download.pytorch.org/whl/cpu

WORKDIR /src
COPY pyproject.toml README.md ./
COPY index ./index
COPY bot ./bot
RUN pip install .

# Runtime stage: no build tools, a non-root user, the index and heartbeat under /data.
FROM python:3.11-slim-bookworm

# The bundled model is the measured and calibrated default and needs no network at run time.
# To use a sentence-transformers model instead, set CITEBOT_EMBEDDING_BACKEND=auto and
# CITEBOT_EMBEDDING_MODEL, mount a Hugging Face cache, and unset HF_HUB_OFFLINE to download.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/citebot/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    CITEBOT_EMBEDDING_BACKEND=onnx \
    CITEBOT_DATA_DIR=/data \
    CITEBOT_ARTICLES_DIR=/articles

RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin citebot \
    && mkdir -p /data /articles \
    && chown citebot /data

COPY --from=build /opt/citebot /opt/citebot

USER 10001
WORKDIR /app
VOLUME ["/data"]

# Healthy while the bot is connected to Discord: it touches /data/bot.heartbeat every 20 s and
# `citebot health` fails when the file is missing or older than 90 s. The start period covers
# loading the model before the first connection; one-shot commands finish long before it ends.
HEALTHCHECK --interval=60s --timeout=30s --start-period=180s --retries=3 \
    CMD ["citebot", "health"]

ENTRYPOINT ["citebot"]
CMD ["bot"]
