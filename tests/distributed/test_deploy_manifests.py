"""Every probe path and port named in deploy/k8s and deploy/compose exists in the service."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml  # pyyaml, a pinned test dependency: a missing one fails here rather than skipping

from tests.support.tiny import ROOT

DEPLOY = ROOT / "deploy"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture(scope="module")
def app_paths() -> set[str]:
    from service.main import create_app

    return set(create_app().openapi()["paths"])


def _dockerfile_port() -> int:
    return int(re.search(r"^EXPOSE (\d+)$", (ROOT / "Dockerfile").read_text(), re.M).group(1))


def test_k8s_deployment_probes_name_real_paths_and_the_container_port(app_paths):
    docs = {d["kind"]: d for d in _docs(DEPLOY / "k8s" / "service.yaml")}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PersistentVolumeClaim"} <= set(docs)
    (container,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert set(ports.values()) == {int(env["PORT"])} == {_dockerfile_port()}
    probes = {k: container[k]["httpGet"] for k in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz" and probes["readinessProbe"]["path"] == "/readyz"
    for probe in probes.values():
        assert probe["path"] in app_paths
        assert probe["port"] in ports or probe["port"] in ports.values()
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "models")
    assert mount["readOnly"] is True and env["MODEL_DIR"].startswith(mount["mountPath"] + "/")
    service_port = docs["Service"]["spec"]["ports"][0]["targetPort"]
    assert service_port in ports or service_port in ports.values()
    assert docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"]


def test_training_job_runs_the_multi_worker_trainer():
    (job, _) = _docs(DEPLOY / "k8s" / "training-job.yaml")
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]
    assert worker["replicas"] >= 2 and worker["restartPolicy"] == "OnFailure"
    command = worker["template"]["spec"]["containers"][0]["command"]
    assert command[:4] == ["python", "-m", "training", "train"]
    assert command[command.index("--strategy") + 1] == "multi-worker" and "--run-dir" in command


def test_compose_runs_two_replicas_behind_the_proxy_on_real_paths(app_paths):
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    replicas = {k: v for k, v in compose["services"].items() if k.startswith("api-")}
    assert len(replicas) == 2
    nginx = (DEPLOY / "compose" / "nginx.conf").read_text()
    for name, svc in replicas.items():
        port = int(svc["environment"]["PORT"])
        assert port == _dockerfile_port() and str(port) in svc["expose"]
        url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", " ".join(svc["healthcheck"]["test"]))
        assert int(url.group(1)) == port and url.group(2) in app_paths
        assert f"server {name}:{port}" in nginx
        assert any(v.endswith(":/models/price:ro") for v in svc["volumes"])
    assert set(compose["services"]["proxy"]["depends_on"]) == set(replicas)
