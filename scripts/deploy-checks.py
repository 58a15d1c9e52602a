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
  folder;
- observability (compose profile `observability`): the binaries send traces only when .env names
  the collector, the workers serve metrics and Prometheus scrapes them and the orchestrator; the
  collector's pipelines name only defined components and its exporters reach compose services;
  Grafana's provisioning parses, its datasources reach compose services and its provider loads
  the mounted dashboards folder; every dashboard parses, has a uid, uses provisioned datasources
  and queries only the series of METRICS below (counters through rate/increase, labels of LABELS).

Prints one line per failed check and exits 1 if any failed.
"""

import argparse
import json
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


# The metric contract of the binaries (issue 13): the only series the dashboards may query, with
# their type (a histogram is queried through its _bucket, _sum and _count series), and the labels
# they carry (plus le, and job and instance from Prometheus).
METRICS = {
    "blockfill_blocks_written_total": "counter",  # chain, lane (backfill|live)
    "blockfill_batches_done_total": "counter",
    "blockfill_batches_failed_total": "counter",
    "blockfill_batch_duration_seconds": "histogram",  # chain, phase (fetch|write)
    "blockfill_live_lag_blocks": "gauge",
    "blockfill_backlog_blocks": "gauge",
    "blockfill_queue_depth": "gauge",  # queue, state
    "blockfill_fleet_desired_workers": "gauge",
    "blockfill_fleet_running_workers": "gauge",
    "blockfill_rpc_requests_total": "counter",  # chain, endpoint, outcome (ok|error)
    "blockfill_rpc_breaker_open": "gauge",
    "blockfill_rpc_latency_seconds": "histogram",
    "blockfill_batch_attempts_failed_total": "counter",  # kind
    "blockfill_batches_split_total": "counter",
    "blockfill_blocks_quarantined_total": "counter",
    "blockfill_reorgs_total": "counter",
    "blockfill_db_pool_connections": "gauge",  # state
    "blockfill_http_requests_total": "counter",  # route, method, status
    "blockfill_http_request_duration_seconds": "histogram",
}
LABELS = {"chain", "lane", "phase", "endpoint", "outcome", "kind", "queue", "state", "route", "method",
          "status", "le", "job", "instance"}
SERIES = {series: (name, kind) for name, kind in METRICS.items()
          for series in ([f"{name}_bucket", f"{name}_sum", f"{name}_count"] if kind == "histogram" else [name])}
GROUPING = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and",
                "or", "unless", "atan2", "inf", "nan"}
RATES = {"rate", "irate", "increase"}
OTEL_KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")
OTEL_SIGNALS = {"traces", "metrics", "logs", "profiles"}
COMPONENT_ID = re.compile(r"^[a-z][a-z0-9_]*(/[^/\s]+)?$")


def promql(expr: str) -> tuple[list[tuple[str, str]], set[str], list[set[str]]]:
    """The series an expression selects (each with the function directly around it), the labels it
    names, and its grouping label sets. Enough PromQL for dashboard queries, not a parser."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals, with any Grafana variables
    groups = [{g.strip() for g in group.split(",") if g.strip()} for group in re.findall(GROUPING, text)]
    text = re.sub(GROUPING, " ", text)
    labels = set().union(*groups) if groups else set()
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery windows
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables outside strings
    series = []
    for match in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.groups()
        if call or name.lower() in PROMQL_WORDS:
            continue
        around = re.search(r"(\w+)\s*\(\s*$", text[:match.start()])
        series.append((name, around.group(1) if around else ""))
    return series, labels, groups


def check_expr(where: str, expr: str, legend: str, variables: set[str]) -> None:
    check(bool(expr.strip()), f"{where}: empty expression")
    series, labels, groups = promql(expr)
    check(bool(series), f"{where}: selects no series: {expr}")
    for name, around in series:
        if name not in SERIES:
            check(False, f"{where}: {name} is not a metric of the contract (deploy-checks.py METRICS)")
            continue
        base, kind = SERIES[name]
        if kind == "counter" or name.endswith("_bucket"):
            check(around in RATES, f"{where}: {name} is a counter; query it through rate() or increase()")
        if kind == "gauge":
            check(around not in RATES, f"{where}: {name} is a gauge; rate() of it means nothing")
    for label in sorted(labels - LABELS):
        check(False, f"{where}: label {label!r} is not a label of the contract")
    if "histogram_quantile" in expr:
        check(bool(groups) and all("le" in g for g in groups),
              f"{where}: histogram_quantile over an aggregation that drops `le`")
    kept = groups[0] if groups else LABELS  # the outermost aggregation's (first: `sum by (..) (..)`)
    for name in re.findall(r"\{\{\s*(\w+)\s*\}\}", legend or ""):
        check(name in kept, f"{where}: legend {{{{{name}}}}} is not a label the query keeps")
    for name in re.findall(r"\$\{?(\w+)", expr):
        check(name.startswith("__") or name in variables,
              f"{where}: ${name} is not a variable of the dashboard")


def dashboard_panels(panels: list) -> list:
    """Every panel, rows' nested (collapsed) panels included."""
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(dashboard_panels(panel.get("panels") or []))
    return out


def dashboards(folder: Path, datasources: dict[str, str]) -> None:
    files = sorted(folder.glob("*.json"))
    check(bool(files), f"{folder}: no dashboard JSON")
    uids: dict[str, Path] = {}
    for path in files:
        try:
            board = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            check(False, f"{path}: not JSON: {error}")
            continue
        uid = board.get("uid")
        check(isinstance(uid, str) and bool(uid), f"{path}: no uid")
        check(uid not in uids, f"{path}: uid {uid!r} is also the uid of {uids.get(uid)}")
        uids[uid] = path
        check(bool(board.get("title")), f"{path}: no title")
        check(isinstance(board.get("schemaVersion"), int) and board["schemaVersion"] >= 36,
              f"{path}: schemaVersion {board.get('schemaVersion')!r} is not a number >= 36")
        check(board.get("id") is None, f"{path}: a provisioned dashboard carries no id (Grafana assigns it)")
        variables = {v.get("name") for v in board.get("templating", {}).get("list", [])}
        for var in board.get("templating", {}).get("list", []):
            where = f"{path}: variable {var.get('name')!r}"
            if var.get("type") != "query":
                continue
            query = var.get("query")
            query = query.get("query", "") if isinstance(query, dict) else (query or "")
            values = re.fullmatch(r"\s*label_values\(\s*(?:(.+?)\s*,\s*)?(\w+)\s*\)\s*", query)
            if values:
                check(values.group(2) in LABELS, f"{where}: label {values.group(2)!r} is not a label of the contract")
                selector = values.group(1)
                if selector:
                    for name, _ in promql(selector)[0]:
                        check(name in SERIES, f"{where}: {name} is not a metric of the contract")
            else:
                query = re.sub(r"^\s*query_result\((.*)\)\s*$", r"\1", query)
                check_expr(where, query, "", variables)
            uid_of = (var.get("datasource") or {}).get("uid")
            check(uid_of in datasources, f"{where}: datasource {uid_of!r} is not provisioned")
        ids = set()
        for panel in dashboard_panels(board.get("panels") or []):
            where = f"{path}: panel {panel.get('id')} {panel.get('title')!r}"
            check(panel.get("id") not in ids, f"{where}: duplicate panel id")
            ids.add(panel.get("id"))
            grid = panel.get("gridPos") or {}
            check(all(isinstance(grid.get(k), int) for k in "hwxy") and grid["x"] + grid["w"] <= 24,
                  f"{where}: gridPos {grid} is not within the 24 columns")
            if panel.get("type") == "row":
                continue
            targets = panel.get("targets") or []
            check(bool(targets), f"{where}: no targets")
            refs = [t.get("refId") for t in targets]
            check(len(set(refs)) == len(refs) and all(refs), f"{where}: refIds {refs} are not distinct")
            for source in [panel.get("datasource"), *(t.get("datasource") for t in targets)]:
                if isinstance(source, dict):
                    uid_of = source.get("uid")
                    check(uid_of in datasources and datasources[uid_of] == source.get("type"),
                          f"{where}: datasource {source} is not a provisioned datasource")
            for target in targets:
                if "expr" in target or datasources.get((target.get("datasource") or {}).get("uid")) == "prometheus":
                    check_expr(f"{where} {target.get('refId')}", target.get("expr", ""),
                               target.get("legendFormat", ""), variables)


def container_ports(service: dict) -> set[int]:
    """The ports a compose service's containers are declared to listen on (ports and expose)."""
    ports = set()
    for entry in service.get("ports", []):
        target = entry.get("target") if isinstance(entry, dict) else str(entry).rsplit(":", 1)[-1]
        ports.add(int(str(target).split("/")[0]))
    ports.update(int(str(p).split("/")[0]) for p in service.get("expose", []))
    return ports


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def address(services: dict, where: str, host: str, port: int) -> None:
    check(host in services, f"{where}: {host} is not a compose service")
    if host in services:
        check(port in container_ports(services[host]),
              f"{where}: compose service {host} declares no port {port} (ports or expose)")


def observability(root: Path, otel_config: Path, provisioning: Path, dashboards_dir: Path) -> None:
    compose_dir = root / "compose"
    spec = yaml.safe_load((compose_dir / "docker-compose.yml").read_text())
    services = spec["services"]
    env_example = (compose_dir / ".env.example").read_text()
    # Every file a service mounts from the repository exists.
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith("."):
                check((compose_dir / source).exists(), f"compose service {name} mounts {source}, which "
                      "does not exist")

    # The binaries: traces off unless .env names the collector; workers serve metrics.
    collector = services.get("otel-collector")
    check(collector is not None, "compose has no otel-collector service")
    metrics_ports = set()
    for name, service in services.items():
        command = (service.get("command") or [])[:1]
        if command not in (["blockfill"], ["blockfill-worker"]):
            continue
        env = environment(service)
        check(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}",
              f"compose service {name}: OTEL_EXPORTER_OTLP_ENDPOINT is not ${{OTEL_EXPORTER_OTLP_ENDPOINT:-}} "
              "(empty unless .env sets it)")
        check(env.get("OTEL_SERVICE_NAME", "").startswith("blockfill"),
              f"compose service {name}: no OTEL_SERVICE_NAME")
        check("profiles" not in service, f"compose service {name} is in a profile")
        if command == ["blockfill-worker"]:
            addr = env.get("BLOCKFILL_WORKER_METRICS_ADDR", "")
            check(bool(re.fullmatch(r"0\.0\.0\.0:\d+", addr)),
                  f"compose service {name}: BLOCKFILL_WORKER_METRICS_ADDR {addr!r} is not 0.0.0.0:<port>")
            if addr:
                metrics_ports.add((name, int(addr.rsplit(":", 1)[1])))
    for name in ("otel-collector", "jaeger", "prometheus", "grafana"):
        check(name in services and "observability" in services[name].get("profiles", []),
              f"compose service {name} is missing or not in the observability profile")

    # Prometheus scrapes the orchestrator and every worker replica.
    prometheus = yaml.safe_load((compose_dir / "prometheus.yml").read_text())
    scraped = set()
    for job in prometheus.get("scrape_configs", []):
        where = f"compose/prometheus.yml job {job.get('job_name')}"
        for static in job.get("static_configs", []):
            for target in static.get("targets", []):
                host, port = target.rsplit(":", 1)
                address(services, where, host, int(port))
                scraped.add((host, int(port)))
        for sd in job.get("dns_sd_configs", []):
            check(sd.get("type", "SRV") == "A" and "port" in sd, f"{where}: dns_sd_configs is not type A with a port")
            for host in sd.get("names", []):
                address(services, where, host, int(sd.get("port", 0)))
                scraped.add((host, int(sd.get("port", 0))))
    check(("orchestrator", 8080) in scraped, "compose/prometheus.yml does not scrape orchestrator:8080")
    for name, port in sorted(metrics_ports):
        check((name, port) in scraped, f"compose/prometheus.yml does not scrape the workers of {name} "
              f"on {port} (BLOCKFILL_WORKER_METRICS_ADDR)")

    # The collector: components defined, pipelines naming only defined ones, addresses that exist.
    try:
        config = yaml.safe_load(otel_config.read_text())
    except yaml.YAMLError as error:
        check(False, f"{otel_config}: not YAML: {error}")
        config = None
    if isinstance(config, dict):
        defined = {}
        for kind in OTEL_KINDS:
            section = config.get(kind) or {}
            check(isinstance(section, dict), f"{otel_config}: {kind} is not a mapping")
            defined[kind] = set(section) if isinstance(section, dict) else set()
            for component in defined[kind]:
                check(bool(COMPONENT_ID.match(component)), f"{otel_config}: {kind} {component!r} is not type[/name]")
        service = config.get("service") or {}
        for ext in service.get("extensions", []):
            check(ext in defined["extensions"], f"{otel_config}: service extension {ext!r} is not defined")
        pipelines = service.get("pipelines") or {}
        check(bool(pipelines), f"{otel_config}: no pipelines")
        used = {kind: set() for kind in OTEL_KINDS}
        for pname, pipeline in pipelines.items():
            where = f"{otel_config}: pipeline {pname}"
            check(pname.split("/")[0] in OTEL_SIGNALS, f"{where}: not a signal ({', '.join(sorted(OTEL_SIGNALS))})")
            pipeline = pipeline or {}
            for role, kinds, required in (("receivers", ("receivers", "connectors"), True),
                                          ("processors", ("processors",), False),
                                          ("exporters", ("exporters", "connectors"), True)):
                names = pipeline.get(role) or []
                check(bool(names) or not required, f"{where}: no {role}")
                check(len(set(names)) == len(names), f"{where}: a component twice in {role}")
                for component in names:
                    known = [k for k in kinds if component in defined[k]]
                    check(bool(known), f"{where}: {role[:-1]} {component!r} is not defined")
                    for k in known:
                        used[k].add(component)
            extra = set(pipeline) - {"receivers", "processors", "exporters"}
            check(not extra, f"{where}: unknown keys {sorted(extra)}")
        traces = pipelines.get("traces") or {}
        check("otlp" in (traces.get("receivers") or []), f"{otel_config}: the traces pipeline does not receive otlp")
        grpc = (((config.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}).get("grpc") or {}
        grpc_port = int(str(grpc.get("endpoint", ":0")).rsplit(":", 1)[-1])
        check(grpc_port == 4317, f"{otel_config}: the otlp receiver's gRPC endpoint is not on 4317")
        if collector is not None:
            check(grpc_port in container_ports(collector), f"compose service otel-collector does not declare port {grpc_port}")
        example = re.search(r"^#?\s*OTEL_EXPORTER_OTLP_ENDPOINT=http://([^:/]+):(\d+)\s*$", env_example, re.M)
        check(example is not None, "compose/.env.example has no OTEL_EXPORTER_OTLP_ENDPOINT=http://<host>:<port>")
        if example:
            check(example.group(1) == "otel-collector" and int(example.group(2)) == grpc_port,
                  f"compose/.env.example: OTEL_EXPORTER_OTLP_ENDPOINT {example.group(1)}:{example.group(2)} is not "
                  f"the collector's OTLP gRPC receiver otel-collector:{grpc_port}")
        for component in sorted(used["exporters"]):
            endpoint = ((config.get("exporters") or {}).get(component) or {}).get("endpoint")
            if isinstance(endpoint, str):
                match = re.match(r"^(?:\w+://)?([^:/]+):(\d+)", endpoint)
                check(match is not None, f"{otel_config}: exporter {component} endpoint {endpoint!r} is not host:port")
                if match:
                    address(services, f"{otel_config}: exporter {component}", match.group(1), int(match.group(2)))
        check(any(c.split("/")[0] in ("otlp", "otlp_grpc") for c in used["exporters"]),
              f"{otel_config}: no pipeline exports OTLP (to Jaeger)")
        check("debug" in defined["exporters"], f"{otel_config}: no debug exporter to switch on")

    # Grafana: provisioning parses; datasources point at compose services; the provider loads the
    # mounted dashboards folder; the dashboards use only provisioned datasources and known series.
    datasources: dict[str, str] = {}
    provider_paths = []
    files = sorted(p for p in provisioning.rglob("*") if p.suffix in (".yaml", ".yml"))
    check(bool(files), f"{provisioning}: no provisioning YAML")
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            check(False, f"{path}: not YAML: {error}")
            continue
        if not isinstance(doc, dict):
            check(False, f"{path}: not a mapping")
            continue
        check(doc.get("apiVersion") == 1, f"{path}: apiVersion is not 1")
        for source in doc.get("datasources") or []:
            where = f"{path}: datasource {source.get('name')!r}"
            check(all(source.get(k) for k in ("name", "type", "uid", "url")), f"{where}: needs name, type, uid and url")
            check(source.get("uid") not in datasources, f"{where}: uid {source.get('uid')!r} twice")
            datasources[source.get("uid")] = source.get("type")
            match = re.match(r"^https?://([^:/]+):(\d+)", source.get("url", ""))
            check(match is not None, f"{where}: url {source.get('url')!r} is not http://<service>:<port>")
            if match:
                address(services, where, match.group(1), int(match.group(2)))
        for provider in doc.get("providers") or []:
            where = f"{path}: provider {provider.get('name')!r}"
            check(provider.get("type", "file") == "file" and bool((provider.get("options") or {}).get("path")),
                  f"{where}: not a file provider with options.path")
            provider_paths.append((provider.get("options") or {}).get("path"))
    check(set(datasources.values()) >= {"prometheus", "jaeger"}, f"{provisioning}: no Prometheus or no Jaeger datasource")
    grafana = services.get("grafana", {})
    mounts = {}
    for volume in grafana.get("volumes", []):
        if isinstance(volume, str) and volume.startswith("."):
            source, target = volume.split(":")[:2]
            mounts[source.rstrip("/")] = target.rstrip("/")
    check(mounts.get("./grafana/provisioning") == "/etc/grafana/provisioning",
          "compose service grafana does not mount ./grafana/provisioning at /etc/grafana/provisioning")
    dashboards_target = mounts.get("./grafana/dashboards")
    check(dashboards_target in provider_paths, f"no Grafana dashboard provider reads {dashboards_target} "
          "(where compose mounts ./grafana/dashboards)")
    home = environment(grafana).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home and dashboards_target:
        check(home.startswith(dashboards_target + "/") and (dashboards_dir / home[len(dashboards_target) + 1:]).is_file(),
              f"compose service grafana: home dashboard {home} is not a file of ./grafana/dashboards")
    dashboards(dashboards_dir, datasources)


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
    parser.add_argument("--otel-config", type=Path, help="default: ROOT/compose/otel-collector.yaml")
    parser.add_argument("--grafana-provisioning", type=Path, help="default: ROOT/compose/grafana/provisioning")
    parser.add_argument("--dashboards", type=Path, help="default: ROOT/compose/grafana/dashboards")
    args = parser.parse_args()
    dockerfile(args.root, args.dockerfile or args.root / "compose/Dockerfile")
    compose(args.root)
    observability(args.root, args.otel_config or args.root / "compose/otel-collector.yaml",
                  args.grafana_provisioning or args.root / "compose/grafana/provisioning",
                  args.dashboards or args.root / "compose/grafana/dashboards")
    kubernetes(args.k8s or args.root / "compose/k8s")
    for failure in failures:
        print(f"deploy-checks: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
