# The collaboration service (cs3collab serve), for the Helm chart and the
# compose file. Build from the repository root after `python -m build`
# (which leaves the wheel in dist/; see docs/deployment.md):
#
#   python -m build && docker build -f deploy/docker/service.Dockerfile -t cs3collab-service .
#
# Every Python dependency is pinned by constraints.txt, as in CI.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY constraints.txt dist/cs3collab-*.whl /tmp/cs3collab/
RUN pip install --no-cache-dir -c /tmp/cs3collab/constraints.txt /tmp/cs3collab/cs3collab-*.whl \
    && rm -rf /tmp/cs3collab \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/cs3collab --create-home cs3collab

USER 10001:10001
WORKDIR /var/lib/cs3collab
EXPOSE 8080
# /var/lib/cs3collab holds the journal: mount a volume there (the chart does)
VOLUME ["/var/lib/cs3collab"]
ENTRYPOINT ["cs3collab"]
CMD ["serve", "--ip=0.0.0.0", "--port=8080", "--state-dir=/var/lib/cs3collab", "--log-style=json"]
