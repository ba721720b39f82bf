"""Static checks of deploy/ (no Docker engine or cluster runs here, and
kubectl cannot dry-run without an API server): the files parse, the ports and
probe paths match what the gateway really serves, everything the Dockerfile
copies exists, and the config file the manifests ship passes the gateway's
own --check-config."""
import os
import re
import subprocess

import yaml

from conftest import ROOT

DEPLOY = os.path.join(ROOT, "deploy")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def test_dockerfile_copies_existing_paths_and_runs_the_gateway():
    text = open(os.path.join(DEPLOY, "Dockerfile")).read()
    for src in re.findall(r"^COPY (?!--from)(\S+) ", text, re.M):
        assert os.path.exists(os.path.join(ROOT, src)), src
    assert re.search(r'ENTRYPOINT \[.*"/app/ai-gateway"\]', text)
    assert "EXPOSE 8080 50051" in text
    assert "USER gateway" in text
    # Runtime packages are the runtime halves of the -dev packages we build with.
    assert "libgrpc29" in text and "python3-grpcio" in text


def test_compose_file():
    (doc,) = load_all(os.path.join(DEPLOY, "docker-compose.yml"))
    gw = doc["services"]["gateway"]
    assert gw["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "8080:8080" in gw["ports"] and "50051:50051" in gw["ports"]
    prom = load_all(os.path.join(DEPLOY, "prometheus.yml"))[0]
    assert prom["scrape_configs"][0]["static_configs"][0]["targets"] == ["gateway:8080"]


def test_kubernetes_manifests_match_the_gateway():
    docs = load_all(os.path.join(DEPLOY, "kubernetes", "gateway.yaml"))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler"}
    c = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8080, "grpc": 50051}
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    assert c["livenessProbe"]["grpc"]["port"] == 50051
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["CONFIG_FILE"] == "/etc/ai-gateway/gateway.yaml"
    # The embedded config file is one the gateway accepts.
    cfg = kinds["ConfigMap"]["data"]["gateway.yaml"]
    assert yaml.safe_load(cfg)["models"][0]["name"] == "tiny-lm"


def test_kubernetes_config_is_valid_for_the_gateway(tmp_path):
    from conftest import GW_BIN
    docs = load_all(os.path.join(DEPLOY, "kubernetes", "gateway.yaml"))
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    p = tmp_path / "gateway.yaml"
    p.write_text(cm["data"]["gateway.yaml"])
    env = dict(os.environ, CONFIG_FILE=str(p))
    r = subprocess.run([GW_BIN, "--check-config"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
