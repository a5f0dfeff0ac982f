#!/usr/bin/env bash
# Copyright dubbo-istiod authors. Licensed under the Apache License, Version 2.0.
#
# make demo: a real ZooKeeper and a real Nacos-protocol server (Polaris's Nacos API), two
# real Dubbo providers of com.example.DemoService (v1.0.0 on 20880, v2.0.0 on 20890,
# registered in ZooKeeper as Dubbo does), Dubbo 3 apps in ZooKeeper and Nacos, dubbo-istiod
# standalone with example VirtualService/DestinationRule, and what a MOSN sidecar receives.
# Then it changes things live and shows the pushes arriving. Ctrl-C stops everything.
#
# DEMO_EXIT=1 runs the scripted part and exits (used by the tests).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/out/bin
WORK=$(mktemp -d /tmp/dubbo-istiod-demo.XXXXXX)
LOGS=$WORK/logs
mkdir -p "$LOGS" "$WORK/zk-data" "$WORK/config"
PIDS=()
record() { PIDS+=("$1"); echo "$1" >>"$WORK/pids"; } # the pids file lets tests check Ctrl-C

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # One deadline for all (they stop in parallel; dubbo-go alone takes ~3 s to unregister),
  # then whatever is left is killed: Ctrl-C never takes more than ~5 s.
  for _ in $(seq 50); do
    alive=
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1 && break; done
    [ -n "$alive" ] || break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  echo
  echo "demo: stopped everything it started; logs are in $LOGS"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # what, seconds, command...
  local what=$1 n=$2; shift 2
  for _ in $(seq $((n * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "demo: $what did not come up; see $LOGS" >&2
  exit 1
}
# start_dubbo3 what log err provider-args...: a tools/dubbo3 provider on fresh ports, as a
# supervisor would run it. dubbo-go exits when its registry refuses or times out the
# export (Polaris refuses some registrations right after its start; a loaded machine can
# exceed dubbo-go's 3 s timeouts), and a port picked free can be taken before dubbo-go
# binds it (the kernel hands the same range out to outgoing connections), which leaves it
# running but never ready: either way it is started again, at most twice, on new ports.
start_dubbo3() {
  local what=$1 log=$2 err=$3 attempt pid off; shift 3
  for attempt in 1 2 3; do
    off=$(stat -c %s "$err" 2>/dev/null || echo 0)
    "$ROOT/out/dubbo3/bin/dubbo3" provider "$@" -dubbo-port "$(free_port)" -tri-port "$(free_port)" \
      -metadata-port "$(free_port)" -ip 127.0.0.1 >"$log" 2>>"$err" &
    pid=$!
    record $pid
    ready_or_failed() { grep -q READY "$log" || ! kill -0 "$pid" || tail -c +$((off + 1)) "$err" | grep -q "address already in use"; }
    wait_for "$what" 60 ready_or_failed
    grep -q READY "$log" && return 0
    # TERM first: dubbo-go unregisters what it registered (a killed instance would stay
    # in the registry until its session expires).
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    [ "$attempt" = 3 ] && { echo "demo: $what failed 3 times; see $err" >&2; exit 1; }
    echo "  ($what did not start: its registry refused it, or a port was taken; starting it again)"
  done
}

ZK_PORT=2181; port_busy $ZK_PORT && ZK_PORT=$(free_port)
GRPC=15010; port_busy $GRPC && GRPC=$(free_port)
HTTP=8080; port_busy $HTTP && HTTP=$(free_port)
MON=15014; port_busy $MON && MON=$(free_port)
V1_ADMIN=$(free_port)
# Nacos clients reach the gRPC API on the HTTP port + 1000: both must be free.
NACOS_PORT=8848
while port_busy $NACOS_PORT || port_busy $((NACOS_PORT + 1000)); do NACOS_PORT=$(( $(free_port) % 50000 + 10000 )); done
POLARIS_ADMIN=$(free_port)
for p in 20880 20890; do
  if port_busy $p; then echo "demo: port $p is in use; the demo providers need it" >&2; exit 1; fi
done

echo "dubbo-istiod demo: logs in $LOGS"

bold "1. ZooKeeper on 127.0.0.1:$ZK_PORT (Debian's zookeeper package)"
cat >"$WORK/zoo.cfg" <<EOF
tickTime=500
dataDir=$WORK/zk-data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
EOF
java -Xmx256m -cp "${ZOOKEEPER_JAR:-/usr/share/java/zookeeper.jar}" org.apache.zookeeper.server.ZooKeeperServerMain "$WORK/zoo.cfg" >"$LOGS/zookeeper.log" 2>&1 &
record $!
wait_for ZooKeeper 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ZK_PORT; printf ruok >&3; read -t 1 -n 4 r <&3; [ \"\$r\" = imok ]"
echo "ZooKeeper is up"

echo "Nacos: Polaris v1.18.1's Nacos-compatible API (tools/polaris, built from the Go module proxy on first use;"
echo "  not Alibaba's Java Nacos server, which cannot be installed here) on 127.0.0.1:$NACOS_PORT (gRPC $((NACOS_PORT + 1000)))"
mkdir -p "$WORK/polaris"
(cd "$WORK/polaris" && POLARIS_DATA_DIR="$WORK/polaris" POLARIS_NACOS_PORT=$NACOS_PORT POLARIS_ADMIN_PORT=$POLARIS_ADMIN \
  POLARIS_CLIENT_AUTH=false exec "$ROOT/out/polaris/bin/polaris-server" start -c "$ROOT/out/polaris/bin/polaris-server.yaml" \
  >"$LOGS/polaris.log" 2>&1) &
record $!
wait_for "the Nacos-protocol server" 30 curl -s -o /dev/null "http://127.0.0.1:$NACOS_PORT/nacos/v1/ns/service/list?pageNo=1&pageSize=1"
echo "Nacos API is up"

bold "2. Two Dubbo providers of com.example.DemoService (Hessian2 over the Dubbo protocol)"
"$BIN/dubbo-provider" --zk 127.0.0.1:$ZK_PORT --port 20880 --version 1.0.0 --weight 100 --admin 127.0.0.1:$V1_ADMIN >"$LOGS/provider-v1.log" 2>&1 &
record $!
"$BIN/dubbo-provider" --zk 127.0.0.1:$ZK_PORT --port 20890 --version 2.0.0 --weight 100 >"$LOGS/provider-v2.log" 2>&1 &
V2_PID=$!
record $V2_PID
wait_for "provider v1" 30 grep -q registered "$LOGS/provider-v1.log"
wait_for "provider v2" 30 grep -q registered "$LOGS/provider-v2.log"
sed -n 's/^.*registered /  registered /p' "$LOGS/provider-v1.log" "$LOGS/provider-v2.log" | cut -c1-160

bold "3. dubbo-istiod (standalone: no Kubernetes) reading ZooKeeper and Nacos, with manifests/examples/dubbo/demo-routing.yaml"
cp "$ROOT/manifests/examples/dubbo/demo-routing.yaml" "$WORK/config/"
ENABLE_CA_SERVER=false PILOT_CERT_PROVIDER=none \
"$BIN/pilot-discovery" discovery --registries= --configDir="$WORK/config" \
  --dubboRegistry="zookeeper://127.0.0.1:$ZK_PORT?name=demo-zk" \
  --dubboRegistry="nacos://127.0.0.1:$NACOS_PORT?name=demo-nacos" --dubboNacosDir="$WORK/nacos-client" \
  --dubboNacosListInterval=2s \
  --grpcAddr=127.0.0.1:$GRPC --secureGRPCAddr= --httpsAddr= \
  --httpAddr=127.0.0.1:$HTTP --monitoringAddr=127.0.0.1:$MON --ctrlz_port=0 \
  --meshConfig=/nonexistent --networksConfig=/nonexistent >"$LOGS/pilot-discovery.log" 2>&1 &
record $!
wait_for "pilot-discovery /ready" 60 bash -c "curl -sf -o /dev/null http://127.0.0.1:$HTTP/ready"
echo "pilot-discovery is ready: xDS on 127.0.0.1:$GRPC, debug on 127.0.0.1:$MON"

bold "4. What a MOSN sidecar of a consumer receives (tools/dubbo-xds --kind mosn --call sayHello)"
"$BIN/dubbo-xds" --istiod 127.0.0.1:$GRPC --kind mosn --call sayHello --check

bold "5. /debug/dubboz (what the registry sees)"
curl -s "http://127.0.0.1:$MON/debug/dubboz" >"$WORK/dubboz.json"
python3 - "$WORK/dubboz.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for r in v["registries"]:
    print("  registry %s: connected=%s interfaces=%d providers=%d" % (r["name"], r["connected"], r["interfaces"], r["providers"]))
for i in v["interfaces"]:
    print("  %s -> %s" % (i["interface"], i["hostname"]))
    for e in i["instances"]:
        print("      %s:%d  weight %d  version=%s  workload=%s" % (e["address"], e["port"], e["weight"], e["labels"].get("version"), e["workload"]))
PY

bold "6. Dubbo 3 apps: dubbo-go v3.3.2 (tools/dubbo3), dubbo and Triple, application-level registration (its default), in ZooKeeper and in Nacos"
start_dubbo3 "the Dubbo 3 provider" "$LOGS/dubbo3-provider.log" "$LOGS/dubbo3-provider.err" \
  -zk 127.0.0.1:$ZK_PORT -app greet-dubbo3 -mode service -metadata local -interface com.example.GreetService -version 1.0.0
echo "  it registered at application level only (/services/greet-dubbo3/<ip:port>, no /dubbo/<interface>/providers)"
wait_for "com.example.GreetService in dubbo-istiod" 30 bash -c "curl -sf http://127.0.0.1:$MON/debug/dubboz | grep -q '\"com.example.GreetService\"'"
curl -s "http://127.0.0.1:$MON/debug/dubboz" >"$WORK/dubboz.json"
python3 - "$WORK/dubboz.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for a in v.get("applications", []):
    for app in a["applications"]:
        print("  registry %s: application %s, %d instance nodes, interfaces %s" % (a["registry"], app["name"], app["instances"], ", ".join(app["interfaces"])))
    for r in a["revisions"]:
        print("      revision %s... (%s metadata): %s after %d fetch(es)" % (r["revision"][:16], r["storage"], "resolved" if r["resolved"] else "NOT resolved: " + r.get("error", ""), r["attempts"]))
for i in v["interfaces"]:
    if i["interface"] == "com.example.GreetService":
        print("  %s -> service %s" % (i["interface"], i["hostname"]))
        for e in i["instances"]:
            print("      %s:%d  workload=%s" % (e["address"], e["port"], e["workload"]))
PY
echo "  the same interface from another Dubbo 3 app registered in Nacos at application level"
echo "  (service greet-nacos; the interfaces it serves come from its MetadataService):"
start_dubbo3 "the Dubbo 3 provider in Nacos" "$LOGS/dubbo3-nacos-provider.log" "$LOGS/dubbo3-nacos-provider.err" \
  -registry "nacos://127.0.0.1:$NACOS_PORT" -nacos-dir "$WORK/dubbo3-nacos" \
  -app greet-nacos -mode service -metadata local -interface com.example.GreetService -version 1.0.0
nacos_ready() { # dubbo-istiod serves both GreetService endpoints of the Nacos app
  curl -sf "http://127.0.0.1:$MON/debug/dubboz" | python3 -c 'import json,sys; v=json.load(sys.stdin); sys.exit(0 if sum(1 for i in v["interfaces"] if i["interface"]=="com.example.GreetService" for e in i["instances"] if e["labels"].get("registry")=="demo-nacos") >= 2 else 1)'
}
wait_for "the Nacos providers in dubbo-istiod" 30 nacos_ready
curl -s "http://127.0.0.1:$MON/debug/dubboz" >"$WORK/dubboz.json"
python3 - "$WORK/dubboz.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for n in v.get("nacos", []):
    print("  registry %s (Nacos %s, namespace %s): connected=%s, %d services subscribed, %d Dubbo instances" % (
        n["registry"], ",".join(n["servers"]), n["namespace"], n["connected"], n["subscribed"]["interface"] + n["subscribed"]["application"], n["instances"]))
for i in v["interfaces"]:
    if i["interface"] == "com.example.GreetService":
        print("  one service for both registries: %s -> %s" % (i["interface"], i["hostname"]))
        for e in i["instances"]:
            print("      %s:%d  registry=%s  workload=%s" % (e["address"], e["port"], e["labels"].get("registry"), e["workload"]))
PY
echo "  real Dubbo 3 calls (tools/dubbo3 consumer) to every endpoint a MOSN sidecar is given, on its protocol:"
"$BIN/dubbo-xds" --istiod 127.0.0.1:$GRPC --kind mosn --json >"$WORK/mosn.json"
python3 - "$WORK/mosn.json" <<'PY' >"$WORK/greet-endpoints"
import json, sys
text, dec, i = open(sys.argv[1]).read(), json.JSONDecoder(), 0
while True:
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    obj, i = dec.raw_decode(text, i)
    name = obj.get("cluster_name", "")
    proto = {"outbound|20880||com.example.greetservice": "dubbo", "outbound|50051||com.example.greetservice": "tri"}.get(name)
    for le in obj.get("endpoints", []) if proto else []:
        for ep in le.get("lb_endpoints", []):
            sa = ep["endpoint"]["address"]["socket_address"]
            print(proto, "%s:%d" % (sa["address"], sa["port_value"]), name)
PY
[ -s "$WORK/greet-endpoints" ] || { echo "demo: the MOSN sidecar got no endpoints for com.example.greetservice" >&2; exit 1; }
while read -r proto addr cluster; do
  answer=$("$ROOT/out/dubbo3/bin/dubbo3" consumer -url "$proto://$addr/com.example.GreetService?version=1.0.0" -interface com.example.GreetService -version 1.0.0 -arg mesh 2>>"$LOGS/dubbo3-consumer.err") \
    || { echo "demo: the $proto call to $addr failed; see $LOGS/dubbo3-consumer.err" >&2; exit 1; }
  printf '  %-44s %-5s %-22s -> %s\n' "$cluster" "$proto" "$addr" "$answer"
done <"$WORK/greet-endpoints"

bold "7. Live changes, watched by a MOSN sidecar (tools/dubbo-xds --watch)"
"$BIN/dubbo-xds" --istiod 127.0.0.1:$GRPC --kind mosn --watch >"$LOGS/watch.log" 2>&1 &
record $!
wait_for "the watching sidecar" 30 grep -q "CLUSTERS AND ENDPOINTS" "$LOGS/watch.log"
updates() { grep -c '^--- update at' "$LOGS/watch.log" || true; }
# The arrival time dubbo-xds stamped on the first update after the $before-th that shows
# TEXT (a change can take more than one push: a re-registration is a delete and a create).
shown_at() {
  awk -v n="$before" -v want="$1" '/^--- update at/{i++; t=$4} i>n && index($0, want) && !f {print t; f=1}' "$LOGS/watch.log"
}
shown() { [ -n "$(shown_at "$1")" ]; }
# update_ms TEXT: ms from $start to that arrival (not to when this script noticed it:
# wait_for polls every 100 ms).
update_ms() { echo $(( $(date -d "$(shown_at "$1")" +%s%3N) - start )); }
show_update() { # the clusters and endpoints of the newest update
  awk '/^--- update at/{buf=""; keep=0} /^CLUSTERS AND ENDPOINTS/{keep=1} keep{buf=buf"\n      "$0} END{print buf}' "$LOGS/watch.log"
}

echo "-> provider v1 re-registers with weight 300 (as Dubbo governance does)"
before=$(updates); start=$(date +%s%3N)
curl -sf -X POST "http://127.0.0.1:$V1_ADMIN/weight?value=300" >/dev/null
wait_for "the weight update" 10 shown "(weight 43)"
echo "   update at the sidecar $(update_ms "(weight 43)") ms after the change:"
show_update

# Governance from the config center: rules written where dubbo-admin writes them
# (/dubbo/config/dubbo/<interface>:<version>:<group>.configurators), in its shapes.
rule() { "$BIN/dubbo-rule" --zk 127.0.0.1:$ZK_PORT "$@"; }
echo "-> an operator shifts weight in dubbo-admin: its weight rule gives provider v2 (127.0.0.1:20890) weight 600"
cat >"$WORK/weight-rule.yaml" <<'YAML'
configs:
- addresses: [127.0.0.1:20890]
  enabled: true
  parameters: {weight: 600}
  side: provider
  type: weight
enabled: false
key: 'com.example.DemoService:2.0.0:'
scope: service
YAML
sed 's/^/     /' "$WORK/weight-rule.yaml"
before=$(updates); start=$(date +%s%3N)
rule put 'com.example.DemoService:2.0.0:.configurators' "$WORK/weight-rule.yaml"
wait_for "the weight rule" 10 shown "20880 (weight 64)"
echo "   update at the sidecar $(update_ms "20880 (weight 64)") ms after the rule was written (v1 300 : v2 600, in MOSN's 1..128):"
show_update

echo "-> the operator disables provider v1's instance (127.0.0.1:20880) with an override rule"
cat >"$WORK/disable-rule.yaml" <<'YAML'
configVersion: v2.7
scope: service
key: com.example.DemoService:1.0.0
enabled: true
configs:
- addresses: ['127.0.0.1:20880']
  side: provider
  parameters:
    disabled: true
YAML
sed 's/^/     /' "$WORK/disable-rule.yaml"
before=$(updates); start=$(date +%s%3N)
rule put 'com.example.DemoService:1.0.0:.configurators' "$WORK/disable-rule.yaml"
wait_for "the disable rule" 10 shown "(no endpoints)"
echo "   update at the sidecar $(update_ms "(no endpoints)") ms after the rule was written (v1 is out of rotation, by EDS):"
show_update
curl -s "http://127.0.0.1:$MON/debug/dubboz" >"$WORK/dubboz.json"
python3 - "$WORK/dubboz.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for r in v["governance"]:
    print("   /debug/dubboz governance: %s from %s: %s" % (r["key"], r["from"], r["status"]))
PY

echo "-> the operator deletes the disable rule: v1 is back"
before=$(updates); start=$(date +%s%3N)
rule delete 'com.example.DemoService:1.0.0:.configurators'
wait_for "the rule deletion" 10 shown "20880 (weight 64)"
echo "   update at the sidecar $(update_ms "20880 (weight 64)") ms after the rule was deleted"

GRAY=$(awk '$1 == "dubbo" && $3 ~ /greetservice/ {print $2; exit}' "$WORK/greet-endpoints")
echo "-> a gray release: dubbo-admin's tag route (greet-dubbo3.tag-router) puts the Dubbo 3 provider at $GRAY in tag gray"
cat >"$WORK/tag-rule.yaml" <<YAML
enabled: true
force: false
key: greet-dubbo3
priority: 0
runtime: true
tags:
- addresses: [$GRAY]
  name: gray
YAML
sed 's/^/     /' "$WORK/tag-rule.yaml"
before=$(updates); start=$(date +%s%3N)
rule put 'greet-dubbo3.tag-router' "$WORK/tag-rule.yaml"
wait_for "the tag route" 10 shown 'tag-gray-'
echo "   update at the sidecar $(update_ms 'tag-gray-') ms after the rule was written; its routes for GreetService:"
"$BIN/dubbo-xds" --istiod 127.0.0.1:$GRPC --kind mosn >"$WORK/tagged.txt"
grep -E '^ +com\.example\.GreetService ' "$WORK/tagged.txt" | sed 's/^ */      /'
echo "   and the clusters they name (generated services: the providers each route selects):"
awk '/governance selection/ && / outbound\|20880\|/ {print; p=1; next} p && /^      [0-9(]/ {print; next} {p=0}' "$WORK/tagged.txt" | sed 's/^ */      /'
rule delete 'greet-dubbo3.tag-router'

echo "-> stopping provider v2 (its ephemeral node leaves ZooKeeper)"
before=$(updates); start=$(date +%s%3N)
kill -TERM "$V2_PID"
wait_for "the EDS update" 10 shown "(no endpoints)"
echo "   update at the sidecar $(update_ms "(no endpoints)") ms after the change:"
show_update

if [ "${DEMO_EXIT:-}" = 1 ]; then
  echo
  echo "demo: done (DEMO_EXIT=1)"
  exit 0
fi
bold "Running. The sidecar view updates in $LOGS/watch.log; try:"
echo "  $BIN/dubbo-xds --istiod 127.0.0.1:$GRPC           # a MOSN consumer's view"
echo "  $BIN/dubbo-xds --istiod 127.0.0.1:$GRPC --ip 127.0.0.1   # the provider's sidecar (inbound_dubbo)"
echo "  curl -s 127.0.0.1:$MON/debug/dubboz"
echo "Press Ctrl-C to stop everything."
sleep 2147483647 &
record $!
wait $! # interruptible: the INT/TERM trap runs at once
