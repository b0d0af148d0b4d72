#!/usr/bin/env python3
"""Validates the Helm chart deploy/helm/flashdeal (run by check_config.py).

    python3 scripts/check_helm.py [--root DIR]

Two parts, both always run:

Static (reads the files, renders nothing):
  * Chart.yaml and values.yaml parse (duplicate keys rejected); Chart.yaml
    has apiVersion v2, a name, a SemVer version and an appVersion;
  * every `.Values.a.b` path a template names exists in values.yaml;
  * every role (ROLES below) has a values section and a
    templates/deployment-<role>.yaml that includes the Deployment helper
    with that section;
  * every `secretFiles` entry names a `secrets` entry with existingSecret,
    key, file and env;
  * `partitions` equals FLASHDEAL_PARTITIONS in .env.example, and each
    default KEDA maxReplicaCount is <= partitions.

Rendered (Helm's own template engine: the Helm v4 Go SDK, through the PyPI
package helm-python-sdk, which bundles it as a shared library):
  * `helm lint --strict` equivalent, for the chart's minimum Kubernetes
    version: no warning or error;
  * the default values render; every manifest parses;
  * every object of a built-in kind validates against the Kubernetes
    OpenAPI schema (PyPI kubernetes-validate, strict: unknown fields are
    errors) for KUBE_VERSIONS;
  * KEDA ScaledObjects (a CRD, no schema offline) are checked field by field
    against what this file expects: scaleTargetRef names a rendered
    Deployment that has no spec.replicas, a single kafka trigger with
    bootstrapServers = kafka.brokers, the role's consumerGroup and topic,
    string lagThreshold, maxReplicaCount <= partitions;
  * the rendered Deployments: one per role, `args` is the role, pinned image,
    pod runAsNonRoot, container readOnlyRootFilesystem, no privilege
    escalation, capabilities drop ALL; the gateway has readiness /readyz and
    liveness /healthz on its HTTP port, the other roles set
    FLASHDEAL_METRICS_ADDR and are probed on that port; every *_FILE
    variable points at a file of a mounted Secret; no environment value for
    a key ending in PASSWORD/SECRET; Prometheus scrape annotations name the
    port the container serves; relay 2 replicas, reconciler 1, neither
    autoscaled;
  * PodDisruptionBudgets, the Service and the ScaledObjects select pods that
    a rendered Deployment has; the Ingress routes to the gateway Service;
    the migrate Job is a pre-install,pre-upgrade hook;
  * three other value sets render and validate the same way (autoscaling
    off: Deployments get replicas and no ScaledObject; TLS + Redis URL from
    a Secret + image digest + OTLP endpoint; Ingress, hooks, PDBs and
    annotations off);
  * renders that must fail do fail, with the chart's message: a
    maxReplicaCount above partitions (either consumer), partitions lowered
    below the default maximum, image.tag "latest".

Not checked: anything about a live cluster (scheduling, admission, KEDA's
own validation, whether the Secrets exist, whether the image runs).

Prints one line per problem and exits 1, or a summary of what it checked.
"""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

import yaml

CHART_DIR = "deploy/helm/flashdeal"
# role (the `flashdeal` subcommand) -> its values section
ROLES = {
    "gateway": "gateway",
    "order-writer": "orderWriter",
    "projector": "projector",
    "relay": "relay",
    "reconciler": "reconciler",
}
# role -> (consumer group, topic) its ScaledObject must scale on
KEDA = {
    "order-writer": ("order-writer", "orders.intents"),
    "projector": ("projector", "orders.status"),
}
FIXED_REPLICAS = {"relay": 2, "reconciler": 1}
# The chart's minimum (Chart.yaml kubeVersion) and the newest schema the
# validator ships.
KUBE_VERSIONS = ["1.30.0", "1.37.0"]
# Pinned, installed on first use if missing (as check_config.py does PyYAML).
PIP_PACKAGES = {"helm_python": "helm-python-sdk==0.2.2", "kubernetes_validate": "kubernetes-validate==1.37.0"}

VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
SECRET_KEY = re.compile(r"(PASSWORD|SECRET)$")


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load(path: Path):
    return yaml.load(path.read_text(encoding="utf-8"), Loader=StrictLoader)


def ensure_modules(problem) -> dict:
    mods = {}
    missing = []
    for mod, pkg in PIP_PACKAGES.items():
        try:
            mods[mod] = importlib.import_module(mod)
        except ImportError:
            missing.append(pkg)
    if missing:
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing],
                           capture_output=True, text=True)
        if r.returncode != 0:
            problem(f"cannot install {' '.join(missing)} (needed to render the chart): {r.stderr.strip()[-400:]}")
            return {}
        importlib.invalidate_caches()
        for mod in PIP_PACKAGES:
            mods[mod] = importlib.import_module(mod)
    return mods


# --- static ---------------------------------------------------------------------

def check_static(root: Path, chart: Path, problem, stats: list[str]) -> dict | None:
    try:
        meta = load(chart / "Chart.yaml")
        values = load(chart / "values.yaml")
    except (OSError, yaml.YAMLError) as e:
        problem(f"Chart.yaml/values.yaml: {e}")
        return None
    if meta.get("apiVersion") != "v2":
        problem("Chart.yaml: apiVersion must be v2")
    for field in ("name", "version", "appVersion"):
        if not meta.get(field):
            problem(f"Chart.yaml: no {field}")
    if not re.fullmatch(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?", str(meta.get("version", ""))):
        problem(f"Chart.yaml: version {meta.get('version')!r} is not SemVer")

    # .Values references
    refs = 0
    for tpl in sorted((chart / "templates").glob("*")):
        text = tpl.read_text(encoding="utf-8")
        for m in VALUES_REF.finditer(text):
            refs += 1
            node = values
            for part in m.group(1).lstrip(".").split("."):
                if not isinstance(node, dict):
                    break  # reached a scalar/list: a method-like access is not ours to judge
                if part not in node:
                    problem(f"templates/{tpl.name}: .Values{m.group(1)} is not in values.yaml")
                    break
                node = node[part]
    stats.append(f"{refs} .Values references resolve in values.yaml")

    # roles -> deployment templates
    secrets = values.get("secrets") or {}
    for name, spec in secrets.items():
        for field in ("existingSecret", "key", "file", "env"):
            if not (spec or {}).get(field):
                problem(f"values.yaml: secrets.{name} has no {field}")
        if (spec or {}).get("env") and not str(spec["env"]).endswith("_FILE"):
            problem(f"values.yaml: secrets.{name}.env {spec['env']} is not a *_FILE variable")
    for role, key in ROLES.items():
        section = values.get(key)
        if not isinstance(section, dict):
            problem(f"values.yaml: no `{key}` section for role {role}")
            continue
        tpl = chart / "templates" / f"deployment-{role}.yaml"
        if not tpl.is_file():
            problem(f"role {role}: templates/deployment-{role}.yaml is missing")
        else:
            text = tpl.read_text(encoding="utf-8")
            if not re.search(rf'include "flashdeal\.deployment" \(dict "root" \. "role" "{re.escape(role)}" "values" \.Values\.{key}\b', text):
                problem(f"templates/deployment-{role}.yaml: does not render the Deployment helper for role {role} with .Values.{key}")
        for s in section.get("secretFiles") or []:
            if s not in secrets:
                problem(f"values.yaml: {key}.secretFiles names {s!r}, which is not under `secrets`")
    stats.append(f"{len(ROLES)} roles have a values section and a Deployment template")

    # partitions and KEDA defaults
    partitions = values.get("partitions")
    env_example = root / ".env.example"
    if env_example.is_file():
        m = re.search(r"^FLASHDEAL_PARTITIONS=(\d+)", env_example.read_text(encoding="utf-8"), re.M)
        if m and int(m.group(1)) != partitions:
            problem(f"values.yaml: partitions {partitions} != FLASHDEAL_PARTITIONS={m.group(1)} in .env.example")
    for role in KEDA:
        a = (values.get(ROLES[role]) or {}).get("autoscaling") or {}
        if a.get("enabled") and int(a.get("maxReplicaCount", 0)) > int(partitions or 0):
            problem(f"values.yaml: {ROLES[role]}.autoscaling.maxReplicaCount {a.get('maxReplicaCount')} > partitions {partitions}")
    stats.append(f"partitions={partitions} matches .env.example; default KEDA maxima <= partitions")
    return values


# --- rendered -------------------------------------------------------------------

def render(helm, chart: Path, overrides: dict | None = None) -> dict[str, list[dict]]:
    with helm.Chart.load(str(chart)) as c:
        out = c.render(overrides or {}, name="flashdeal", namespace="flashdeal", is_install=True)
    docs: dict[str, list[dict]] = {}
    for path, text in out.items():
        if path.endswith("NOTES.txt"):
            continue
        docs[path] = [d for d in yaml.load_all(text, Loader=StrictLoader) if d]
    return docs


def labels_match(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_rendered(mods: dict, chart: Path, values: dict, problem, stats: list[str]) -> None:
    helm = mods["helm_python"]
    kv = mods["kubernetes_validate"]

    report = helm.lint(str(chart), strict=True, kube_version=f"v{KUBE_VERSIONS[0]}")
    for msg in report.get("messages") or []:
        if msg.get("severity", 0) >= 2:
            problem(f"helm lint: {msg.get('path')}: {msg.get('error')}")
    for err in report.get("errors") or []:
        problem(f"helm lint: {err}")
    stats.append(f"helm lint --strict (kube {KUBE_VERSIONS[0]}) clean (Helm SDK {helm.helm_sdk_version()})")

    try:
        rendered = render(helm, chart)
    except Exception as e:  # HelmRenderError and friends
        problem(f"default values do not render: {e}")
        return
    objects = [(path, d) for path, docs in rendered.items() for d in docs]
    kinds: dict[str, list[dict]] = {}
    for _, d in objects:
        kinds.setdefault(d.get("kind"), []).append(d)

    # schema validation of built-in kinds
    validated = 0
    for path, d in objects:
        if d.get("apiVersion", "").startswith("keda.sh/"):
            continue
        for version in KUBE_VERSIONS:
            try:
                kv.validate(d, version, strict=True)
            except kv.ValidationError as e:
                loc = ".".join(str(p) for p in e.path)
                problem(f"{path}: {d.get('kind')} {d['metadata'].get('name')} invalid for Kubernetes {version} at {loc}: {e.message}")
            except kv.SchemaNotFoundError:
                problem(f"{path}: no Kubernetes {version} schema for {d.get('apiVersion')} {d.get('kind')}")
        validated += 1
    counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(kinds.items()))
    stats.append(f"default render: {len(objects)} objects ({counts})")
    stats.append(f"{validated} built-in objects valid against the Kubernetes {' and '.join(KUBE_VERSIONS)} schemas (strict)")

    deployments = {d["metadata"]["name"]: d for d in kinds.get("Deployment", [])}
    by_role: dict[str, dict] = {}
    for d in deployments.values():
        role = d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        by_role[role] = d
    partitions = int(values["partitions"])
    metrics_port = int(values["metrics"]["port"])

    for role, key in ROLES.items():
        d = by_role.get(role)
        if d is None:
            problem(f"default render has no Deployment for role {role}")
            continue
        name = d["metadata"]["name"]
        pod = d["spec"]["template"]["spec"]
        psc = pod.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True:
            problem(f"Deployment {name}: pod securityContext.runAsNonRoot is not true")
        if len(pod["containers"]) != 1:
            problem(f"Deployment {name}: expected one container")
        c = pod["containers"][0]
        if c.get("args") != [role]:
            problem(f"Deployment {name}: args {c.get('args')} is not [{role!r}]")
        image = c.get("image", "")
        if "@sha256:" not in image and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
            problem(f"Deployment {name}: image {image!r} is not pinned")
        sc = c.get("securityContext") or {}
        if sc.get("readOnlyRootFilesystem") is not True:
            problem(f"Deployment {name}: readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problem(f"Deployment {name}: allowPrivilegeEscalation is not false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            problem(f"Deployment {name}: capabilities do not drop ALL")

        env = {e["name"]: e for e in c.get("env") or []}
        ports = {p["name"]: p["containerPort"] for p in c.get("ports") or []}
        for k, e in env.items():
            if SECRET_KEY.search(k) and "value" in e:
                problem(f"Deployment {name}: {k} has a value in the environment; use {k}_FILE")
        # *_FILE -> a file of a mounted Secret
        mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts") or []}
        files = set()
        for vol in pod.get("volumes") or []:
            base = mounts.get(vol["name"])
            if base is None:
                continue
            sources = [s.get("secret") for s in (vol.get("projected") or {}).get("sources") or []]
            if vol.get("secret"):
                sources.append(vol["secret"])
            for s in filter(None, sources):
                for item in s.get("items") or []:
                    files.add(f"{base.rstrip('/')}/{item['path']}")
        for k, e in env.items():
            if k.endswith("_FILE") and e.get("value") not in files:
                problem(f"Deployment {name}: {k}={e.get('value')} is not a file of a mounted Secret")
        wanted = {values["secrets"][s]["env"] for s in values[key].get("secretFiles") or []}
        for k in wanted - env.keys():
            problem(f"Deployment {name}: {k} is missing (secretFiles)")

        probes = {p: c.get(p) or {} for p in ("readinessProbe", "livenessProbe", "startupProbe")}
        ann = d["spec"]["template"]["metadata"].get("annotations") or {}
        if role == "gateway":
            want = {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}
            for p, path in want.items():
                g = probes[p].get("httpGet") or {}
                if g.get("path") != path or ports.get(g.get("port"), g.get("port")) != 8080:
                    problem(f"Deployment {name}: {p} is not GET {path} on 8080 (got {g})")
            scrape_port = 8080
        else:
            addr = (env.get("FLASHDEAL_METRICS_ADDR") or {}).get("value", "")
            if addr != f"0.0.0.0:{metrics_port}":
                problem(f"Deployment {name}: FLASHDEAL_METRICS_ADDR is {addr!r}, not 0.0.0.0:{metrics_port}")
            g = probes["livenessProbe"].get("httpGet") or {}
            t = probes["livenessProbe"].get("tcpSocket") or {}
            port = g.get("port", t.get("port"))
            if ports.get(port, port) != metrics_port:
                problem(f"Deployment {name}: livenessProbe is not on the metrics port {metrics_port}")
            scrape_port = metrics_port
        if values["metrics"].get("annotations"):
            if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(scrape_port):
                problem(f"Deployment {name}: prometheus.io annotations do not point at port {scrape_port}")
            if scrape_port not in ports.values():
                problem(f"Deployment {name}: scrape port {scrape_port} is not a container port")

        if role in FIXED_REPLICAS and d["spec"].get("replicas") != FIXED_REPLICAS[role]:
            problem(f"Deployment {name}: replicas {d['spec'].get('replicas')} (want {FIXED_REPLICAS[role]})")
    stats.append(f"{len(by_role)} Deployments: non-root, read-only root, drop ALL, probes, secret files, scrape annotations")

    def pods_selected(selector: dict) -> bool:
        return any(labels_match(selector, d["spec"]["template"]["metadata"]["labels"]) for d in deployments.values())

    for pdb in kinds.get("PodDisruptionBudget", []):
        if not pods_selected(pdb["spec"]["selector"].get("matchLabels") or {}):
            problem(f"PodDisruptionBudget {pdb['metadata']['name']}: selects no rendered Deployment's pods")
    pdb_roles = {p["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component") for p in kinds.get("PodDisruptionBudget", [])}
    for role in ROLES:
        if values[ROLES[role]].get("pdb", {}).get("enabled") and role not in pdb_roles:
            problem(f"role {role}: pdb.enabled but no PodDisruptionBudget rendered")
    gw = by_role.get("gateway")
    services = {s["metadata"]["name"]: s for s in kinds.get("Service", [])}
    for s in services.values():
        if gw is None or not labels_match(s["spec"]["selector"], gw["spec"]["template"]["metadata"]["labels"]):
            problem(f"Service {s['metadata']['name']}: does not select the gateway pods")
    for ing in kinds.get("Ingress", []):
        for rule in ing["spec"].get("rules") or []:
            for p in rule["http"]["paths"]:
                if p["backend"]["service"]["name"] not in services:
                    problem(f"Ingress {ing['metadata']['name']}: backend {p['backend']['service']['name']} is not a rendered Service")
    if values["ingress"]["enabled"] and not kinds.get("Ingress"):
        problem("ingress.enabled but no Ingress rendered")

    # KEDA
    scaled = {}
    for so in kinds.get("ScaledObject", []):
        name = so["metadata"]["name"]
        spec = so.get("spec") or {}
        target = (spec.get("scaleTargetRef") or {}).get("name")
        d = deployments.get(target)
        if d is None:
            problem(f"ScaledObject {name}: scaleTargetRef {target!r} is not a rendered Deployment")
            continue
        role = d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        scaled[role] = so
        if "replicas" in d["spec"]:
            problem(f"Deployment {target}: sets spec.replicas although KEDA scales it (helm upgrade would reset the HPA)")
        mx, mn = spec.get("maxReplicaCount"), spec.get("minReplicaCount")
        if not isinstance(mx, int) or mx > partitions:
            problem(f"ScaledObject {name}: maxReplicaCount {mx!r} is not an integer <= partitions {partitions}")
        if not isinstance(mn, int) or mn < 1 or (isinstance(mx, int) and mn > mx):
            problem(f"ScaledObject {name}: minReplicaCount {mn!r} is not in 1..maxReplicaCount")
        triggers = spec.get("triggers") or []
        if len(triggers) != 1 or triggers[0].get("type") != "kafka":
            problem(f"ScaledObject {name}: expected one kafka trigger")
            continue
        md = triggers[0].get("metadata") or {}
        group, topic = KEDA.get(role, (None, None))
        expect = {"bootstrapServers": values["kafka"]["brokers"], "consumerGroup": group, "topic": topic}
        for k, want in expect.items():
            if md.get(k) != want:
                problem(f"ScaledObject {name}: trigger {k} is {md.get(k)!r}, want {want!r}")
        for k, v in md.items():
            if not isinstance(v, str):
                problem(f"ScaledObject {name}: trigger metadata {k} must be a string (got {type(v).__name__})")
        if not re.fullmatch(r"\d+", str(md.get("lagThreshold", ""))):
            problem(f"ScaledObject {name}: lagThreshold {md.get('lagThreshold')!r} is not a positive integer string")
    for role in KEDA:
        if values[ROLES[role]]["autoscaling"]["enabled"] and role not in scaled:
            problem(f"role {role}: autoscaling.enabled but no ScaledObject rendered")
    for role in FIXED_REPLICAS:
        if role in scaled:
            problem(f"role {role}: must not be autoscaled")
    stats.append(f"{len(scaled)} KEDA ScaledObjects (kafka: " + ", ".join(
        f"{KEDA[r][0]}@{KEDA[r][1]} max {scaled[r]['spec']['maxReplicaCount']}" for r in sorted(scaled)) + f") <= partitions {partitions}")

    hooks = [j for j in kinds.get("Job", []) if j["metadata"]["labels"].get("app.kubernetes.io/component") == "migrate"]
    if values["migrate"]["enabled"]:
        if len(hooks) != 1:
            problem("migrate.enabled but no migrate Job rendered")
        else:
            j = hooks[0]
            hook = (j["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
            if set(hook.split(",")) != {"pre-install", "pre-upgrade"}:
                problem(f"Job {j['metadata']['name']}: helm.sh/hook is {hook!r}, not pre-install,pre-upgrade")
            if j["spec"]["template"]["spec"]["containers"][0].get("args") != ["migrate"]:
                problem(f"Job {j['metadata']['name']}: does not run `flashdeal migrate`")
    stats.append("migrate Job is a pre-install,pre-upgrade hook")

    # other value sets: render, schema-validate, spot-check
    variants = [
        ("autoscaling off", {"orderWriter": {"autoscaling": {"enabled": False}},
                             "projector": {"autoscaling": {"enabled": False}}}),
        ("tls, redis secret, digest, otel, no ingress class", {
            "ingress": {"className": "", "tls": [{"secretName": "flashdeal-tls", "hosts": ["flashdeal.example.com"]}]},
            "redis": {"existingSecret": "flashdeal-redis"},
            "image": {"digest": "sha256:" + "0" * 64},
            "otel": {"endpoint": "http://otel-collector:4317"}}),
        ("no ingress, no hooks, no pdb, no annotations", {
            "ingress": {"enabled": False}, "migrate": {"enabled": False},
            "metrics": {"annotations": False},
            **{k: {"pdb": {"enabled": False}} for k in ROLES.values()}}),
    ]
    for label, overrides in variants:
        try:
            vr = render(helm, chart, overrides)
        except Exception as e:
            problem(f"values variant {label!r} does not render: {e}")
            continue
        vobjs = [(path, d) for path, docs in vr.items() for d in docs]
        for path, d in vobjs:
            if d.get("apiVersion", "").startswith("keda.sh/"):
                continue
            for version in KUBE_VERSIONS:
                try:
                    kv.validate(d, version, strict=True)
                except (kv.ValidationError, kv.SchemaNotFoundError) as e:
                    problem(f"variant {label!r}: {path}: {d.get('kind')} {d['metadata'].get('name')} invalid for {version}: {getattr(e, 'message', e)}")
        vkinds = {}
        for _, d in vobjs:
            vkinds.setdefault(d["kind"], []).append(d)
        if label == "autoscaling off":
            if vkinds.get("ScaledObject"):
                problem("autoscaling off: ScaledObjects still rendered")
            for d in vkinds.get("Deployment", []):
                if "replicas" not in d["spec"]:
                    problem(f"autoscaling off: Deployment {d['metadata']['name']} has no spec.replicas")
        elif label.startswith("tls"):
            gwc = next(d for d in vkinds["Deployment"] if d["metadata"]["name"].endswith("-gateway"))["spec"]["template"]["spec"]["containers"][0]
            redis = next((e for e in gwc["env"] if e["name"] == "REDIS_URL"), {})
            if "valueFrom" not in redis:
                problem("redis.existingSecret: REDIS_URL is not read from the Secret")
            if "@sha256:" not in gwc["image"]:
                problem("image.digest: the image is not pinned by digest")
            if not vkinds["Ingress"][0]["spec"].get("tls"):
                problem("ingress.tls: not rendered")
        else:
            for kind in ("Ingress", "Job", "PodDisruptionBudget"):
                if vkinds.get(kind):
                    problem(f"{label}: {kind} still rendered")
    stats.append(f"{len(variants)} other value sets render and validate ({'; '.join(l for l, _ in variants)})")

    # renders that must fail
    must_fail = [
        ({"orderWriter": {"autoscaling": {"maxReplicaCount": partitions + 1}}}, "exceeds partitions"),
        ({"projector": {"autoscaling": {"maxReplicaCount": partitions + 1}}}, "exceeds partitions"),
        ({"partitions": 4}, "exceeds partitions"),
        ({"orderWriter": {"autoscaling": {"minReplicaCount": 0}}}, "minReplicaCount must be >= 1"),
        ({"image": {"tag": "latest"}}, "must be pinned"),
    ]
    for overrides, message in must_fail:
        try:
            render(helm, chart, overrides)
        except Exception as e:
            if message not in str(e):
                problem(f"render with {overrides} failed, but not with {message!r}: {e}")
        else:
            problem(f"render with {overrides} succeeded; it must fail ({message})")
    stats.append(f"{len(must_fail)} invalid value sets fail to render (max > partitions, partitions lowered, min 0, tag latest)")


def check_helm(root: Path, problems: list[str]) -> list[str]:
    """Runs every check; appends problems, returns what was checked."""
    chart = root / CHART_DIR
    stats: list[str] = []

    def problem(msg: str) -> None:
        problems.append(f"{CHART_DIR}: {msg}")

    if not (chart / "Chart.yaml").is_file():
        problem("Chart.yaml is missing")
        return stats
    values = check_static(root, chart, problem, stats)
    if values is None:
        return stats
    mods = ensure_modules(problem)
    if mods:
        try:
            check_rendered(mods, chart, values, problem, stats)
        except Exception as e:  # a renderer crash is a failed check, not a pass
            problem(f"rendering check crashed: {type(e).__name__}: {e}")
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    root = parser.parse_args().root.resolve()
    problems: list[str] = []
    stats = check_helm(root, problems)
    for p in problems:
        print(f"check_helm: {p}", file=sys.stderr)
    if problems:
        print(f"check_helm: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    for s in stats:
        print(f"check_helm: {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
