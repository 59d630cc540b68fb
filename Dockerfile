# The live bridge on a server: `backtest live STRATEGY --paper`, keys from the environment.
#
#   docker build -t barlab .
#   docker run -d --name barlab-bridge \
#       -e APCA_API_KEY_ID -e APCA_API_SECRET_KEY \
#       -v "$PWD/lab:/lab" -p 127.0.0.1:9108:9108 barlab
#
# /lab is the working directory: ./strategies (your strategy files, found first), ./reports
# (runs, promotion records, the bridge's journal), ./data (the bar cache) and an optional
# ./backtest.toml. The bridge refuses a strategy without a promotion record there, so promote
# it first (same files, same parameters). Keys are never baked in: .env is not copied
# (.dockerignore) and nothing here reads one.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NUMBA_CACHE_DIR=/home/barlab/.cache/numba

WORKDIR /opt/barlab
COPY pyproject.toml README.md ./
COPY strategies ./strategies
COPY src ./src
RUN pip install '.[live]' \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin barlab \
    && mkdir -p /lab /home/barlab/.cache/numba \
    && chown -R barlab:barlab /lab /home/barlab/.cache

USER barlab
WORKDIR /lab
VOLUME ["/lab"]

# /metrics (Prometheus text format) and /health (JSON) of the bridge; inside the container the
# ops server listens on all interfaces so the published port reaches it.
EXPOSE 9108

# /health answers 200 when ok or halted (the kill switch), 503 when the feed or the broker is
# down: three failures in a row mark the container unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:9108/health', timeout=4)"]

# docker stop sends SIGTERM: the bridge stops once, cancelling or keeping its open orders as
# [live] on_shutdown says (default cancel), flushes its journal and exits; give it time with
# `docker stop -t 30`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["backtest"]
CMD ["live", "sma_crossover", "--paper", "--metrics-host", "0.0.0.0", "--metrics-port", "9108"]
