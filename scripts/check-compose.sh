#!/usr/bin/env bash
# Validates compose.yaml with a real Compose implementation, without an engine: Debian's
# docker-compose 1.29 parses the Compose spec (profiles, depends_on conditions) and rejects what it
# does not know. Then checks the startup order and the profiles, and nginx -t on the scale profile's
# nginx config. Run by test-image.sh; on its own: scripts/check-compose.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

need_commands docker-compose:docker-compose nginx:nginx python3:python3

normalized=$(docker-compose --project-directory . -f compose.yaml config) || fail "compose.yaml is invalid (docker-compose config)"

# docker-compose 1.x prints the normalized file; python3-yaml comes with it.
summary=$(python3 - "$normalized" <<'EOF'
import sys, yaml
services = yaml.safe_load(sys.argv[1])["services"]

def expect(condition, message):
    if not condition:
        sys.exit(f"compose.yaml: {message}")

def waits_for(name, dependency, condition):
    expect(services[name].get("depends_on", {}).get(dependency, {}).get("condition") == condition,
           f"{name} must wait for {dependency} to be {condition}")

expect("pg_isready" in " ".join(services["db"]["healthcheck"]["test"]), "db needs a pg_isready healthcheck")
expect(any(v.startswith("db-data:") for v in services["db"]["volumes"]), "db keeps its data in the named volume db-data")
expect(services["migrate"]["command"] == ["node", "dist/db/cli.js", "migrate"], "migrate runs node dist/db/cli.js migrate")
expect(services["migrate"]["image"] == services["api"]["image"], "migrate uses the api's image")
waits_for("migrate", "db", "service_healthy")
for api in ("api", "api-replica"):
    waits_for(api, "db", "service_healthy")
    waits_for(api, "migrate", "service_completed_successfully")
    expect("healthz" in " ".join(services[api]["healthcheck"]["test"]), f"{api} needs a /healthz healthcheck")
expect(services["api"]["ports"][0]["target"] == 8000, "api publishes port 8000")
for name, service in services.items():
    in_scale = name in ("api-replica", "nginx")
    expect((service.get("profiles") == ["scale"]) == in_scale, f"{name} {'belongs' if in_scale else 'does not belong'} to the scale profile")
replicas = services["api-replica"]["deploy"]["replicas"]
expect(replicas >= 2, "the scale profile runs at least 2 replicas")
print(f"db → migrate → api; profile scale: {replicas} api replicas + nginx")
EOF
) || fail "compose.yaml does not start the stack as it should"

# nginx -t on the scale profile's config, with the replicas' DNS name replaced by a loopback address.
make_temp_dir compose-nginx
dir=$REPLY
mkdir -p "$dir/conf.d"
sed -e 's/api-replica:8000/127.0.0.1:8000/' -e "s#/etc/nginx/fastify-sqlasync/proxy.conf#$PWD/deploy/nginx/proxy.conf#" \
  deploy/nginx/compose.conf >"$dir/conf.d/default.conf"
cat >"$dir/nginx.conf" <<EOF
pid $dir/nginx.pid;
error_log $dir/error.log;
events {}
http { include $dir/conf.d/*.conf; }
EOF
nginx -t -q -p "$dir" -c "$dir/nginx.conf" || fail "deploy/nginx/compose.conf does not pass nginx -t"

log "compose.yaml: valid for docker-compose $(docker-compose version --short); $summary; nginx -t ok"
