"""Static checks of deploy/ (no Docker engine or cluster runs here, and
kubectl cannot dry-run without an API server): the files parse, the ports and
probe paths match what the gateway really serves, everything the Dockerfile
copies exists, and the config file the manifests ship passes the gateway's
own --check-config."""
import os
import re
import shutil
import socket
import subprocess

import yaml

from conftest import ROOT, free_port

DEPLOY = os.path.join(ROOT, "deploy")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def test_dockerfile_copies_existing_paths_and_runs_the_gateway():
    text = open(os.path.join(DEPLOY, "Dockerfile")).read()
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
        for src in line.split()[:-1]:
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


def build_stage(text):
    """The Dockerfile's build stage: its apt packages, COPY lines and the RUN
    that builds."""
    stage = text.split("FROM debian:12 AS build", 1)[1].split("\nFROM ", 1)[0]
    stage = stage.replace("\\\n", " ")
    runs = re.findall(r"^RUN (.+)$", stage, re.M)
    pkgs = re.search(r"--no-install-recommends (.+?)&&", runs[0]).group(1).split()
    copies = [line.split() for line in re.findall(r"^COPY (.+)$", stage, re.M)]
    return pkgs, copies, runs[1:]


def consecutive_free_ports(n):
    for _ in range(50):
        base = free_port()
        try:
            socks = []
            for i in range(n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free ports")


def test_dockerfile_build_stage_replayed_builds_a_profile_guided_gateway(tmp_path):
    """No Docker engine here, so the build stage is replayed by hand: exactly
    the files it COPYs, into a scratch /src, then its build RUN (make build's
    scripts/build.sh with PGO=1: an instrumented gateway trained on loopback,
    rebuilt with the profile; PGO=1 fails rather than fall back)."""
    text = open(os.path.join(DEPLOY, "Dockerfile")).read()
    pkgs, copies, runs = build_stage(text)
    # Everything the stage installs is what make deps installs here, so the
    # replay runs with the same tools.
    deps = open(os.path.join(ROOT, "scripts", "deps.sh")).read()
    for p in pkgs:
        assert re.search(r"(^|[\s\"])" + re.escape(p) + r"([\s\"]|$)", deps, re.M), p
    src = tmp_path / "src"
    src.mkdir()
    for *sources, dest in copies:
        for s in sources:
            target = src / dest / os.path.basename(s) if dest.endswith("/") else src / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            if os.path.isdir(os.path.join(ROOT, s)):
                shutil.copytree(os.path.join(ROOT, s), target)
            else:
                shutil.copy(os.path.join(ROOT, s), target)
    (run,) = runs
    assert "PGO=1 ./scripts/build.sh build /src/ai-gateway" in run
    run = run.replace("/src/", str(src) + "/")
    env = dict(os.environ, PGO_PORT_BASE=str(consecutive_free_ports(3)))
    r = subprocess.run(["sh", "-c", run], cwd=src, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for scenario in ("chat, HTTP/1.1, 4 connections", "embeddings", "a conversation in Chinese",
                     "chat, h2c", "chat, gRPC",
                     "streams: streams="):
        assert "build: training " + scenario in r.stderr, r.stderr
    assert "(profile-guided)" in r.stderr
    gw = src / "ai-gateway"
    # gcc records its options in the debug information: the profile was used.
    assert b"-fprofile-use" in gw.read_bytes()
    v = subprocess.run([str(gw), "--version"], capture_output=True, text=True, timeout=30)
    assert v.returncode == 0 and "ai-gateway" in v.stdout + v.stderr
    # A second build with no source changed keeps the profile (no training).
    r = subprocess.run(["sh", "-c", run], cwd=src, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "profile kept" in r.stderr and "training" not in r.stderr, r.stderr
