#!/usr/bin/env python3
"""Validates the deployment configuration without Docker (run in CI).

    python3 scripts/check_config.py [--root DIR]

Checks docker-compose.yml:
  * every image is pinned: a tag that is not `latest`, or a digest
    (`${VAR:-default}` is judged by its default; `${VAR}` with no default is
    not a pin);
  * every long-running service has a healthcheck, or is in HEALTHCHECK_ALLOWLIST
    below with the reason; every service states its restart policy, and the
    one-shot jobs (`restart: "no"`) are the only targets of
    `service_completed_successfully`;
  * every depends_on target exists and uses the long form with a `condition`
    (and `service_healthy` targets have a healthcheck);
  * every secret, named volume and network a service uses is declared at top
    level; file secrets live in deploy/secrets/ (git-ignored); bind-mounted
    files and the build context exist;
  * FlashDeal services (built from deploy/Dockerfile) run as a non-root `user:`;
  * no environment key ending in PASSWORD or SECRET has a value (secrets come
    from files: *_FILE), and no *_URL value carries a password;
  * every ${VAR} the file uses is documented in .env.example;
  * every FlashDeal role that must run in the stack (REQUIRED_ROLES below)
    is a service running that `flashdeal` command;
  * the topic job (redpanda-init) creates every topic of
    schemas/src/topics.rs ALL_TOPICS.
Also: deploy/Dockerfile's base images are pinned, every YAML file under
deploy/ parses (except Helm templates, deploy/helm/*/templates/, which are
Go templates, not YAML), and every JSON file under deploy/grafana/ parses
(dashboards need a uid, a title and panels).

Then the Helm chart deploy/helm/flashdeal is checked by scripts/check_helm.py
(see its docstring): static checks of Chart.yaml/values.yaml/templates, and
renders (default values and a few other value sets) with Helm's own engine,
validated against the Kubernetes schemas.

Prints one line per problem and exits 1, or prints a summary (one line for
compose and deploy/, one per group of chart checks).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

try:
    import yaml
except ImportError:  # CI images may lack PyYAML; install it quietly once.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "pyyaml"], check=True)
    import yaml

# Long-running services that have no healthcheck, and why. Keep the reasons
# true: the check fails if an entry is stale (service gone, or it now has a
# healthcheck).
HEALTHCHECK_ALLOWLIST = {
    "console": "UI only, nothing depends on it; the image has no documented health endpoint to probe",
    "otel-collector": "the image has no shell or HTTP client to run a probe (health_check extension on :13133 is for outside probes)",
}

# Roles the stack must run: service name -> the `flashdeal` subcommand.
# Without `relay`, no auth/catalog change reaches the log (a new deal never
# reaches Redis); without `reconciler`, expired reservations keep their stock.
REQUIRED_ROLES = {
    "migrate": "migrate",
    "gateway": "gateway",
    "order-writer": "order-writer",
    "projector": "projector",
    "relay": "relay",
    "reconciler": "reconciler",
}
TOPIC_JOB = "redpanda-init"
TOPICS_RS = "schemas/src/topics.rs"

COMPOSE_FILE = "docker-compose.yml"
DOCKERFILE = "deploy/Dockerfile"
SECRETS_DIR = "deploy/secrets"
FLASHDEAL_IMAGE_NAME = "flashdeal"
LONG_RUNNING_RESTART = {"always", "unless-stopped"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
SECRET_KEY = re.compile(r"(PASSWORD|SECRET)$")
URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:\s]*:[^/@\s]+@", re.IGNORECASE)
INTERPOLATION = re.compile(r"\$(?:\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (compose does; PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *anchor`: its keys may be overridden
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(path: Path):
    with path.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=StrictLoader)


def interpolate_defaults(value: str) -> tuple[str, list[str]]:
    """Resolves compose interpolation with defaults only (the pin must not
    depend on someone's environment). Returns the text and the variables
    that have no default."""
    missing: list[str] = []

    def sub(m: re.Match) -> str:
        if m.group("bare"):
            missing.append(m.group("bare"))
            return ""
        expr = m.group("braced")
        for sep in (":-", "-", ":?", "?", ":+", "+"):
            if sep in expr:
                name, rest = expr.split(sep, 1)
                if sep in (":-", "-"):
                    return rest
                missing.append(name)
                return ""
        missing.append(expr)
        return ""

    text = value.replace("$$", "\0")
    text = INTERPOLATION.sub(sub, text)
    return text.replace("\0", "$"), missing


def variables_used(text: str) -> set[str]:
    names = set()
    for m in INTERPOLATION.finditer(text.replace("$$", "")):
        expr = m.group("bare") or m.group("braced")
        names.add(re.split(r"[:?+-]", expr, maxsplit=1)[0])
    return names


def image_pin_problem(image: str) -> str | None:
    """None when `image` is pinned, else why not."""
    ref, missing = interpolate_defaults(image)
    if missing:
        return f"image {image!r} depends on ${{{missing[0]}}} with no default, so it is not pinned"
    if "@sha256:" in ref:
        return None
    name = ref.rsplit("/", 1)[-1]
    if ":" not in name:
        return f"image {image!r} has no tag (pin an exact version, or a digest)"
    tag = name.split(":", 1)[1]
    if not tag or tag == "latest":
        return f"image {image!r} uses {tag or 'an empty tag'!r} (pin an exact version, or a digest)"
    return None


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def environment_items(env) -> list[tuple[str, object]]:
    if isinstance(env, dict):
        return list(env.items())
    items = []
    for entry in as_list(env):
        key, sep, val = str(entry).partition("=")
        items.append((key, val if sep else None))
    return items


def is_flashdeal(svc: dict) -> bool:
    build = svc.get("build")
    if isinstance(build, dict) and str(build.get("dockerfile", "")).endswith(DOCKERFILE):
        return True
    image = str(svc.get("image", ""))
    ref, _ = interpolate_defaults(image)
    return ref.rsplit("/", 1)[-1].split(":", 1)[0] == FLASHDEAL_IMAGE_NAME


def named_volume(entry) -> str | None:
    """The named volume a service volume entry uses, or None for a bind/tmpfs."""
    if isinstance(entry, dict):
        if entry.get("type", "volume") == "volume" and entry.get("source"):
            return str(entry["source"])
        return None
    source = str(entry).split(":", 1)[0] if ":" in str(entry) else None
    if not source or source.startswith((".", "/", "~", "$")):
        return None
    return source


def bind_source(entry) -> str | None:
    if isinstance(entry, dict):
        return str(entry["source"]) if entry.get("type") == "bind" and entry.get("source") else None
    source = str(entry).split(":", 1)[0]
    return source if ":" in str(entry) and source.startswith(".") else None


def check_compose(root: Path, problems: list[str]) -> int:
    path = root / COMPOSE_FILE
    where = COMPOSE_FILE

    def problem(msg: str) -> None:
        problems.append(f"{where}: {msg}")

    if not path.is_file():
        problem("missing")
        return 0
    try:
        doc = load_yaml(path)
    except yaml.YAMLError as e:
        problem(f"does not parse: {e}")
        return 0
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict) or not doc["services"]:
        problem("has no `services:` mapping")
        return 0

    services: dict = doc["services"]
    top_secrets = doc.get("secrets") or {}
    top_volumes = doc.get("volumes") or {}
    top_networks = doc.get("networks") or {}

    # Declared secrets: file secrets stay in the git-ignored secrets dir.
    for name, spec in top_secrets.items():
        if isinstance(spec, dict) and "file" in spec:
            rel = Path(str(spec["file"]))
            resolved = (root / rel).resolve()
            secrets_dir = (root / SECRETS_DIR).resolve()
            if secrets_dir not in resolved.parents:
                problem(f"secret {name!r}: file {spec['file']} is outside {SECRETS_DIR}/ (git-ignored)")
    if top_secrets and not (root / SECRETS_DIR / ".gitignore").is_file():
        problem(f"{SECRETS_DIR}/.gitignore is missing: secret files could be committed")

    completed_targets: set[str] = set()
    for svc in services.values():
        deps = (svc or {}).get("depends_on")
        if isinstance(deps, dict):
            for target, spec in deps.items():
                if isinstance(spec, dict) and spec.get("condition") == "service_completed_successfully":
                    completed_targets.add(target)

    for name, svc in services.items():
        label = f"service {name!r}"
        if not isinstance(svc, dict):
            problem(f"{label}: is not a mapping")
            continue

        # Image pin (a service built here without `image:` gets no pin check).
        if "image" in svc:
            why = image_pin_problem(str(svc["image"]))
            if why:
                problem(f"{label}: {why}")
        elif "build" not in svc:
            problem(f"{label}: has neither `image:` nor `build:`")

        build = svc.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            if not (root / str(context)).is_dir():
                problem(f"{label}: build context {context!r} does not exist")
            if isinstance(build, dict) and build.get("dockerfile"):
                dockerfile = root / str(context) / str(build["dockerfile"])
                if not dockerfile.is_file():
                    problem(f"{label}: dockerfile {build['dockerfile']!r} does not exist")

        # Restart policy and healthcheck.
        restart = svc.get("restart")
        if restart is False:
            problem(f"{label}: `restart: no` parses as a boolean; quote it: restart: \"no\"")
            restart = "no"
        one_shot = restart == "no"
        if restart is None:
            problem(f"{label}: no restart policy (restart: unless-stopped for a long-running service, "
                    f"restart: \"no\" for a one-shot job)")
        elif not one_shot and restart not in LONG_RUNNING_RESTART and not str(restart).startswith("on-failure"):
            problem(f"{label}: unknown restart policy {restart!r}")
        if name in completed_targets and not one_shot:
            problem(f"{label}: others wait for it to complete (service_completed_successfully) "
                    f"but its restart policy is {restart!r}; a one-shot job needs restart: \"no\"")

        hc = svc.get("healthcheck")
        has_hc = isinstance(hc, dict) and not hc.get("disable") and as_list(hc.get("test"))[:1] != ["NONE"]
        if has_hc and not hc.get("test"):
            problem(f"{label}: healthcheck has no `test`")
        if not one_shot and restart is not None:
            if not has_hc and name not in HEALTHCHECK_ALLOWLIST:
                problem(f"{label}: long-running but has no healthcheck (add one, or add it to "
                        f"HEALTHCHECK_ALLOWLIST in scripts/check_config.py with the reason)")
        if has_hc and name in HEALTHCHECK_ALLOWLIST:
            problem(f"{label}: has a healthcheck, so remove its stale HEALTHCHECK_ALLOWLIST entry")

        # depends_on: existing targets, long form with a condition.
        deps = svc.get("depends_on")
        if isinstance(deps, list):
            problem(f"{label}: depends_on uses the short list form; give each target a `condition:`")
            deps = {d: {} for d in deps}
        for target, spec in (deps or {}).items():
            if target not in services:
                problem(f"{label}: depends_on {target!r}, which is not a service")
                continue
            condition = (spec or {}).get("condition")
            if condition is None:
                problem(f"{label}: depends_on {target!r} has no `condition:`")
            elif condition not in CONDITIONS:
                problem(f"{label}: depends_on {target!r} has unknown condition {condition!r}")
            elif condition == "service_healthy":
                t_hc = (services[target] or {}).get("healthcheck")
                if not isinstance(t_hc, dict) or t_hc.get("disable"):
                    problem(f"{label}: waits for {target!r} to be healthy, but {target!r} has no healthcheck")
            elif condition == "service_completed_successfully" and (services[target] or {}).get("restart") != "no":
                pass  # reported on the target above

        # Secrets, volumes and networks are declared at top level.
        for entry in as_list(svc.get("secrets")):
            secret = entry.get("source") if isinstance(entry, dict) else entry
            if secret not in top_secrets:
                problem(f"{label}: uses secret {secret!r}, which is not declared under top-level `secrets:`")
        for entry in as_list(svc.get("volumes")):
            vol = named_volume(entry)
            if vol is not None and vol not in top_volumes:
                problem(f"{label}: uses volume {vol!r}, which is not declared under top-level `volumes:`")
            src = bind_source(entry)
            if src is not None:
                resolved, missing = interpolate_defaults(src)
                if not missing and not (root / resolved).exists():
                    problem(f"{label}: bind-mounts {src}, which does not exist")
        nets = svc.get("networks")
        for net in (nets.keys() if isinstance(nets, dict) else as_list(nets)):
            if net not in top_networks:
                problem(f"{label}: joins network {net!r}, which is not declared under top-level `networks:`")

        # FlashDeal roles run as a non-root user.
        if is_flashdeal(svc):
            user = svc.get("user")
            if user is None:
                problem(f"{label}: FlashDeal service without `user:` (run as the image's non-root uid)")
            elif str(user).split(":", 1)[0] in ("0", "root"):
                problem(f"{label}: FlashDeal service runs as root (`user: {user}`)")

        # Replicas cannot share a fixed host port or a container name.
        replicas = ((svc.get("deploy") or {}).get("replicas")) or 1
        if isinstance(replicas, int) and replicas > 1:
            if svc.get("container_name"):
                problem(f"{label}: {replicas} replicas cannot share container_name")
            if svc.get("ports"):
                problem(f"{label}: {replicas} replicas cannot publish the same host ports")

        # No secret values in the environment.
        for key, value in environment_items(svc.get("environment")):
            if value in (None, ""):
                continue
            text = str(value)
            if SECRET_KEY.search(key):
                kind = "an interpolated" if "$" in text else "a literal"
                problem(f"{label}: environment {key} has {kind} value; mount a secret and use {key}_FILE")
            elif key.endswith("_URL") and URL_WITH_PASSWORD.match(text):
                problem(f"{label}: environment {key} embeds a password; use a secret file ({key}_FILE)")

    # The roles the stack needs run, each as its own service.
    for name, subcommand in REQUIRED_ROLES.items():
        svc = services.get(name)
        if not isinstance(svc, dict):
            problem(f"service {name!r} is missing: the stack needs a `flashdeal {subcommand}` role")
            continue
        if not is_flashdeal(svc):
            problem(f"service {name!r}: is not built from {DOCKERFILE}")
        if as_list(svc.get("command"))[:1] != [subcommand]:
            problem(f"service {name!r}: command should be [{subcommand!r}], got {svc.get('command')!r}")

    # The topic job creates every topic the code knows.
    job = services.get(TOPIC_JOB)
    if isinstance(job, dict):
        script = " ".join(str(c) for c in as_list(job.get("command")))
        created = set(re.findall(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+", script))
        for topic in all_topics(root, problem):
            if topic not in created:
                problem(f"service {TOPIC_JOB!r}: does not create topic {topic!r} ({TOPICS_RS} ALL_TOPICS)")
    else:
        problem(f"service {TOPIC_JOB!r} is missing: nothing creates the topics")

    # Every ${VAR} is documented in .env.example.
    env_example = root / ".env.example"
    documented = set()
    if env_example.is_file():
        documented = set(re.findall(r"^\s*#?\s*([A-Z][A-Z0-9_]*)=", env_example.read_text(encoding="utf-8"), re.M))
    for var in sorted(variables_used(path.read_text(encoding="utf-8"))):
        if var not in documented:
            problem(f"${{{var}}} is used but not documented in .env.example")

    return len(services)


def all_topics(root: Path, problem) -> list[str]:
    """The topic names in schemas/src/topics.rs `ALL_TOPICS`, constants resolved."""
    path = root / TOPICS_RS
    if not path.is_file():
        problem(f"{TOPICS_RS} is missing, so the topics cannot be checked")
        return []
    text = path.read_text(encoding="utf-8")
    consts = dict(re.findall(r'pub const ([A-Z_]+): &str = "([^"]+)";', text))
    m = re.search(r"pub const ALL_TOPICS: \[&str; \d+\] = \[(.*?)\];", text, re.S)
    if not m:
        problem(f"{TOPICS_RS}: no `ALL_TOPICS` array found")
        return []
    topics = []
    for item in re.findall(r'"[^"]+"|[A-Z_]+', m.group(1)):
        if item.startswith('"'):
            topics.append(item.strip('"'))
        elif item in consts:
            topics.append(consts[item])
        else:
            problem(f"{TOPICS_RS}: ALL_TOPICS names {item}, which is not a string constant there")
    return topics


def check_dockerfile(root: Path, problems: list[str]) -> None:
    path = root / DOCKERFILE
    if not path.is_file():
        problems.append(f"{DOCKERFILE}: missing")
        return
    stages: set[str] = set()
    args: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "ARG" and "=" in words[1]:
            k, v = words[1].split("=", 1)
            args[k] = v
        if not words or words[0].upper() != "FROM":
            continue
        image = next((w for w in words[1:] if not w.startswith("--")), "")
        if len(words) >= 4 and words[-2].upper() == "AS":
            stages.add(words[-1].lower())
        if image.lower() in stages or image == "scratch":
            continue
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), image)
        why = image_pin_problem(image)
        if why:
            problems.append(f"{DOCKERFILE}:{lineno}: {why}")


def is_helm_template(rel: Path) -> bool:
    """deploy/helm/<chart>/templates/**, relative to deploy/."""
    return len(rel.parts) >= 4 and rel.parts[0] == "helm" and rel.parts[2] == "templates"


def check_deploy_files(root: Path, problems: list[str]) -> int:
    deploy = root / "deploy"
    count = 0
    for path in sorted(deploy.rglob("*")):
        if not path.is_file() or SECRETS_DIR in path.relative_to(root).as_posix():
            continue
        if is_helm_template(path.relative_to(deploy)):
            continue  # Go templates: scripts/check_helm.py renders and checks them
        rel = path.relative_to(root).as_posix()
        if path.suffix in (".yml", ".yaml"):
            count += 1
            try:
                docs = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=StrictLoader))
            except yaml.YAMLError as e:
                problems.append(f"{rel}: does not parse: {e}")
                continue
            if not any(d for d in docs):
                problems.append(f"{rel}: is empty")
        elif path.suffix == ".json" and "grafana" in path.relative_to(deploy).parts[:1]:
            count += 1
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                problems.append(f"{rel}: does not parse: {e}")
                continue
            if "dashboards" in path.parts:
                for field in ("uid", "title", "panels"):
                    if not doc.get(field):
                        problems.append(f"{rel}: dashboard has no {field!r}")
                for panel in doc.get("panels") or []:
                    for target in panel.get("targets") or []:
                        if not str(target.get("expr", "")).strip():
                            problems.append(f"{rel}: panel {panel.get('title')!r} has a target without `expr`")
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="repository root (default: this script's parent directory)")
    root = parser.parse_args().root.resolve()

    problems: list[str] = []
    services = check_compose(root, problems)
    check_dockerfile(root, problems)
    deploy_files = check_deploy_files(root, problems)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from check_helm import CHART_DIR, check_helm  # sibling script

    helm_checked = check_helm(root, problems)

    for p in problems:
        print(f"check_config: {p}", file=sys.stderr)
    if problems:
        print(f"check_config: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_config: {COMPOSE_FILE} {services} services ok, {deploy_files} deploy files ok")
    for line in helm_checked:
        print(f"check_config: {CHART_DIR}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
