# The single-user image JupyterHub spawns for each user (zero-to-jupyterhub's
# singleuser.image): the Jupyter docker stack's base notebook plus cs3collab,
# which brings the Jupyter server extension (enabled on install), the
# labextension (prebuilt in the wheel) and the collaboration UI. Build from the
# repository root after `python -m build`:
#
#   python -m build && docker build -f deploy/docker/singleuser.Dockerfile -t cs3collab-singleuser .
#
# The server reaches the site's service and gateway through its config
# (CS3CollabExtension.service_url, CS3CollabConnection.gateway), which the
# z2jh values in deploy/z2jh set; the user's CS3 token arrives from the hub in
# CS3COLLAB_TOKEN.
FROM quay.io/jupyter/base-notebook:python-3.11

COPY --chown=${NB_UID}:${NB_GID} constraints.txt dist/cs3collab-*.whl /tmp/cs3collab/
RUN pip install --no-cache-dir -c /tmp/cs3collab/constraints.txt /tmp/cs3collab/cs3collab-*.whl \
    && rm -rf /tmp/cs3collab
