#!/usr/bin/python3
"""k8s_check.py: the invariants of a rendered confab kustomization.

usage: k8s_check.py base|dev|prod RENDERED.yaml

Checks what must hold for the pods to work and to roll without dropping
users: the gateway and broker containers share an emptyDir at RUN_DIR, PORT
matches the gateway's port and probes, readiness on /readyz and liveness on
/healthz, one named port per gateway process at METRICS_PORT + i and per
broker shard at BROKER_METRICS_PORT + i (none overlapping), broker probes on
its metrics port, preStop sleeps that fit in the grace period with the drain, requests and limits everywhere,
non-root read-only containers without capabilities, pinned images, no secret
values, and Service, Ingress (no access log: the query holds tokens; dev on
any host over HTTP, prod over TLS), PDB and HPA pointing at the right things. Prints
one line per failed check and exits 1 if any failed.
"""
import os
import re
import sys

import yaml

overlay, path = sys.argv[1], sys.argv[2]
with open(path) as f:
    docs = [d for d in yaml.safe_load_all(f) if d]

failures = []
checks = 0


def check(ok, what):
    global checks
    checks += 1
    if not ok:
        failures.append(what)
    return ok


def one(kind, name=None):
    found = [d for d in docs if d["kind"] == kind and
             (name is None or d["metadata"]["name"] == name)]
    check(len(found) == 1, f"exactly one {kind} {name or ''} (found {len(found)})")
    return found[0] if found else {}


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


cm = next((d for d in docs if d["kind"] == "ConfigMap" and
           d["metadata"]["name"].startswith("confab-config")), None)
check(cm is not None, "a confab-config ConfigMap")
cfg = (cm or {}).get("data", {})
for key in ("JWT_SECRET", "REDIS_PASSWORD", "API_KEY"):
    check(key not in cfg, f"ConfigMap holds no {key} (secrets go in the Secret)")

# No secret values anywhere: the Secret is created out of band.
for d in docs:
    if d["kind"] == "Secret":
        check(not d.get("data") and not d.get("stringData"),
              f"Secret {d['metadata']['name']} carries no values")

dep = one("Deployment", "confab")
tmpl = dep.get("spec", {}).get("template", {})
pod = tmpl.get("spec", {})
pod_labels = tmpl.get("metadata", {}).get("labels", {})
check("replicas" not in dep.get("spec", {}), "Deployment leaves replicas to the HPA")
check(labels_match(dep.get("spec", {}).get("selector", {}).get("matchLabels"), pod_labels),
      "Deployment selector matches its pod labels")
ru = dep.get("spec", {}).get("strategy", {}).get("rollingUpdate", {})
check(ru.get("maxUnavailable") == 0, "rolling update keeps every pod until its successor is ready")

containers = {c["name"]: c for c in pod.get("containers", [])}
check(sorted(containers) == ["broker", "gateway"], f"containers are gateway and broker (got {sorted(containers)})")
gw, br = containers.get("gateway", {}), containers.get("broker", {})
check(gw.get("command") == ["confab-gateway"], "gateway container runs confab-gateway")
check(br.get("command") == ["confab-broker"], "broker container runs confab-broker")

# The shared socket directory.
empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
run_dir = cfg.get("RUN_DIR")
check(bool(run_dir), "ConfigMap sets RUN_DIR")
mounts = {}
for name, c in containers.items():
    m = [vm for vm in c.get("volumeMounts", []) if vm["name"] in empty_dirs]
    # RUN_DIR is the mount or a directory in it (which the broker makes
    # 0750: the mount itself is 0777)
    mount = m[0]["mountPath"].rstrip("/") if len(m) == 1 else None
    check(mount is not None and mount in (run_dir, os.path.dirname(run_dir or "")),
          f"{name} mounts an emptyDir at RUN_DIR={run_dir} or its parent")
    mounts[name] = m[0]["name"] if m else None
check(mounts.get("gateway") is not None and mounts.get("gateway") == mounts.get("broker"),
      "gateway and broker mount the same emptyDir")

# Settings both containers read, and secrets by reference only.
cm_name = (cm or {}).get("metadata", {}).get("name")
for name, c in containers.items():
    refs = [e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e]
    check(refs == [cm_name], f"{name} takes its environment from {cm_name}")
    for e in c.get("env", []):
        check("value" not in e or e["name"] not in ("JWT_SECRET", "REDIS_PASSWORD", "API_KEY"),
              f"{name}: {e['name']} is not a literal")
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            check(ref["name"] == "confab-secrets", f"{name}: {e['name']} comes from confab-secrets")
jwt = [e for e in gw.get("env", []) if e["name"] == "JWT_SECRET"]
check(len(jwt) == 1, "gateway gets JWT_SECRET from the Secret")

# Port and probes.
def container_ports(c):
    return {p.get("name"): p["containerPort"] for p in c.get("ports", [])}


def as_int(v, default=None):
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


ports = container_ports(gw)
bports = container_ports(br)
check(str(ports.get("http")) == cfg.get("PORT"), f"gateway port http ({ports.get('http')}) == PORT ({cfg.get('PORT')})")
for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
    p = gw.get(probe, {}).get("httpGet", {})
    check(p.get("path") == path, f"gateway {probe} on {path} (got {p.get('path')})")
    port = p.get("port")
    check(ports.get(port, port) == ports.get("http"), f"gateway {probe} on the http port")

# Metrics ports: process i of a container listens on BASE + i; each has a
# named port, so Prometheus (role: pod) finds every process.
workers, brokers = as_int(cfg.get("GATEWAY_WORKERS"), 0), as_int(cfg.get("BROKERS"), 0)
mport, bmport = as_int(cfg.get("METRICS_PORT"), 0), as_int(cfg.get("BROKER_METRICS_PORT"), 0)
check(mport > 0, f"ConfigMap turns METRICS_PORT on (got {cfg.get('METRICS_PORT')})")
check(bmport > 0, f"ConfigMap turns BROKER_METRICS_PORT on (got {cfg.get('BROKER_METRICS_PORT')})")
check(cfg.get("LOG_FORMAT") in ("text", "json"), f"ConfigMap sets LOG_FORMAT to text or json (got {cfg.get('LOG_FORMAT')})")
for what, cports, prefix, base, n, count in (
        ("gateway", ports, "gw-metrics-", mport, workers, "GATEWAY_WORKERS"),
        ("broker", bports, "br-metrics-", bmport, brokers, "BROKERS")):
    want = {f"{prefix}{i}": base + i for i in range(n)}
    got = {k: v for k, v in cports.items() if k and k.startswith(prefix)}
    check(n > 0 and got == want,
          f"{what} declares {prefix}<i> = {base} + i for each of {count}={n} (got {got})")
    check(all(len(k) <= 15 for k in want), f"{what} metrics port names fit in 15 characters")
taken = [("PORT", as_int(cfg.get("PORT"), 0))]
taken += [(f"METRICS_PORT+{i}", mport + i) for i in range(workers)]
taken += [(f"BROKER_METRICS_PORT+{i}", bmport + i) for i in range(brokers)]
numbers = [n for _, n in taken]
check(len(set(numbers)) == len(numbers) and max(numbers, default=0) <= 65535,
      f"PORT and the metrics port ranges neither overlap nor pass 65535 ({taken})")
for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
    p = br.get(probe, {}).get("httpGet", {})
    check(p.get("path") == path, f"broker {probe} on {path} (got {p.get('path')})")
    port = p.get("port")
    check(bports.get(port, port) == bmport, f"broker {probe} on shard 0's port BROKER_METRICS_PORT ({bmport})")

# Drain: preStop sleeps, and a grace period that covers them and the drain.
def pre_stop_sleep(c):
    cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    return int(cmd[1]) if len(cmd) == 2 and cmd[0] == "sleep" else None

gw_sleep, br_sleep = pre_stop_sleep(gw), pre_stop_sleep(br)
check(gw_sleep is not None and gw_sleep > 0, "gateway has a preStop sleep")
check(br_sleep is not None and gw_sleep is not None and br_sleep > gw_sleep,
      "broker's preStop outlasts the gateway's, so the broker is up while the gateway drains")
grace = pod.get("terminationGracePeriodSeconds", 30)
drain = int(cfg.get("DRAIN_TIMEOUT_MS", "5000")) / 1000
check(gw_sleep is not None and grace >= gw_sleep + drain + 5,
      f"terminationGracePeriodSeconds ({grace}) >= gateway preStop + DRAIN_TIMEOUT_MS + 5 s")
check(br_sleep is not None and grace >= br_sleep + 5,
      f"terminationGracePeriodSeconds ({grace}) >= broker preStop + 5 s")

# Security and resources, for every pod template in the output.
for d in docs:
    if d["kind"] not in ("Deployment", "StatefulSet"):
        continue
    spec = d["spec"]["template"]["spec"]
    what = f"{d['kind']} {d['metadata']['name']}"
    check(spec.get("securityContext", {}).get("runAsNonRoot") is True, f"{what}: runAsNonRoot")
    check(spec.get("automountServiceAccountToken") is False, f"{what}: no service account token")
    for c in spec.get("containers", []):
        cw = f"{what}/{c['name']}"
        sc = c.get("securityContext", {})
        check(sc.get("readOnlyRootFilesystem") is True, f"{cw}: readOnlyRootFilesystem")
        check(sc.get("allowPrivilegeEscalation") is False, f"{cw}: allowPrivilegeEscalation false")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{cw}: drops ALL capabilities")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            check(all(k in res.get(kind, {}) for k in ("cpu", "memory")), f"{cw}: {kind} for cpu and memory")
        image = c.get("image", "")
        tag = re.search(r":([^:/@]+)$", image)
        check("@sha256:" in image or (tag is not None and tag.group(1) != "latest"),
              f"{cw}: image {image!r} is pinned (a tag other than latest, or a digest)")

spread = pod.get("topologySpreadConstraints", [])
check(len(spread) >= 1 and all(labels_match(s.get("labelSelector", {}).get("matchLabels"), pod_labels)
                               for s in spread), "topology spread over the pod's own labels")

svc = one("Service", "confab")
check(labels_match(svc.get("spec", {}).get("selector"), pod_labels), "Service selects the confab pods")
check(any(p.get("targetPort") == "http" for p in svc.get("spec", {}).get("ports", [])),
      "Service targets the gateway's http port")
svc_ports = {p.get("name") for p in svc.get("spec", {}).get("ports", [])}

ing = one("Ingress", "confab")
ann = ing.get("metadata", {}).get("annotations", {})
min_idle = int(cfg.get("PING_INTERVAL", "30")) + int(cfg.get("PING_TIMEOUT", "10"))
for a in ("proxy-read-timeout", "proxy-send-timeout"):
    v = ann.get(f"nginx.ingress.kubernetes.io/{a}")
    check(v is not None and int(v) > min_idle, f"Ingress {a} ({v}) outlasts PING_INTERVAL + PING_TIMEOUT")
backends = [p["backend"]["service"] for r in ing.get("spec", {}).get("rules", [])
            for p in r.get("http", {}).get("paths", [])]
check(backends and all(b["name"] == "confab" and b["port"].get("name") in svc_ports for b in backends),
      "Ingress routes to the confab Service's http port")
# /ws?token= carries the user's JWT: a request line in an access log is a
# token anyone reading the logs can use.
check(ann.get("nginx.ingress.kubernetes.io/enable-access-log") == "false",
      "Ingress keeps tokens out of the access log (enable-access-log: \"false\")")
ing_spec = ing.get("spec", {})
tls_hosts = {h for t in ing_spec.get("tls") or [] for h in t.get("hosts", [])}
rule_hosts = {r.get("host") for r in ing_spec.get("rules", [])}
if overlay == "dev":
    check(not ing_spec.get("tls") and rule_hosts == {None},
          "dev Ingress serves any host over plain HTTP (no placeholder host or TLS Secret)")
elif overlay == "prod":
    check(all(t.get("secretName") for t in ing_spec.get("tls") or []) and tls_hosts and
          rule_hosts <= tls_hosts, "prod Ingress serves its hosts over TLS with a certificate Secret")

pdb = one("PodDisruptionBudget", "confab")
check(labels_match(pdb.get("spec", {}).get("selector", {}).get("matchLabels"), pod_labels),
      "PodDisruptionBudget selects the confab pods")
hpa = one("HorizontalPodAutoscaler", "confab")
hs = hpa.get("spec", {})
check(hs.get("scaleTargetRef", {}).get("kind") == "Deployment" and hs.get("scaleTargetRef", {}).get("name") == "confab",
      "HPA scales the confab Deployment")
check(any(m.get("resource", {}).get("name") == "cpu" for m in hs.get("metrics", [])), "HPA scales on CPU")
check(1 <= hs.get("minReplicas", 0) <= hs.get("maxReplicas", 0), "HPA 1 <= minReplicas <= maxReplicas")

# What differs per overlay.
redis_addr = cfg.get("REDIS_ADDR", "")
services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
if overlay == "dev":
    sts = one("StatefulSet", "redis")
    check(sts.get("spec", {}).get("replicas") == 1, "dev Redis is a single replica")
    host, _, port = redis_addr.rpartition(":")
    rsvc = services.get(host, {})
    check(bool(rsvc) and labels_match(rsvc["spec"].get("selector"), sts["spec"]["template"]["metadata"]["labels"]),
          f"dev REDIS_ADDR ({redis_addr}) names the Redis Service")
    check(any(str(p["port"]) == port for p in rsvc.get("spec", {}).get("ports", [])),
          "dev REDIS_ADDR's port is the Redis Service's")
    check(cfg.get("CONFAB_DEV") == "1", "dev runs with CONFAB_DEV=1")
elif overlay == "prod":
    check(not any(d["kind"] == "StatefulSet" for d in docs), "prod runs no Redis of its own")
    host = redis_addr.rpartition(":")[0]
    check(bool(host) and host not in services and not host.endswith(".invalid"),
          f"prod REDIS_ADDR ({redis_addr}) points at a managed Redis")
    check(cfg.get("CONFAB_DEV") == "0", "prod runs with CONFAB_DEV=0")
    check(not jwt or not jwt[0]["valueFrom"]["secretKeyRef"].get("optional", False),
          "prod requires JWT_SECRET")
    check(hs.get("minReplicas", 0) >= 2, "prod keeps at least two pods")

for f in failures:
    print(f"  FAIL {overlay}: {f}")
print(f"  {overlay}: {checks - len(failures)} of {checks} checks hold")
sys.exit(1 if failures else 0)
