"""Consistency checks of the deployment files that no schema can express (run by
scripts/validate-deploy.sh with its venv's Python, which has PyYAML).

- compose/Dockerfile copies every workspace member and every file the crates embed, and builds
  the packages of both binaries;
- compose/.env.example lists every variable compose/docker-compose.yml reads;
- the workers' stop grace periods (compose and Kubernetes) exceed their shutdown deadline;
- compose/k8s/kustomization.yaml lists exactly the manifests of its folder;
- every KEDA ScaledObject targets a worker Deployment of the folder and reads the fleet answer
  (`desired`, target "1") from the orchestrator Service's port, with a bearer token (the API
  needs a key);
- every trigger's authenticationRef names a TriggerAuthentication of the folder, which gives the
  bearer trigger its `token`, and every Secret key a TriggerAuthentication reads is defined in the
  folder.

Prints one line per failed check and exits 1 if any failed.
"""

import argparse
import re
import sys
import tomllib
from pathlib import Path

import yaml

BINARIES = ("blockfill", "blockfill-worker")
FLEET_PATH = re.compile(r"^/v1/chains/[^/]+/fleet$")
failures: list[str] = []


def check(ok: bool, message: str) -> None:
    if not ok:
        failures.append(message)


def seconds(text: str | int) -> float:
    """A compose or humantime duration ("45s", "1m30s", "500ms") in seconds."""
    if isinstance(text, int):
        return float(text)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def dockerfile(root: Path, path: Path) -> None:
    text = path.read_text()
    workspace = tomllib.loads((root / "Cargo.toml").read_text())["workspace"]
    builder = text.split("\nFROM ")[1]  # the first stage
    copied = set()
    for line in builder.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            copied.update(p.rstrip("/") for p in line.split()[1:-1])
    for needed in ["Cargo.toml", "Cargo.lock", *workspace["members"]]:
        check(needed in copied, f"{path}: the builder does not COPY {needed}")
    # Files the crates embed at compile time (include_str!/include_bytes!) must be copied too.
    for member in workspace["members"]:
        for source in (root / member).rglob("*.rs"):
            for rel in re.findall(r'include_(?:str|bytes)!\("([^"]+)"\)', source.read_text()):
                top = (source.parent / rel).resolve().relative_to(root.resolve()).parts[0]
                check(top in copied, f"{path}: {source.relative_to(root)} embeds {rel}, "
                      f"but {top} is not copied")
    owners = {}
    for member in workspace["members"]:
        manifest = tomllib.loads((root / member / "Cargo.toml").read_text())
        for target in manifest.get("bin", []):
            owners[target["name"]] = manifest["package"]["name"]
    for binary in BINARIES:
        package = owners.get(binary)
        check(package is not None, f"no workspace package declares the binary {binary}")
        check(f"-p {package}" in text, f"{path} does not build package {package}")
        check(f"target/release/{binary}" in text, f"{path} does not copy out {binary}")
    ignored = (root / ".dockerignore").read_text().split()
    for entry in ("target/", ".git/", ".cache/"):
        check(entry in ignored, f".dockerignore does not exclude {entry}")


def compose(root: Path) -> None:
    text = (root / "compose/docker-compose.yml").read_text()
    spec = yaml.safe_load(text)
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (root / "compose/.env.example").read_text(), re.M))
    for name in sorted(set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))):
        check(name in listed, f"compose/.env.example does not list {name}, read by docker-compose.yml")
    deadline = seconds("30s")  # BLOCKFILL_SHUTDOWN_DEADLINE's default
    for name, service in spec["services"].items():
        command = service.get("command") or []
        if command[:1] == ["blockfill-worker"]:
            grace = seconds(service.get("stop_grace_period", "10s"))
            check(grace > deadline, f"compose service {name}: stop_grace_period {grace:g}s is not above "
                  f"the shutdown deadline {deadline:g}s")


def kubernetes(k8s: Path) -> None:
    kustomization = yaml.safe_load((k8s / "kustomization.yaml").read_text())
    listed = set(kustomization.get("resources", []))
    present = {p.name for p in k8s.iterdir() if p.suffix in (".yaml", ".yml")} - {"kustomization.yaml"}
    for name in sorted(present - listed):
        check(False, f"{k8s}/kustomization.yaml does not list {name}")
    for name in sorted(listed - present):
        check(False, f"{k8s}/kustomization.yaml lists {name}, which does not exist")
    docs = [d for p in sorted(present) for d in yaml.safe_load_all((k8s / p).read_text()) if d]
    by_kind: dict[str, dict[str, dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    deadline = seconds("30s")
    for config in by_kind.get("ConfigMap", {}).values():
        if "BLOCKFILL_SHUTDOWN_DEADLINE" in config.get("data", {}):
            deadline = seconds(config["data"]["BLOCKFILL_SHUTDOWN_DEADLINE"])
    deployments = by_kind.get("Deployment", {})
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        if pod["containers"][0].get("command", [])[:1] == ["blockfill-worker"]:
            grace = pod.get("terminationGracePeriodSeconds", 30)
            check(grace > deadline, f"Deployment {name}: terminationGracePeriodSeconds {grace} is not "
                  f"above the shutdown deadline {deadline:g}s")
    services = by_kind.get("Service", {})
    auths = by_kind.get("TriggerAuthentication", {})
    secrets = by_kind.get("Secret", {})
    for name, auth in auths.items():
        for ref in auth["spec"].get("secretTargetRef", []):
            secret = secrets.get(ref["name"])
            check(secret is not None, f"TriggerAuthentication {name}: Secret {ref['name']} is not "
                  f"defined in {k8s}")
            if secret is not None:
                keys = {*secret.get("data", {}), *secret.get("stringData", {})}
                check(ref["key"] in keys, f"TriggerAuthentication {name}: Secret {ref['name']} has "
                      f"no key {ref['key']!r}")
    for name, scaled in by_kind.get("ScaledObject", {}).items():
        target = scaled["spec"]["scaleTargetRef"]["name"]
        command = deployments.get(target, {}).get("spec", {}).get("template", {}).get("spec", {}) \
            .get("containers", [{}])[0].get("command", [])
        check(command[:1] == ["blockfill-worker"], f"ScaledObject {name}: target {target} is not a "
              f"worker Deployment of {k8s}")
        for trigger in scaled["spec"]["triggers"]:
            meta = trigger["metadata"]
            ref = trigger.get("authenticationRef")
            if ref is not None:
                kind = ref.get("kind", "TriggerAuthentication")
                auth = auths.get(ref["name"]) if kind == "TriggerAuthentication" else None
                check(auth is not None, f"ScaledObject {name}: authenticationRef {ref['name']!r} is "
                      f"not a TriggerAuthentication of {k8s}")
                given = {r["parameter"] for r in (auth or {}).get("spec", {}).get("secretTargetRef", [])}
                check(auth is None or meta.get("authMode") != "bearer" or "token" in given,
                      f"ScaledObject {name}: TriggerAuthentication {ref['name']} gives no `token` "
                      "for authMode bearer")
            match = re.match(r"^http://([^.:/]+)(?:\.[^:/]+)?:(\d+)(/[^?]*)$", meta.get("url", ""))
            check(match is not None, f"ScaledObject {name}: url {meta.get('url')!r} is not "
                  "http://<service>.<namespace>.svc:<port>/<path>")
            if match is None:
                continue
            host, port, path = match.groups()
            ports = [p["port"] for p in services.get(host, {}).get("spec", {}).get("ports", [])]
            check(int(port) in ports, f"ScaledObject {name}: {host}:{port} is not a Service port of {k8s}")
            check(bool(FLEET_PATH.match(path)), f"ScaledObject {name}: {path} is not a fleet answer")
            check(meta.get("valueLocation") == "desired" and meta.get("targetValue") == "1",
                  f"ScaledObject {name}: reads {meta.get('valueLocation')!r} with target "
                  f"{meta.get('targetValue')!r}, not 'desired' with '1'")
            check(meta.get("authMode") == "bearer" and ref is not None,
                  f"ScaledObject {name}: reads the fleet answer without a key (authMode bearer and "
                  "an authenticationRef)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository")
    parser.add_argument("--dockerfile", type=Path, help="default: ROOT/compose/Dockerfile")
    parser.add_argument("--k8s", type=Path, help="the manifests folder (default: ROOT/compose/k8s)")
    args = parser.parse_args()
    dockerfile(args.root, args.dockerfile or args.root / "compose/Dockerfile")
    compose(args.root)
    kubernetes(args.k8s or args.root / "compose/k8s")
    for failure in failures:
        print(f"deploy-checks: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
