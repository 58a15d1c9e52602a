#!/usr/bin/env bash
# Offline validation of the deployment files (no Docker daemon or cluster needed):
#   1. compose/docker-compose.yml against the compose-spec schema (check-jsonschema's vendored
#      copy, `--builtin-schema vendor.compose-spec`);
#   2. every Kubernetes manifest in compose/k8s with `kubernetes-validate --strict` (unknown
#      fields are errors) for the oldest and newest Kubernetes versions we support;
#   3. the KEDA custom resources, which kubernetes-validate has no schema for: the ScaledObject
#      against scripts/schemas/keda-scaledobject.schema.json and the TriggerAuthentication against
#      scripts/schemas/keda-triggerauthentication.schema.json (written for this project from
#      KEDA's specifications: spec and trigger fields, required metrics-api metadata and its
#      authMode, the TriggerAuthentication's sources);
#   4. scripts/deploy-checks.py: the Dockerfile copies every workspace member, .env.example lists
#      every variable, grace periods exceed the shutdown deadline, the kustomization lists every
#      file of its folder, the ScaledObject reads the fleet answer from the orchestrator Service
#      with a bearer token from a TriggerAuthentication of the folder, whose Secret is there too;
#      and the observability profile: the binaries send traces only when .env names the
#      collector, Prometheus (compose/prometheus.yml) scrapes the orchestrator and every worker
#      replica, compose/otel-collector.yaml's pipelines name only defined components, Grafana's
#      provisioning (compose/grafana/provisioning) parses and loads the mounted dashboards, and
#      every dashboard (compose/grafana/dashboards) parses, has a uid and queries only the metric
#      names and labels of deploy-checks.py's allow-list;
#   5. `kubectl kustomize compose/k8s` renders and its output validates (only if kubectl exists);
#   6. `promtool check config` of compose/prometheus.yml, and every dashboard query parses as
#      PromQL (`promtool check rules`; only if promtool exists);
#   7. self-checks: deliberately broken copies (in a temp dir) must fail steps 1 to 4.
# The tools are installed with pip into .cache/deploy-venv on first use (pinned versions).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CHECK_JSONSCHEMA=check-jsonschema==0.39.0
KUBERNETES_VALIDATE=kubernetes-validate==1.37.0
KUBERNETES_VERSIONS=(1.30 1.37)
VENV=.cache/deploy-venv
KEDA_SCHEMA=scripts/schemas/keda-scaledobject.schema.json
KEDA_AUTH_SCHEMA=scripts/schemas/keda-triggerauthentication.schema.json
K8S=compose/k8s

log() { echo "validate-deploy: $*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
started=$(date +%s.%N)

stamp="$VENV/.installed-$CHECK_JSONSCHEMA-$KUBERNETES_VALIDATE"
if [[ ! -f $stamp ]]; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        # Debian's python3 ships venv apart.
        log "installing python3-venv"
        as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
    fi
    log "installing $CHECK_JSONSCHEMA and $KUBERNETES_VALIDATE into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$CHECK_JSONSCHEMA" "$KUBERNETES_VALIDATE"
    touch "$stamp"
fi
PY="$VENV/bin/python"
installed=$(date +%s.%N)

# The manifests of a folder, by kind: ScaledObjects and TriggerAuthentications (KEDA) apart from
# the rest.
kinds() { # folder -> "file kind" lines
    "$PY" - "$1" <<'EOF'
import sys, yaml, pathlib
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.y*ml")):
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            print(path, doc.get("kind"))
EOF
}

validate_compose() { # compose file
    "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$1"
}

validate_scaled_objects() { # files
    "$VENV/bin/check-jsonschema" --schemafile "$KEDA_SCHEMA" "$@"
}

validate_trigger_auths() { # files
    "$VENV/bin/check-jsonschema" --schemafile "$KEDA_AUTH_SCHEMA" "$@"
}

validate_manifests() { # files; a kind without a schema is an error, not a warning
    local version out status
    for version in "${KUBERNETES_VERSIONS[@]}"; do
        status=0
        out=$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$@" 2>&1) || status=$?
        [[ -n $out ]] && echo "$out" >&2
        [[ $status -eq 0 ]] || return 1
        if grep -q "Couldn't find schema" <<<"$out"; then return 1; fi
    done
}

validate_folder() { # folder
    local manifests=() scaled=() auths=() file kind
    while read -r file kind; do
        case $kind in
            Kustomization) ;;
            ScaledObject) scaled+=("$file") ;;
            TriggerAuthentication) auths+=("$file") ;;
            *) manifests+=("$file") ;;
        esac
    done < <(kinds "$1")
    [[ ${#manifests[@]} -gt 0 && ${#scaled[@]} -gt 0 && ${#auths[@]} -gt 0 ]] || {
        log "no manifests, no ScaledObject or no TriggerAuthentication in $1"; return 1; }
    validate_manifests "${manifests[@]}" && validate_scaled_objects "${scaled[@]}" \
        && validate_trigger_auths "${auths[@]}"
}

log "1. compose file against the compose-spec schema"
validate_compose compose/docker-compose.yml || fail "compose/docker-compose.yml"

log "2-3. Kubernetes manifests (strict, Kubernetes ${KUBERNETES_VERSIONS[*]}), the KEDA ScaledObject and TriggerAuthentication"
validate_folder "$K8S" || fail "$K8S"

log "4. consistency of the Dockerfile, compose files, manifests, collector, Prometheus and Grafana files"
"$PY" scripts/deploy-checks.py || fail "deploy-checks"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if command -v kubectl >/dev/null 2>&1; then
    log "5. kubectl kustomize $K8S renders; its output validates"
    mkdir "$tmp/rendered"
    kubectl kustomize "$K8S" >"$tmp/rendered/all.yaml" || fail "kubectl kustomize $K8S"
    # One document per file, so the ScaledObject and the TriggerAuthentication go to their schemas.
    "$PY" - "$tmp/rendered" <<'EOF'
import sys, yaml, pathlib
folder = pathlib.Path(sys.argv[1])
docs = [d for d in yaml.safe_load_all((folder / "all.yaml").read_text()) if d]
(folder / "all.yaml").unlink()
for i, doc in enumerate(docs):
    (folder / f"{i:02}-{doc['kind'].lower()}.yaml").write_text(yaml.safe_dump(doc))
EOF
    validate_folder "$tmp/rendered" || fail "the rendered kustomization"
else
    log "5. skipped: kubectl is not installed"
fi

if command -v promtool >/dev/null 2>&1; then
    log "6. promtool: compose/prometheus.yml, and the dashboards' queries as PromQL"
    promtool check config compose/prometheus.yml >&2 || fail "promtool check config compose/prometheus.yml"
    # Each query becomes a recording rule, Grafana's variables replaced by plausible values.
    "$PY" - compose/grafana/dashboards >"$tmp/dashboard-queries.yml" <<'EOF'
import json, pathlib, re, sys, yaml
def panels(items):
    for panel in items:
        yield panel
        yield from panels(panel.get("panels") or [])
rules = []
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    for panel in panels(json.loads(path.read_text()).get("panels") or []):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if expr:
                expr = re.sub(r"\$__rate_interval|\$__interval|\$__range", "5m", expr)
                expr = re.sub(r"\$\{?\w+\}?", ".*", expr)
                rules.append({"record": f"dashboard:query_{len(rules) + 1}", "expr": expr})
yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, sys.stdout, sort_keys=False)
EOF
    promtool check rules "$tmp/dashboard-queries.yml" >&2 || fail "a dashboard query is not PromQL"
else
    log "6. skipped: promtool is not installed"
fi

log "7. self-checks: broken copies must fail"
must_fail() { # description, command...
    local what=$1; shift
    if "$@" >/dev/null 2>&1; then fail "self-check: $what was accepted"; fi
}
sed 's/condition: service_healthy/condition: service_ready/' compose/docker-compose.yml >"$tmp/compose.yml"
must_fail "a compose file with an unknown depends_on condition" validate_compose "$tmp/compose.yml"
mkdir "$tmp/k8s"
cp "$K8S"/*.yaml "$tmp/k8s/"
sed -i 's/terminationGracePeriodSeconds:/terminationGracePeriodSecond:/' "$tmp/k8s/worker-deployment.yaml"
must_fail "a Deployment with a misspelt field" validate_manifests "$tmp/k8s/worker-deployment.yaml"
sed -i 's/targetValue: "1"/targetValue: 1/' "$tmp/k8s/worker-scaledobject.yaml"
must_fail "a ScaledObject with a numeric targetValue" validate_scaled_objects "$tmp/k8s/worker-scaledobject.yaml"
cp "$K8S"/*.yaml "$tmp/k8s/"
sed -i 's/authMode: bearer/authModes: bearer/' "$tmp/k8s/worker-scaledobject.yaml"
must_fail "a metrics-api trigger with authModes (older KEDA ignores it)" validate_scaled_objects "$tmp/k8s/worker-scaledobject.yaml"
sed -i 's/- parameter: token/- param: token/' "$tmp/k8s/keda-triggerauthentication.yaml"
must_fail "a TriggerAuthentication with a misspelt secretTargetRef field" validate_trigger_auths "$tmp/k8s/keda-triggerauthentication.yaml"
cp "$K8S"/*.yaml "$tmp/k8s/"
sed -i 's/name: blockfill-keda-auth/name: blockfill-keda-authn/' "$tmp/k8s/worker-scaledobject.yaml"
must_fail "an authenticationRef to no TriggerAuthentication of the folder" "$PY" scripts/deploy-checks.py --k8s "$tmp/k8s"
cp "$K8S"/*.yaml "$tmp/k8s/"
sed -i 's/name: blockfill-keda$/name: blockfill-keda-token/' "$tmp/k8s/keda-triggerauthentication.yaml"
must_fail "a TriggerAuthentication whose Secret is not in the folder" "$PY" scripts/deploy-checks.py --k8s "$tmp/k8s"
cp "$K8S"/*.yaml "$tmp/k8s/"
cp "$K8S/worker-pdb.yaml" "$tmp/k8s/unlisted.yaml"
must_fail "a manifest missing from the kustomization" "$PY" scripts/deploy-checks.py --k8s "$tmp/k8s"
grep -v '^COPY devnet' compose/Dockerfile >"$tmp/Dockerfile"
must_fail "a Dockerfile that does not copy a workspace member" "$PY" scripts/deploy-checks.py --dockerfile "$tmp/Dockerfile"
mkdir "$tmp/dashboards"
sed 's/blockfill_live_lag_blocks/blockfill_live_lag_block/' compose/grafana/dashboards/blockfill.json >"$tmp/dashboards/blockfill.json"
must_fail "a dashboard querying a metric outside the allow-list" "$PY" scripts/deploy-checks.py --dashboards "$tmp/dashboards"
sed 's/sum by (chain, lane)/sum by (chain, lanes)/' compose/grafana/dashboards/blockfill.json >"$tmp/dashboards/blockfill.json"
must_fail "a dashboard grouping by a label outside the contract" "$PY" scripts/deploy-checks.py --dashboards "$tmp/dashboards"
sed 's/"uid": "blockfill"/"title_uid": "blockfill"/' compose/grafana/dashboards/blockfill.json >"$tmp/dashboards/blockfill.json"
must_fail "a dashboard without a uid" "$PY" scripts/deploy-checks.py --dashboards "$tmp/dashboards"
sed 's#exporters: \[otlp_grpc/jaeger\]#exporters: [otlp_grpc/jaegr]#' compose/otel-collector.yaml >"$tmp/otel-collector.yaml"
must_fail "a collector pipeline naming an undefined exporter" "$PY" scripts/deploy-checks.py --otel-config "$tmp/otel-collector.yaml"
cp -r compose/grafana/provisioning "$tmp/provisioning"
sed -i 's/^apiVersion: 1/apiVersion: [1/' "$tmp/provisioning/datasources/datasources.yaml"
must_fail "a Grafana provisioning file that is not YAML" "$PY" scripts/deploy-checks.py --grafana-provisioning "$tmp/provisioning"

finished=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
log "ok: install $(elapsed "$started" "$installed")s, checks $(elapsed "$installed" "$finished")s"
