#!/usr/bin/env bash
# services.sh - the real Kafka (KRaft), Elasticsearch, Prometheus and Alertmanager on 127.0.0.1,
# without Docker or systemd, for logwarden's integration tests and local development. Run as root.
#
#   services.sh fetch                          download and cache everything (idempotent)
#   services.sh start [kafka|es|am|prom|all]   start (default all) on free ports; prints and writes
#                                              $LOGWARDEN_SVC_RUN/services.env (KAFKA_BOOTSTRAP_SERVERS=...)
#   services.sh stop                           stop only the processes whose PIDs this script recorded
#   services.sh status                         print services.env and whether each recorded PID is alive
#   services.sh stop-es | resume-es            take Elasticsearch down and back (same port, data kept), for tests
#   services.sh stop-am | resume-am            the same for Alertmanager (same port, config and storage kept)
#
# Kafka comes from Maven Central jars, Elasticsearch from the Maven Central integ-test zip (run as a
# non-root user), Prometheus and Alertmanager from Debian packages. Versions are overridable by env.
set -euo pipefail

KAFKA_VERSION=${KAFKA_VERSION:-4.3.1}
LOG4J_VERSION=${LOG4J_VERSION:-2.25.3}
ES_VERSION=${ES_VERSION:-8.19.8}            # same major as the `elasticsearch` Python client (pyproject.toml)
MVN_DEP=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
CACHE=${LOGWARDEN_SVC_CACHE:-/opt/logwarden-svc-cache}   # not under /root: the ES user must read it
RUN=${LOGWARDEN_SVC_RUN:-/tmp/logwarden-svc}
JAVA17_HOME=${JAVA17_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
JAVA25_HOME=${JAVA25_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
ES_USER=${ES_USER:-logwarden-es}
KAFKA_HEAP=${KAFKA_HEAP:-"-Xms256m -Xmx512m"}
ES_HEAP=${ES_HEAP:-"-Xms512m -Xmx512m"}

log() { echo "[services] $*" >&2; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
wait_for() {  # wait_for <seconds> <command...>
  local t=$1; shift; local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do [ $SECONDS -ge "$end" ] && return 1; sleep 0.3; done
}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
es_major() { echo "${ES_VERSION%%.*}"; }
record() { echo "$2" >> "$RUN/$1/env"; }  # record <service-dir> KEY=VALUE

# ---------------------------------------------------------------- fetch
fetch_kafka() {
  local dir=$CACHE/kafka-$KAFKA_VERSION
  [ -f "$dir/.complete" ] && return 0
  mkdir -p "$dir"
  cat > "$dir/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.logwarden</groupId><artifactId>kafka-broker-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <!-- the release tarball adds these; they are not in the published pom (no binding = no broker log) -->
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
  log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION runtime classpath from Maven Central"
  mvn -B -q -f "$dir/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
      "$MVN_DEP:copy-dependencies" -DincludeScope=runtime -DoutputDirectory="$dir/lib"
  ls "$dir/lib" | grep -q "^kafka_2.13-$KAFKA_VERSION.jar$" || { log "kafka jar missing in $dir/lib"; return 1; }
  touch "$dir/.complete"
}

fetch_es() {
  local dir=$CACHE/es-$ES_VERSION
  [ -f "$dir/.complete" ] && return 0
  mkdir -p "$dir"
  log "resolving org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip from Maven Central"
  mvn -B -q -Dmaven.repo.local="$CACHE/m2" "$MVN_DEP:copy" \
      -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
      -DoutputDirectory="$dir"
  command -v unzip >/dev/null || { apt_ready; DEBIAN_FRONTEND=noninteractive apt-get install -y -q unzip >/dev/null; }
  unzip -q -o "$dir/elasticsearch-$ES_VERSION.zip" -d "$dir"
  rm -f "$dir/elasticsearch-$ES_VERSION.zip"
  chmod -R a+rX "$dir"            # the zip stores config/ as 0750/0660; the ES user must read it
  chmod 755 "$CACHE"
  touch "$dir/.complete"
}

apt_ready() {
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ] || apt-get update -q >/dev/null
}

fetch_prom() {
  command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null && return 0
  log "installing prometheus and prometheus-alertmanager from Debian"
  apt_ready
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus prometheus-alertmanager >/dev/null
}

# ---------------------------------------------------------------- kafka
start_kafka() {
  fetch_kafka
  local d=$RUN/kafka lib=$CACHE/kafka-$KAFKA_VERSION/lib
  alive "$d/kafka.pid" && { log "kafka already running"; return 0; }
  rm -rf "$d"; mkdir -p "$d/data"
  local port cport; port=$(free_port); cport=$(free_port)
  cat > "$d/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
background.threads=2
log.cleaner.threads=1
num.recovery.threads.per.data.dir=1
EOF
  cat > "$d/log4j2.properties" <<'EOF'
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
  local java=$JAVA17_HOME/bin/java
  # shellcheck disable=SC2206
  local jopts=($KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
               -Dlog4j2.configurationFile="$d/log4j2.properties")
  local tool
  tool=$(python3 - "$lib" <<'PY'
import glob, sys, zipfile
for j in glob.glob(sys.argv[1] + "/*.jar"):
    names = set(zipfile.ZipFile(j).namelist())
    if "kafka/tools/StorageTool.class" in names: print("kafka.tools.StorageTool"); break
    if "org/apache/kafka/tools/StorageTool.class" in names: print("org.apache.kafka.tools.StorageTool"); break
PY
)
  [ -n "$tool" ] || tool=kafka.tools.StorageTool
  local cid; cid=$(python3 -c 'import base64,os
while True:
    s=base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"): print(s); break')
  "$java" "${jopts[@]}" -cp "$lib/*" "$tool" format -t "$cid" -c "$d/server.properties" > "$d/format.log" 2>&1 \
    || { cat "$d/format.log" >&2; return 1; }
  nohup "$java" "${jopts[@]}" -cp "$lib/*" kafka.Kafka "$d/server.properties" > "$d/kafka.log" 2>&1 < /dev/null &
  echo $! > "$d/kafka.pid"
  if ! wait_for 120 grep -q "Kafka Server started" "$d/kafka.log"; then
    tail -n 60 "$d/kafka.log" >&2; return 1
  fi
  record kafka "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port"
  log "kafka $KAFKA_VERSION up on 127.0.0.1:$port (pid $(cat "$d/kafka.pid"))"
}

# ---------------------------------------------------------------- elasticsearch
start_es() {
  fetch_es
  local home=$CACHE/es-$ES_VERSION/elasticsearch-$ES_VERSION d=$RUN/es
  alive "$d/es.pid" && { log "elasticsearch already running"; return 0; }
  id -u "$ES_USER" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$ES_USER"
  rm -rf "$d"; mkdir -p "$d"/{data,logs,tmp}; cp -r "$home/config" "$d/config"
  local http transport; http=$(free_port); transport=$(free_port)
  cat >> "$d/config/elasticsearch.yml" <<EOF

# --- logwarden services.sh ---
cluster.name: logwarden-test
node.name: node-1
network.host: 127.0.0.1
http.port: $http
transport.port: $transport
discovery.type: single-node
path.data: $d/data
path.logs: $d/logs
xpack.security.enabled: false
node.store.allow_mmap: false
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
EOF
  # jvm.options paths are relative to ES_HOME (root-owned); the JVM aborts if it cannot open the GC log
  sed -i -e "s#file=logs/gc.log#file=$d/logs/gc.log#" -e "s#-XX:HeapDumpPath=data#-XX:HeapDumpPath=$d/data#" \
         -e "s#-XX:ErrorFile=logs/#-XX:ErrorFile=$d/logs/#" "$d/config/jvm.options"
  install -d -o "$ES_USER" "$home/logs"
  chmod 755 "$RUN"; chown -R "$ES_USER": "$d"
  launch_es "$http"
  record es "ELASTICSEARCH_URL=http://127.0.0.1:$http"
}

launch_es() {  # launch_es <http-port>: start the node of $RUN/es (config, data) and wait until it is yellow
  local http=$1 home=$CACHE/es-$ES_VERSION/elasticsearch-$ES_VERSION d=$RUN/es
  local jh=$JAVA17_HOME; [ "$(es_major)" -ge 9 ] && jh=$JAVA25_HOME
  if ! runuser -u "$ES_USER" -- env ES_JAVA_HOME="$jh" ES_PATH_CONF="$d/config" ES_TMPDIR="$d/tmp" \
        ES_JAVA_OPTS="$ES_HEAP" "$home/bin/elasticsearch" -d -p "$d/es.pid" > "$d/cli.log" 2>&1; then
    cat "$d/cli.log" >&2; tail -n 60 "$d/logs/"*.log >&2 2>/dev/null || true; return 1
  fi
  if ! wait_for 180 curl -sf "http://127.0.0.1:$http/_cluster/health?wait_for_status=yellow&timeout=1s"; then
    tail -n 60 "$d/logs/"*.log >&2 2>/dev/null || true; return 1
  fi
  log "elasticsearch $ES_VERSION up on 127.0.0.1:$http (pid $(cat "$d/es.pid"))"
}

stop_pid() {  # stop_pid <pidfile>: SIGTERM, wait up to 30 s, then SIGKILL
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# Elasticsearch outages for tests: stop-es keeps data, config and port; resume-es brings the same node back.
stop_es() { stop_pid "$RUN/es/es.pid"; log "elasticsearch stopped (data kept)"; }
resume_es() {
  alive "$RUN/es/es.pid" && return 0
  local url; url=$(sed -n 's#^ELASTICSEARCH_URL=##p' "$RUN/es/env")
  [ -n "$url" ] || { log "no previous elasticsearch to resume"; return 1; }
  launch_es "${url##*:}"
}

# ---------------------------------------------------------------- alertmanager / prometheus
start_am() {
  fetch_prom
  local d=$RUN/am; alive "$d/am.pid" && { log "alertmanager already running"; return 0; }
  # stopped by stop-am (an outage a test is staging): bring the same one back rather than a new one elsewhere
  [ -f "$d/stopped" ] && { resume_am; return; }
  rm -rf "$d"; mkdir -p "$d"
  local port; port=$(free_port)
  if [ -n "${AM_CONFIG:-}" ]; then cp "$AM_CONFIG" "$d/alertmanager.yml"; else cat > "$d/alertmanager.yml" <<'EOF'
route:
  receiver: default
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: default
EOF
  fi
  amtool check-config "$d/alertmanager.yml" >/dev/null
  launch_am "$port"
  record am "ALERTMANAGER_URL=http://127.0.0.1:$port"
}

launch_am() {  # launch_am <port>: start Alertmanager with the config and storage of $RUN/am, wait until ready
  local port=$1 d=$RUN/am
  prometheus-alertmanager --config.file="$d/alertmanager.yml" --storage.path="$d/data" \
    --web.listen-address="127.0.0.1:$port" --cluster.listen-address= >> "$d/am.log" 2>&1 < /dev/null &
  echo $! > "$d/am.pid"
  wait_for 30 curl -sf "http://127.0.0.1:$port/-/ready" || { cat "$d/am.log" >&2; return 1; }
  log "alertmanager up on 127.0.0.1:$port"
}

# Alertmanager outages for tests: stop-am keeps config, storage (silences, notification log) and port;
# resume-am brings it back there. Alertmanager keeps active alerts in memory only: they are gone after
# a stop, until their senders re-send them.
stop_am() { stop_pid "$RUN/am/am.pid"; touch "$RUN/am/stopped"; log "alertmanager stopped (config and storage kept)"; }
resume_am() {
  alive "$RUN/am/am.pid" && return 0
  local url; url=$(sed -n 's#^ALERTMANAGER_URL=##p' "$RUN/am/env" 2>/dev/null)
  [ -n "$url" ] || { log "no previous alertmanager to resume"; return 1; }
  launch_am "${url##*:}" && rm -f "$RUN/am/stopped"
}

start_prom() {
  fetch_prom
  local d=$RUN/prom; alive "$d/prom.pid" && { log "prometheus already running"; return 0; }
  rm -rf "$d"; mkdir -p "$d"
  local port; port=$(free_port)
  local am; am=$(sed -n 's#^ALERTMANAGER_URL=http://##p' "$RUN/am/env" 2>/dev/null | tail -1)
  # Scrape targets come from a file_sd file that tests (or you) rewrite at run time: Prometheus
  # re-reads it without a restart, so logwarden's metrics port need not be known here.
  echo '[]' > "$d/targets.json"
  {
    echo "global: {scrape_interval: 1s, evaluation_interval: 1s}"
    echo "rule_files: ['${PROM_RULES:-$d/rules.yml}']"
    [ -n "$am" ] && echo "alerting: {alertmanagers: [{static_configs: [{targets: ['$am']}]}]}"
    echo "scrape_configs:"
    echo "  - job_name: prometheus"
    echo "    static_configs: [{targets: ['127.0.0.1:$port']}]"
    echo "  - job_name: logwarden"
    echo "    file_sd_configs: [{files: ['$d/targets.json'], refresh_interval: 1s}]"
  } > "$d/prometheus.yml"
  [ -n "${PROM_RULES:-}" ] || echo "groups: []" > "$d/rules.yml"
  promtool check config "$d/prometheus.yml" >/dev/null
  prometheus --config.file="$d/prometheus.yml" --storage.tsdb.path="$d/data" \
    --web.listen-address="127.0.0.1:$port" --web.enable-lifecycle --rules.alert.resend-delay=1s \
    > "$d/prom.log" 2>&1 < /dev/null &
  echo $! > "$d/prom.pid"
  wait_for 30 curl -sf "http://127.0.0.1:$port/-/ready" || { cat "$d/prom.log" >&2; return 1; }
  record prom "PROMETHEUS_URL=http://127.0.0.1:$port"
  record prom "PROMETHEUS_TARGETS_FILE=$d/targets.json"
  log "prometheus up on 127.0.0.1:$port"
}

# ---------------------------------------------------------------- stop / status
stop_all() {
  local f
  for f in "$RUN"/prom/prom.pid "$RUN"/am/am.pid "$RUN"/kafka/kafka.pid "$RUN"/es/es.pid; do stop_pid "$f"; done
  rm -f "$RUN/services.env"
}

write_env() {  # services.env = the env lines of every service that is running
  local s; : > "$RUN/services.env.tmp"
  for s in kafka es am prom; do
    alive "$RUN/$s/$s.pid" && [ -f "$RUN/$s/env" ] && cat "$RUN/$s/env" >> "$RUN/services.env.tmp" || true
  done
  mv "$RUN/services.env.tmp" "$RUN/services.env"
}

status() {
  local f
  [ -f "$RUN/services.env" ] && cat "$RUN/services.env"
  for f in "$RUN"/kafka/kafka.pid "$RUN"/es/es.pid "$RUN"/am/am.pid "$RUN"/prom/prom.pid; do
    if alive "$f"; then echo "# $(basename "$f" .pid): running (pid $(cat "$f"))"; else echo "# $(basename "$f" .pid): stopped"; fi
  done
}

case "${1:-}" in
  fetch) mkdir -p "$CACHE"; chmod 755 "$CACHE"; fetch_prom; fetch_kafka; fetch_es ;;
  start) mkdir -p "$RUN"; what=${2:-all}
         case $what in
           kafka) start_kafka ;; es) start_es ;; am) start_am ;; prom) start_prom ;;
           all) start_am; start_prom; start_kafka; start_es ;;
           *) echo "unknown service $what" >&2; exit 2 ;;
         esac
         write_env; cat "$RUN/services.env" ;;
  stop) [ $# -le 1 ] || { echo "services.sh stop stops every service and takes no name (stop-es, stop-am take one down)" >&2; exit 2; }
        stop_all ;;
  stop-es) stop_es ;;
  resume-es) resume_es ;;
  stop-am) stop_am ;;
  resume-am) resume_am ;;
  status) status ;;
  *) echo "usage: $0 fetch | start [kafka|es|am|prom|all] | stop | stop-es | resume-es | stop-am | resume-am | status" >&2
     exit 2 ;;
esac
