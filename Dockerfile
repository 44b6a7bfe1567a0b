# pps-chatops: one image for the bot, the workers, and (demo profile) the simulator and
# the Slack stand-in. Slim, no compilers, runs as an unprivileged user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY jobs ./jobs
COPY sim ./sim
RUN pip install . \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin pps \
 && mkdir -p /config /data/backups /demo \
 && chown pps:pps /data/backups /demo

# Settings have the defaults of DESIGN §3; these only place files inside the container.
ENV PORT=3000 \
    PPS_INVENTORY=/config/inventory.yml \
    PPS_BACKUP_DIR=/data/backups \
    LOG_FORMAT=json

USER pps
EXPOSE 3000
ENTRYPOINT ["ppsbot"]
CMD ["bot"]
