#!/usr/bin/env bash
# Local infrastructure for x0tta6bl4 without Docker: Apache Kafka (KRaft, single
# node), PostgreSQL and Redis, run as plain processes on 127.0.0.1.
#
#   stack.sh up             start what is not running, wait until each answers
#                           (and install promtool/amtool/prometheus/alertmanager)
#   stack.sh down [--purge] stop everything (data stays unless --purge)
#   stack.sh purge          stop everything and delete .stack/
#   stack.sh status         one line per service; exit 0 only if all run
#   stack.sh env [SERVICE]  print the X0_* variables that point at this stack: the
#                           admin's connections, or SERVICE's own (gateway, crypto,
#                           rag, telemetry: its PostgreSQL role and Redis user)
#   stack.sh smoke          check a running stack with psql, redis-cli, aiokafka
#
# Every pid, log and byte of data lives in <repo>/.stack (git-ignored), so a
# checkout never touches another checkout's stack or the system's services. The
# Kafka jars are cached outside the repo (they are the same for every checkout).
#
# Least privilege inside (docs/security.md, "PostgreSQL roles and Redis users"): each
# service has a PostgreSQL role owning only its schema and a Redis ACL user limited to
# its key prefix; the admin x0 (tests, tools) and monitor (the exporters) beside them.
# Their random passwords are made once, in files of mode 0600 under
# <state folder>/credentials/ (postgres-<name>.password, redis-<name>.password).
#
# Environment knobs (all optional):
#   X0_KAFKA_VERSION          Kafka release from Maven Central (default below)
#   X0_STACK_CACHE            jar cache root        (default ~/.cache/x0-stack)
#   X0_STACK_DIR              state folder          (default <repo>/.stack)
#   X0_STACK_KAFKA_PORT       broker port           (default 9092)
#   X0_STACK_KAFKA_CONTROLLER_PORT  KRaft controller port (default 9093)
#   X0_STACK_PG_PORT          PostgreSQL port       (default 5432)
#   X0_STACK_REDIS_PORT       Redis port            (default 6379)
#   X0_STACK_KAFKA_TIMEOUT    seconds to wait for Kafka to serve metadata (90)
#   X0_STACK_KAFKA_PLAINTEXT_PORT  development only: also open a PLAINTEXT listener on
#                             this port, where every client is a super user (User:ANONYMOUS);
#                             unset (the default), the broker speaks mutual TLS only
#
# Kafka speaks mutual TLS (docs/security.md, "Internal trust model"): a development PKI
# (x0_common.identity.development) issues the CA and one certificate per identity under
# <state folder>/identity/<name>/{cert,key,bundle}.pem; the broker maps a certificate's
# CN <name>.x0.local to User:<name>, and StandardAuthorizer allows only the ACLs that
# deploy/local-stack/kafka_access.py applies (topics and ACLs as code). ops is the
# tools' and tests' identity (a super user beside the broker's own, kafka).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
STACK_DIR="${X0_STACK_DIR:-$REPO_ROOT/.stack}"
CACHE_ROOT="${X0_STACK_CACHE:-$HOME/.cache/x0-stack}"

# Kafka 4.1.x: aiokafka 0.14 was checked against it (deploy/local-stack/smoke.py:
# idempotent acks=all producer, group consumer with commits, admin create_topics
# and list_consumer_group_offsets). 4.x dropped the pre-2.1 protocol versions
# (KIP-896); aiokafka 0.14 negotiates versions that 4.1 still serves.
KAFKA_VERSION="${X0_KAFKA_VERSION:-4.1.2}"
KAFKA_PORT="${X0_STACK_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${X0_STACK_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_TIMEOUT="${X0_STACK_KAFKA_TIMEOUT:-90}"
PG_PORT="${X0_STACK_PG_PORT:-5432}"
REDIS_PORT="${X0_STACK_REDIS_PORT:-6379}"
HOST=127.0.0.1

KAFKA_DIR="$STACK_DIR/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_OUT="$KAFKA_DIR/kafka.out"        # JVM stdout/stderr (crashes before log4j starts)
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_LIBS="$CACHE_ROOT/kafka-$KAFKA_VERSION/libs"
KAFKA_PLAINTEXT_PORT="${X0_STACK_KAFKA_PLAINTEXT_PORT:-}"
KAFKA_TLS="$KAFKA_DIR/tls"
IDENTITY_DIR="$STACK_DIR/identity"
VENV_PYTHON="$REPO_ROOT/.venv/bin/python"

REDIS_DIR="$STACK_DIR/redis"
REDIS_PID="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"
REDIS_ACL="$REDIS_DIR/users.acl"

CRED_DIR="$STACK_DIR/credentials"
# The services: each a PostgreSQL role owning the schema of its name, and a Redis user.
SERVICE_NAMES=(gateway crypto rag telemetry)

# PG_DIR, PG_DATA, PG_SOCK, PG_LOG and PG_BIN are set by pg_paths (they depend on
# which PostgreSQL is installed and on whether the postgres user can reach .stack).

log() { printf '%s\n' "$*"; }
die() { printf 'stack.sh: error: %s\n' "$*" >&2; exit 1; }

is_root() { [[ $EUID -eq 0 ]]; }

# ---------------------------------------------------------------- helpers ----

# Pids of the processes listening on TCP port $1 (any address), one per line.
# ss needs root (or the same user) to show the owning process; as a normal user
# a foreign listener shows up without a pid, which still counts as "taken".
listener_pids() {
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u || true
}

port_listening() {
  [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
}

# True when pid $1 listens on port $2, i.e. the port is served by our process.
pid_listens_on() {
  # (No `| grep -q`: under pipefail an early grep exit can fail the pipeline.)
  [[ $'\n'"$(listener_pids "$2")"$'\n' == *$'\n'"$1"$'\n'* ]]
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# The command line of pid $1, NULs turned to spaces (empty when gone).
pid_cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

# Reads a pid file; prints the pid only when that process is alive and its
# command line contains $2, so a recycled pid is never mistaken for ours.
live_pid_from() {
  local file=$1 needle=$2 pid
  [[ -f "$file" ]] || return 1
  pid="$(head -n1 "$file" 2>/dev/null | tr -dc '0-9')"
  pid_alive "$pid" || return 1
  [[ "$(pid_cmdline "$pid")" == *"$needle"* ]] || return 1
  printf '%s\n' "$pid"
}

# Fails loudly, naming the process, when port $1 is taken by someone else.
ensure_port_free() {
  local port=$1 what=$2
  port_listening "$port" || return 0
  {
    printf 'stack.sh: error: port %s (%s) is already in use by a process that is not this stack:\n' "$port" "$what"
    ss -Hltnp "sport = :$port" | sed 's/^/    /'
    local p
    for p in $(listener_pids "$port"); do
      printf '    pid %s: %s\n' "$p" "$(pid_cmdline "$p")"
    done
    printf '  Stop it, or pick another port (X0_STACK_*_PORT, see the head of %s).\n' "$0"
  } >&2
  exit 1
}

# Prints the last lines of each given log file that exists, for a failed start.
show_logs() {
  local f
  for f in "$@"; do
    [[ -s "$f" ]] || continue
    printf -- '----- last lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2
  done
}

tcp_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# Waits for pid $1 to exit, up to $2 seconds; SIGKILL after that.
wait_exit_or_kill() {
  local pid=$1 secs=$2 name=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  log "$name: pid $pid still alive after ${secs}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  die "$name: pid $pid survived SIGKILL"
}

# apt-get install for a missing service. The package lists may be empty on a
# fresh machine, so update them only when apt knows no candidate.
apt_install() {
  is_root || die "$* is not installed; install it (sudo apt-get install -y $*) or run this script as root"
  command -v apt-get >/dev/null || die "$* is not installed and there is no apt-get here"
  local pkg
  for pkg in "$@"; do
    if [[ "$(apt-cache policy "$pkg" 2>/dev/null)" != *"Candidate: "[0-9]* ]]; then
      log "apt-get update (no candidate for $pkg yet)"
      apt-get update -qq
      break
    fi
  done
  log "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ------------------------------------------------------------ credentials ----

# The password of $1 (postgres-crypto, redis-admin, ...), made once: 192 random bits
# in hex (safe in SQL literals and URLs), in a file only its owner reads.
credential() {
  local file="$CRED_DIR/$1.password"
  if [[ ! -s "$file" ]]; then
    mkdir -p "$CRED_DIR"
    chmod 700 "$CRED_DIR"
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$file.tmp" && printf '\n' >>"$file.tmp")
    mv "$file.tmp" "$file"
  fi
  chmod 600 "$file"
  head -n1 "$file"
}

credentials_make() {
  local name
  for name in x0 monitor "${SERVICE_NAMES[@]}"; do credential "postgres-$name" >/dev/null; done
  for name in admin monitor "${SERVICE_NAMES[@]}"; do credential "redis-$name" >/dev/null; done
}

# ------------------------------------------------------------------ kafka ----

# Version of jar $2 in folder $1 (log4j-core-2.25.3.jar -> 2.25.3), or nothing.
jar_version() {
  local f
  for f in "$1/$2"-[0-9]*.jar; do
    [[ -e "$f" ]] || return 0
    f="${f##*/"$2"-}"
    printf '%s\n' "${f%.jar}"
    return 0
  done
}

# Fetches Kafka and its runtime dependencies from Maven Central into the cache,
# once per version. The broker needs kafka_2.13; kafka-tools brings TopicCommand
# (used for the readiness probe), as in Kafka's own tarball. Kafka declares
# log4j-core but no SLF4J binding, so without one the broker would log nothing:
# the binding matching the resolved slf4j-api/log4j versions is added afterwards.
kafka_fetch() {
  [[ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]] && return 0
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka $KAFKA_VERSION (apt-get install maven)"
  command -v java >/dev/null || die "Java 17+ is needed to run Kafka (apt-get install openjdk-17-jre-headless)"
  local base="$CACHE_ROOT/kafka-$KAFKA_VERSION" tmp
  mkdir -p "$base"
  tmp="$(mktemp -d "$base/libs.tmp.XXXXXX")"
  log "kafka: fetching kafka_2.13:$KAFKA_VERSION and its dependencies from Maven Central"
  cat >"$base/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by deploy/local-stack/stack.sh: only used to resolve Kafka's jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>x0.local-stack</groupId>
  <artifactId>kafka-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  local dep_plugin=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
  # Maven's own output goes to a log: it is noise unless something fails.
  if ! mvn -B -Dstyle.color=never -f "$base/pom.xml" "$dep_plugin:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$base/mvn.log" 2>&1; then
    rm -rf "$tmp"
    show_logs "$base/mvn.log"
    die "kafka: Maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  fi

  # Pick the SLF4J binding: Kafka 4.x ships log4j2 (log4j-core) with slf4j-api
  # 1.7 (-> log4j-slf4j-impl) or 2.x (-> log4j-slf4j2-impl); Kafka 3.x uses
  # reload4j (log4j 1 API) and needs slf4j-reload4j.
  local log4j_core slf4j binding
  log4j_core="$(jar_version "$tmp" log4j-core)"
  slf4j="$(jar_version "$tmp" slf4j-api)"
  if [[ -n "$log4j_core" ]]; then
    if [[ "$slf4j" == 1.* ]]; then
      binding="org.apache.logging.log4j:log4j-slf4j-impl:$log4j_core"
    else
      binding="org.apache.logging.log4j:log4j-slf4j2-impl:$log4j_core"
    fi
  elif [[ -n "$slf4j" ]]; then
    binding="org.slf4j:slf4j-reload4j:$slf4j"
  fi
  if [[ -n "${binding:-}" ]] && ! compgen -G "$tmp/log4j-slf4j*.jar" >/dev/null &&
      ! compgen -G "$tmp/slf4j-reload4j-*.jar" >/dev/null; then
    # dependency:copy takes just this one jar (no transitive slf4j-api override).
    if ! mvn -B -Dstyle.color=never -f "$base/pom.xml" "$dep_plugin:copy" \
        -Dartifact="$binding" -DoutputDirectory="$tmp" >>"$base/mvn.log" 2>&1; then
      rm -rf "$tmp"
      show_logs "$base/mvn.log"
      die "kafka: Maven could not resolve the logging binding $binding"
    fi
  fi
  # Publish atomically: an interrupted download never leaves a half-filled libs/
  # that the next run would take as complete.
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  local jars=("$KAFKA_LIBS"/*.jar)
  log "kafka: ${#jars[@]} jars cached in $KAFKA_LIBS"
}

kafka_uses_log4j2() { compgen -G "$KAFKA_LIBS/log4j-core-*.jar" >/dev/null; }

# JVM flag pointing Kafka (or a Kafka tool) at logging config $1 (a log4j2 XML
# or, for Kafka 3.x, a log4j 1 properties file).
kafka_log_flag() {
  if kafka_uses_log4j2; then
    printf -- '-Dlog4j2.configurationFile=%s' "$1.xml"
  else
    printf -- '-Dlog4j.configuration=file:%s' "$1.properties"
  fi
}

# ------------------------------------------------------------- identity ----

# The development PKI (x0_common.identity.development): the CA and one certificate per
# identity, made once and renewed a day before expiry. Needs the workspace venv.
identity_make() {
  [[ -x "$VENV_PYTHON" ]] || die "no virtual environment at $REPO_ROOT/.venv for the development PKI: run 'make setup' first"
  "$VENV_PYTHON" -m x0_common.identity.development "$IDENTITY_DIR" ||
    die "identity: the development PKI could not be made in $IDENTITY_DIR"
}

# The PEM keystore of identity $1 for Kafka's Java side (broker, tools): its PKCS#8 key
# and certificate in one file of mode 0600, at $KAFKA_TLS/$1.pem.
kafka_keystore() {
  mkdir -p "$KAFKA_TLS"
  chmod 700 "$KAFKA_TLS"
  (umask 077 && cat "$IDENTITY_DIR/$1/key.pem" "$IDENTITY_DIR/$1/cert.pem" >"$KAFKA_TLS/$1.pem.tmp")
  mv "$KAFKA_TLS/$1.pem.tmp" "$KAFKA_TLS/$1.pem"
}

# Client properties for a Kafka tool run as identity $1 (mutual TLS).
kafka_client_tls() {
  cat <<EOF
security.protocol=SSL
ssl.keystore.type=PEM
ssl.keystore.location=$KAFKA_TLS/$1.pem
ssl.truststore.type=PEM
ssl.truststore.location=$IDENTITY_DIR/ca/ca.pem
EOF
}

# Writes server.properties and the logging configs on every `up`, so a change
# in this script takes effect on the next start (the data stays).
kafka_write_config() {
  mkdir -p "$KAFKA_DATA"
  kafka_keystore kafka
  kafka_keystore ops
  local listeners="SSL://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT"
  local advertised="SSL://$HOST:$KAFKA_PORT" super_users="User:kafka;User:ops"
  if [[ -n "$KAFKA_PLAINTEXT_PORT" ]]; then
    # Development only, asked for by X0_STACK_KAFKA_PLAINTEXT_PORT: no identity there,
    # so no ACL could tell clients apart; they are all super users.
    listeners+=",PLAINTEXT://$HOST:$KAFKA_PLAINTEXT_PORT"
    advertised+=",PLAINTEXT://$HOST:$KAFKA_PLAINTEXT_PORT"
    super_users+=";User:ANONYMOUS"
  fi
  cat >"$KAFKA_PROPS" <<EOF
# Generated by deploy/local-stack/stack.sh on every 'up'; edit the script, not this.
# One KRaft node that is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=SSL
# The controller listener speaks mutual TLS too: a PLAINTEXT one would make its
# (anonymous) clients need super-user rights for the broker's own registration.
listener.security.protocol.map=CONTROLLER:SSL,SSL:SSL,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA

# Mutual TLS: the broker's identity and the trust bundle as PEM files (the development
# PKI's, or SPIRE's); a client without a certificate from the bundle is refused.
ssl.keystore.type=PEM
ssl.keystore.location=$KAFKA_TLS/kafka.pem
ssl.truststore.type=PEM
ssl.truststore.location=$IDENTITY_DIR/kafka/bundle.pem
ssl.client.auth=required
ssl.enabled.protocols=TLSv1.3,TLSv1.2
# CN=<name>.x0.local becomes User:<name>, the principal the ACLs name; any other
# subject stays its whole DN, which no ACL names.
ssl.principal.mapping.rules=RULE:^CN=([a-z0-9-]+)[.]x0[.]local\$/\$1/,DEFAULT
# Deny by default: only the ACLs of deploy/local-stack/kafka_access.py allow anything.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=$super_users

# A single node can hold only one replica of anything, internal topics included.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# New consumer groups would otherwise wait 3 s for more members before the
# first assignment; with tests creating groups all the time that adds up.
group.initial.rebalance.delay.ms=0
# Topics are created by ops tooling only (kafka_access.py), never by a first write.
auto.create.topics.enable=false
delete.topic.enable=true

# The largest record batch: x0_common's KafkaSettings.max_message_bytes (a 4 MiB
# payload, the gateway's body limit, plus 64 KiB of framing). Topics also set it
# themselves (ensure_topics); a test checks the two agree.
message.max.bytes=4259840
replica.fetch.max.bytes=4259840

# After a kill -9 the restarted node must wait until its own previous broker
# registration expires (DUPLICATE_BROKER_REGISTRATION until then): 9 s by
# default. Shorter here so chaos tests that kill the broker get it back in ~5 s;
# the heartbeat is local, so the margin for a GC pause is still ample.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=5000
EOF

  # Broker log: INFO to a file in the data folder; the chattiest loggers at WARN.
  cat >"$KAFKA_DIR/broker-logging.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by deploy/local-stack/stack.sh. -->
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="server" fileName="$KAFKA_DIR/server.log" filePattern="$KAFKA_DIR/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="server"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="kafka.network.RequestChannel\$" level="WARN"/>
    <Logger name="kafka.log.LogCleaner" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="org.apache.kafka.storage.internals.log" level="WARN"/>
    <Logger name="kafka.authorizer.logger" level="WARN"/>
  </Loggers>
</Configuration>
EOF
  # Tools (format, readiness probe): warnings only, on stderr.
  cat >"$KAFKA_DIR/tools-logging.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="stderr" target="SYSTEM_ERR"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="stderr"/></Root></Loggers>
</Configuration>
EOF
  # The same two for Kafka 3.x, which logs through reload4j (log4j 1).
  cat >"$KAFKA_DIR/broker-logging.properties" <<EOF
log4j.rootLogger=INFO, server
log4j.appender.server=org.apache.log4j.RollingFileAppender
log4j.appender.server.File=$KAFKA_DIR/server.log
log4j.appender.server.MaxFileSize=50MB
log4j.appender.server.MaxBackupIndex=3
log4j.appender.server.layout=org.apache.log4j.PatternLayout
log4j.appender.server.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.state.change.logger=WARN
EOF
  cat >"$KAFKA_DIR/tools-logging.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
  # Short timeouts for the readiness probe, so one try answers within seconds.
  {
    printf 'request.timeout.ms=3000\ndefault.api.timeout.ms=5000\n'
    kafka_client_tls ops
  } >"$KAFKA_DIR/probe.properties"
}

# Runs a Kafka tool class with the cached jars (what bin/kafka-run-class.sh does).
kafka_tool() {
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    "$(kafka_log_flag "$KAFKA_DIR/tools-logging")" \
    -cp "$KAFKA_LIBS/*" "$@"
}

# Formats the log dir once: a formatted dir holds meta.properties. The cluster
# id is kept in a file so a reformat after a partial purge keeps the same id.
kafka_format() {
  [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
  local id_file="$KAFKA_DIR/cluster-id" id
  if [[ ! -s "$id_file" ]]; then
    # A Kafka cluster id is a UUID as 22 characters of unpadded base64url.
    head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$id_file"
  fi
  id="$(cat "$id_file")"
  log "kafka: formatting $KAFKA_DATA (cluster id $id)"
  # --cluster-id=: an id that starts with "-" must not be read as an option.
  if ! kafka_tool kafka.tools.StorageTool format --standalone --cluster-id="$id" -c "$KAFKA_PROPS" \
      >"$KAFKA_DIR/format.log" 2>&1; then
    show_logs "$KAFKA_DIR/format.log"
    die "kafka: formatting the log dir failed"
  fi
}

kafka_pid() { live_pid_from "$KAFKA_PID" "$KAFKA_PROPS"; }

# Ready = the port accepts connections AND the broker answers a metadata request
# (TopicCommand --list), i.e. the controller has elected itself and the broker
# has caught up with the metadata log.
kafka_wait_ready() {
  local pid=$1 deadline=$((SECONDS + KAFKA_TIMEOUT))
  while ! tcp_open "$KAFKA_PORT"; do
    if ! pid_alive "$pid"; then
      show_logs "$KAFKA_OUT" "$KAFKA_DIR/server.log"
      die "kafka: the broker exited during start-up (logs above)"
    fi
    if ((SECONDS >= deadline)); then
      show_logs "$KAFKA_OUT" "$KAFKA_DIR/server.log"
      die "kafka: port $KAFKA_PORT did not open within ${KAFKA_TIMEOUT}s (pid $pid left running; 'stack.sh down' stops it)"
    fi
    sleep 0.5
  done
  while ! kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$KAFKA_PORT" \
      --command-config "$KAFKA_DIR/probe.properties" --list >/dev/null 2>"$KAFKA_DIR/probe.err"; do
    if ! pid_alive "$pid"; then
      show_logs "$KAFKA_OUT" "$KAFKA_DIR/server.log"
      die "kafka: the broker exited during start-up (logs above)"
    fi
    if ((SECONDS >= deadline)); then
      show_logs "$KAFKA_DIR/probe.err" "$KAFKA_DIR/server.log"
      die "kafka: no metadata answer from $HOST:$KAFKA_PORT within ${KAFKA_TIMEOUT}s (pid $pid left running; 'stack.sh down' stops it)"
    fi
    sleep 1
  done
}

kafka_up() {
  local pid
  if pid="$(kafka_pid)" && ! grep -q '^ssl.client.auth=required$' "$KAFKA_PROPS"; then
    # Started by an older stack.sh, on PLAINTEXT: its clients now speak mutual TLS.
    log "kafka: running without mutual TLS, restarting it (the data stays)"
    kafka_down
  fi
  if pid="$(kafka_pid)"; then
    if pid_listens_on "$pid" "$KAFKA_PORT"; then
      log "kafka: already running (pid $pid, $HOST:$KAFKA_PORT)"
      return 0
    fi
    log "kafka: pid $pid is starting, waiting for it"
    kafka_wait_ready "$pid"
    log "kafka: ready (pid $pid, $HOST:$KAFKA_PORT)"
    return 0
  fi
  rm -f "$KAFKA_PID"
  ensure_port_free "$KAFKA_PORT" "Kafka broker"
  ensure_port_free "$KAFKA_CONTROLLER_PORT" "Kafka controller"
  [[ -z "$KAFKA_PLAINTEXT_PORT" ]] || ensure_port_free "$KAFKA_PLAINTEXT_PORT" "Kafka plaintext listener"
  kafka_fetch
  kafka_write_config
  kafka_format

  # The flags bin/kafka-server-start.sh would pass, with a smaller heap for a
  # 2-core dev machine. nohup + setsid: the broker outlives this shell and a
  # Ctrl-C in the terminal that ran `up` does not reach it.
  log "kafka: starting $KAFKA_VERSION on $HOST:$KAFKA_PORT"
  nohup setsid java -Xms256m -Xmx1g \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    "$(kafka_log_flag "$KAFKA_DIR/broker-logging")" -Dkafka.logs.dir="$KAFKA_DIR" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS" \
    >"$KAFKA_OUT" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$KAFKA_PID"
  kafka_wait_ready "$pid"
  log "kafka: ready (pid $pid, $HOST:$KAFKA_PORT)"
}

# Topics and ACLs as code (deploy/local-stack/kafka_access.py), applied as ops: every
# topic of the table, and each identity's least-privilege ACLs. Idempotent.
kafka_access() {
  if ! X0_KAFKA__BOOTSTRAP_SERVERS="$HOST:$KAFKA_PORT" \
      X0_TLS__CERT_FILE="$IDENTITY_DIR/ops/cert.pem" X0_TLS__KEY_FILE="$IDENTITY_DIR/ops/key.pem" \
      X0_TLS__BUNDLE_FILE="$IDENTITY_DIR/ops/bundle.pem" \
      "$VENV_PYTHON" "$SCRIPT_DIR/kafka_access.py" >"$KAFKA_DIR/access.log" 2>&1; then
    show_logs "$KAFKA_DIR/access.log"
    die "kafka: applying topics and ACLs failed (log above)"
  fi
  log "kafka: $(tail -n1 "$KAFKA_DIR/access.log")"
}

kafka_down() {
  local pid
  if ! pid="$(kafka_pid)"; then
    rm -f "$KAFKA_PID"
    log "kafka: not running"
    return 0
  fi
  # SIGTERM makes the broker flush and close its logs (a clean shutdown skips
  # log recovery on the next start).
  log "kafka: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  wait_exit_or_kill "$pid" 30 kafka
  rm -f "$KAFKA_PID"
  log "kafka: stopped"
}

kafka_status() {
  local pid
  if pid="$(kafka_pid)" && pid_listens_on "$pid" "$KAFKA_PORT"; then
    printf '%-9s running  pid %-8s %s:%s (kafka %s)\n' kafka "$pid" "$HOST" "$KAFKA_PORT" "$KAFKA_VERSION"
    return 0
  elif [[ -n "${pid:-}" ]]; then
    printf '%-9s starting pid %-8s %s:%s not open yet\n' kafka "$pid" "$HOST" "$KAFKA_PORT"
  else
    printf '%-9s stopped\n' kafka
  fi
  return 1
}

# ------------------------------------------------------------- postgresql ----

# Finds the PostgreSQL binaries (15 preferred, else the newest installed) and
# the data paths. Installs postgresql-15 when none is present.
pg_paths() {
  local newest=""
  if [[ -x /usr/lib/postgresql/15/bin/postgres ]]; then
    PG_BIN=/usr/lib/postgresql/15/bin
  else
    newest="$(printf '%s\n' /usr/lib/postgresql/*/bin/postgres | sort -V | tail -n1)"
    if [[ -x "$newest" ]]; then
      PG_BIN="${newest%/postgres}"
    elif [[ "${1:-}" == install ]]; then
      pg_install
      PG_BIN=/usr/lib/postgresql/15/bin
    else
      PG_BIN=""
    fi
  fi

  PG_DIR="$STACK_DIR/postgres"
  # PostgreSQL runs as the postgres user (it refuses root). That user must be
  # able to reach .stack; when the checkout sits under a private folder (e.g.
  # /root) it cannot, and the cluster lives under /var/lib/x0-stack instead
  # (named after the checkout, so checkouts do not share it).
  if is_root && [[ -d "$STACK_DIR" ]] && ! runuser -u postgres -- test -x "$STACK_DIR" 2>/dev/null; then
    PG_DIR="/var/lib/x0-stack/$(printf '%s' "$STACK_DIR" | sha1sum | cut -c1-12)/postgres"
  fi
  PG_DATA="$PG_DIR/data"
  PG_LOG="$PG_DIR/postgres.log"
  PG_SOCK="$PG_DIR/run"
  # A Unix socket path is limited to 107 bytes; a deep checkout would exceed it.
  if (( ${#PG_SOCK} + 20 > 107 )); then
    PG_SOCK="/tmp/x0-pg-$(printf '%s' "$PG_DIR" | sha1sum | cut -c1-12)"
  fi
}

pg_install() {
  apt_install postgresql-15
  # The Debian package creates a "15/main" cluster on 5432 and, where services
  # may start, starts it: that would sit on our port. We just installed it, so
  # stopping it is ours to do. Our cluster never uses pg_ctlcluster.
  if command -v pg_lsclusters >/dev/null && [[ -n "$(pg_lsclusters -h 2>/dev/null | awk '$4 == "online"')" ]]; then
    log "postgres: stopping the Debian package's default cluster (it would hold port $PG_PORT)"
    pg_lsclusters -h | awk '$4 == "online" {print $1, $2}' | while read -r ver name; do
      pg_ctlcluster "$ver" "$name" stop || true
    done
  fi
}

# Runs a command as the database's OS user (postgres when we are root).
as_pg() {
  if is_root; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_pid() { live_pid_from "$PG_DATA/postmaster.pid" "$PG_DATA"; }

# The roles, the database x0 and the services' schemas; safe to run on every `up`
# (passwords follow the credential files; objects an earlier, single-role stack made
# in a service's schema are handed to that service's role).
#   x0         admin for tests and tools: owns database x0, may create databases (tests
#              make their own), and is a member of every service role (to inspect,
#              and to run a service's migrations as it: x0_common.postgres.migrate)
#   monitor    pg_monitor, for the PostgreSQL exporter; no table access
#   <service>  LOGIN only: CONNECT and TEMPORARY on x0, owner of schema <service>,
#              no privilege on any other schema (public included)
pg_bootstrap() {
  local name roles=() sql
  for name in "${SERVICE_NAMES[@]}"; do roles+=("'$name'"); done
  local list
  list="$(IFS=,; printf '%s' "${roles[*]}")"
  sql="SET client_min_messages = warning;
SELECT format('CREATE ROLE %I', r) FROM unnest(ARRAY['x0','monitor',$list]) AS r
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)
\gexec
ALTER ROLE x0 LOGIN CREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION PASSWORD '$(credential postgres-x0)';
ALTER ROLE monitor LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD '$(credential postgres-monitor)';
GRANT pg_monitor TO monitor;
"
  for name in "${SERVICE_NAMES[@]}"; do
    sql+="ALTER ROLE $name LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '$(credential "postgres-$name")';
GRANT $name TO x0;
"
  done
  sql+="SELECT 'CREATE DATABASE x0 OWNER x0'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'x0')
\gexec
\connect x0
SET client_min_messages = warning;
REVOKE ALL ON DATABASE x0 FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE x0 TO monitor, $(IFS=,; printf '%s' "${SERVICE_NAMES[*]}");
REVOKE ALL ON SCHEMA public FROM PUBLIC;
"
  for name in "${SERVICE_NAMES[@]}"; do
    sql+="CREATE SCHEMA IF NOT EXISTS $name AUTHORIZATION $name;
ALTER SCHEMA $name OWNER TO $name;
REVOKE ALL ON SCHEMA $name FROM PUBLIC;
"
  done
  sql+="DO \$\$
DECLARE o record;
BEGIN
  FOR o IN
    SELECT format('ALTER TABLE %I.%I OWNER TO %I', n.nspname, c.relname, n.nspname) AS statement
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ($list) AND c.relowner <> n.nspowner AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    UNION ALL
    SELECT format('ALTER SEQUENCE %I.%I OWNER TO %I', n.nspname, c.relname, n.nspname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ($list) AND c.relowner <> n.nspowner AND c.relkind = 'S'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
    UNION ALL
    SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, n.nspname)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ($list) AND p.proowner <> n.nspowner
    UNION ALL
    SELECT format('ALTER TYPE %I.%I OWNER TO %I', n.nspname, t.typname, n.nspname)
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname IN ($list) AND t.typowner <> n.nspowner AND t.typtype IN ('e', 'd', 'r')
  LOOP
    EXECUTE o.statement;
  END LOOP;
END
\$\$;
"
  # On stdin, so no password is ever on a command line.
  as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres \
    <<<"$sql" >/dev/null
}

pg_up() {
  pg_paths install
  local pid
  if pid="$(pg_pid)"; then
    if pid_listens_on "$pid" "$PG_PORT"; then
      log "postgres: already running (pid $pid, $HOST:$PG_PORT)"
      pg_bootstrap
      return 0
    fi
  fi
  mkdir -p "$PG_DIR" "$PG_SOCK"
  if is_root; then chown postgres:postgres "$PG_DIR" "$PG_SOCK"; fi
  chmod 700 "$PG_DIR"
  # The Debian cluster is never used: ours is its own initdb in .stack, with
  # peer auth on the socket (for this script, as postgres) and passwords on TCP.
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    log "postgres: initdb $PG_DATA"
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --no-locale \
        --auth-local=peer --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1; then
      show_logs "$PG_DIR/initdb.log"
      die "postgres: initdb failed"
    fi
  fi
  local data_ver bin_ver
  data_ver="$(cat "$PG_DATA/PG_VERSION")"
  bin_ver="$(basename "$(dirname "$PG_BIN")")"
  [[ "$data_ver" == "$bin_ver" ]] ||
    die "postgres: $PG_DATA was made by PostgreSQL $data_ver but $PG_BIN is $bin_ver (stack.sh purge to start over)"

  if ! pid="$(pg_pid)"; then
    ensure_port_free "$PG_PORT" "PostgreSQL"
    log "postgres: starting on $HOST:$PG_PORT"
    # pg_ctl -w waits until the server accepts connections (or gives up).
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
        -o "-c listen_addresses=$HOST -p $PG_PORT -c unix_socket_directories=$PG_SOCK" \
        start >/dev/null 9>&-; then
      show_logs "$PG_LOG"
      die "postgres: did not start (log above)"
    fi
  fi
  local i
  for ((i = 0; i < 60; i++)); do
    "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -t 1 && break
    sleep 1
  done
  if ! "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -t 1; then
    show_logs "$PG_LOG"
    die "postgres: pg_isready does not answer on $HOST:$PG_PORT"
  fi
  pg_bootstrap
  log "postgres: ready (pid $(pg_pid), $HOST:$PG_PORT, db x0; roles x0 (admin), monitor, ${SERVICE_NAMES[*]})"
}

pg_down() {
  pg_paths
  local pid
  if ! pid="$(pg_pid)"; then
    log "postgres: not running"
    return 0
  fi
  log "postgres: stopping pid $pid"
  # Fast: roll back open transactions and disconnect clients, then a clean
  # checkpoint (unlike immediate, which needs crash recovery on the next start).
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null ||
    { kill -TERM "$pid" 2>/dev/null || true; wait_exit_or_kill "$pid" 30 postgres; }
  log "postgres: stopped"
}

pg_status() {
  pg_paths
  local pid
  if pid="$(pg_pid)" && pid_listens_on "$pid" "$PG_PORT"; then
    printf '%-9s running  pid %-8s %s:%s (postgresql %s)\n' postgres "$pid" "$HOST" "$PG_PORT" "$(cat "$PG_DATA/PG_VERSION")"
    return 0
  fi
  printf '%-9s stopped\n' postgres
  return 1
}

# ------------------------------------------------------------------ redis ----

redis_pid() { live_pid_from "$REDIS_PID" "redis-server"; }

# redis-cli as the admin user, the password from its file through the environment
# (never on a command line); plain redis-cli before the credentials exist.
rcli() {
  if [[ -s "$CRED_DIR/redis-admin.password" ]]; then
    REDISCLI_AUTH="$(head -n1 "$CRED_DIR/redis-admin.password")" \
      redis-cli --no-auth-warning --user admin -h "$HOST" -p "$REDIS_PORT" "$@"
  else
    redis-cli -h "$HOST" -p "$REDIS_PORT" "$@"
  fi
}

# The ACL file (Redis 7 key patterns), passwords as SHA-256 only. Every command a
# service uses is on keys under its prefix (Lua scripts' redis.call included); none
# uses pub/sub, so no user has a channel. The default user is off: a client that does
# not authenticate can run nothing.
#   admin      everything (tests and tools)
#   monitor    the exporter's INFO, CONFIG GET, SLOWLOG, ... and no key
#   gateway    ~x0:rl:* (rate limiter), ~x0:idem:* (idempotency records)
#   crypto     ~x0:crypto:*      rag ~x0:rag:*      telemetry ~x0:telemetry:*
redis_write_acl() {
  # TIME: the gateway's rate-limit script reads the server's clock.
  local service_commands="-@all +@read +@write +@scripting +@transaction +@connection +time -@dangerous -function -script|flush -script|kill"
  hash() { credential "redis-$1" | tr -d '\n' | sha256sum | cut -d' ' -f1; }
  local name prefixes
  mkdir -p "$REDIS_DIR"
  (
    umask 077
    {
      echo "user default off resetpass resetkeys resetchannels -@all"
      echo "user admin on #$(hash admin) ~* &* +@all"
      echo "user monitor on #$(hash monitor) resetkeys resetchannels -@all +@connection -@dangerous +info +config|get +slowlog|get +slowlog|len +latency|latest +dbsize +client|list +memory|stats"
      for name in "${SERVICE_NAMES[@]}"; do
        case "$name" in
          gateway) prefixes="~x0:rl:* ~x0:idem:*" ;;
          *) prefixes="~x0:$name:*" ;;
        esac
        echo "user $name on #$(hash "$name") resetkeys resetchannels $prefixes $service_commands"
      done
    } >"$REDIS_ACL.tmp"
  )
  mv "$REDIS_ACL.tmp" "$REDIS_ACL"
  chmod 600 "$REDIS_ACL"
  # The exporter's --redis.password-file is a JSON map from address to password.
  (umask 077 && printf '{"redis://%s:%s": "%s"}\n' "$HOST" "$REDIS_PORT" "$(credential redis-monitor)" >"$CRED_DIR/redis-monitor.json")
}

redis_up() {
  if ! command -v redis-server >/dev/null; then
    apt_install redis-server
    # Where services may start, the package starts its own redis on 6379.
    # We just installed it, so stopping it is ours to do.
    if [[ -f /run/redis/redis-server.pid ]] && pid_alive "$(cat /run/redis/redis-server.pid)"; then
      log "redis: stopping the Debian package's redis-server service (it would hold port $REDIS_PORT)"
      service redis-server stop >/dev/null 2>&1 || kill -TERM "$(cat /run/redis/redis-server.pid)" || true
    fi
  fi
  redis_write_acl
  local pid
  if pid="$(redis_pid)" && pid_listens_on "$pid" "$REDIS_PORT"; then
    if [[ "$(rcli acl load 2>/dev/null)" == OK ]]; then
      log "redis: already running (pid $pid, $HOST:$REDIS_PORT), ACL users reloaded"
      return 0
    fi
    # Started before the ACL users existed (no aclfile): a cache, so restart it.
    log "redis: running without this stack's ACL users, restarting it (a cache: nothing kept)"
    kill -TERM "$pid" 2>/dev/null || true
    wait_exit_or_kill "$pid" 10 redis
  fi
  rm -f "$REDIS_PID"
  ensure_port_free "$REDIS_PORT" "Redis"
  log "redis: starting on $HOST:$REDIS_PORT"
  # A cache: no RDB snapshots, no AOF. --daemonize returns once it forked.
  if ! redis-server --bind "$HOST" --port "$REDIS_PORT" --dir "$REDIS_DIR" \
      --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" \
      --aclfile "$REDIS_ACL" --save '' --appendonly no 9>&-; then
    show_logs "$REDIS_LOG"
    die "redis: redis-server refused to start"
  fi
  local i
  for ((i = 0; i < 100; i++)); do
    [[ "$(rcli ping 2>/dev/null)" == PONG ]] && break
    sleep 0.1
  done
  if [[ "$(rcli ping 2>/dev/null)" != PONG ]]; then
    show_logs "$REDIS_LOG"
    die "redis: no PONG from $HOST:$REDIS_PORT"
  fi
  log "redis: ready (pid $(redis_pid || echo '?'), $HOST:$REDIS_PORT; users admin, monitor, ${SERVICE_NAMES[*]}; default off)"
}

redis_down() {
  local pid
  if ! pid="$(redis_pid)"; then
    rm -f "$REDIS_PID"
    log "redis: not running"
    return 0
  fi
  log "redis: stopping pid $pid"
  rcli shutdown nosave >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  wait_exit_or_kill "$pid" 10 redis
  rm -f "$REDIS_PID"
  log "redis: stopped"
}

redis_status() {
  local pid
  if pid="$(redis_pid)" && pid_listens_on "$pid" "$REDIS_PORT"; then
    printf '%-9s running  pid %-8s %s:%s\n' redis "$pid" "$HOST" "$REDIS_PORT"
    return 0
  fi
  printf '%-9s stopped\n' redis
  return 1
}

# ------------------------------------------------------------- monitoring ----

# Prometheus, Alertmanager and the PostgreSQL and Redis exporters are not part of
# the stack this script runs: their tools validate deploy/prometheus and
# deploy/alertmanager (tests/deploy), the live-metrics tests start `prometheus`
# themselves on a free port, and services.sh runs them all beside the x0 services.
# `up` only makes sure Debian's packages are installed.
# Prometheus; Alertmanager web and cluster (gossip); postgres and redis exporters.
MONITORING_PORTS=(9090 9093 9094 9187 9121)

# The packages whose programs are missing, one per line.
monitoring_missing() {
  if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    echo prometheus
  fi
  if ! command -v amtool >/dev/null || ! command -v prometheus-alertmanager >/dev/null; then
    echo prometheus-alertmanager
  fi
  command -v prometheus-postgres-exporter >/dev/null || echo prometheus-postgres-exporter
  command -v prometheus-redis-exporter >/dev/null || echo prometheus-redis-exporter
}

# Where services may start, installing these packages starts their daemons at once:
# Prometheus on 9090, Alertmanager on 9093 (this stack's Kafka controller port) and
# 9094. We just installed them, so stopping them is ours to do; they are disabled
# too, so a reboot does not bring Alertmanager back onto the controller's port.
monitoring_stop_package_daemons() {
  local unit
  for unit in "$@"; do
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
      systemctl disable --now "$unit" >/dev/null 2>&1 || true
    elif [[ -x "/etc/init.d/$unit" ]]; then
      service "$unit" stop >/dev/null 2>&1 || true
    fi
  done
  # Whatever the init system did: a packaged daemon still listening is stopped by pid
  # (only the packages' own programs, which did not exist before the install).
  local port p exe
  for port in "${MONITORING_PORTS[@]}"; do
    for p in $(listener_pids "$port"); do
      exe="$(readlink "/proc/$p/exe" 2>/dev/null || true)"
      if [[ "$exe" == /usr/bin/prometheus* ]]; then
        log "monitoring: $exe (pid $p) still holds port $port, stopping it"
        kill -TERM "$p" 2>/dev/null || true
        wait_exit_or_kill "$p" 10 "${exe##*/}"
      fi
    done
  done
}

monitoring_tools_up() {
  local missing
  mapfile -t missing < <(monitoring_missing)
  if ((${#missing[@]})); then
    apt_install "${missing[@]}"
    log "monitoring: stopping the daemons the packages may have started (they would hold ports ${MONITORING_PORTS[*]})"
    monitoring_stop_package_daemons "${missing[@]}"
    mapfile -t missing < <(monitoring_missing)
    ((${#missing[@]} == 0)) || die "monitoring: ${missing[*]} installed but its programs are still missing"
  fi
  log "monitoring: $(promtool --version 2>&1 | head -n1), $(amtool --version 2>&1 | head -n1)"
}

# ------------------------------------------------------------------- main ----

# The admin's connections (tests and tools), or with a service name that service's
# own: its role and user, their passwords in files (X0_*__PASSWORD_FILE).
print_env() {
  local service=${1:-}
  if [[ -z "$service" ]]; then
    cat <<EOF
export X0_KAFKA__BOOTSTRAP_SERVERS=$HOST:$KAFKA_PORT
export X0_POSTGRES__DSN=postgresql://x0:$(credential postgres-x0)@$HOST:$PG_PORT/x0
export X0_REDIS__URL=redis://admin:$(credential redis-admin)@$HOST:$REDIS_PORT/0
export X0_STACK_CREDENTIALS=$CRED_DIR
export X0_STACK_IDENTITY=$IDENTITY_DIR
$(print_tls ops)
EOF
    if [[ -n "$KAFKA_PLAINTEXT_PORT" ]]; then
      printf 'export X0_STACK_KAFKA_PLAINTEXT_BOOTSTRAP=%s:%s\n' "$HOST" "$KAFKA_PLAINTEXT_PORT"
    fi
    return 0
  fi
  [[ " ${SERVICE_NAMES[*]} " == *" $service "* ]] || die "env: no service '$service' (one of ${SERVICE_NAMES[*]})"
  credential "postgres-$service" >/dev/null
  credential "redis-$service" >/dev/null
  cat <<EOF
export X0_KAFKA__BOOTSTRAP_SERVERS=$HOST:$KAFKA_PORT
export X0_POSTGRES__DSN=postgresql://$service@$HOST:$PG_PORT/x0
export X0_POSTGRES__PASSWORD_FILE=$CRED_DIR/postgres-$service.password
export X0_REDIS__URL=redis://$service@$HOST:$REDIS_PORT/0
export X0_REDIS__PASSWORD_FILE=$CRED_DIR/redis-$service.password
$(print_tls "$service")
EOF
}

# The X0_TLS__* variables naming identity $1's files (the admin's is ops).
print_tls() {
  cat <<EOF
export X0_TLS__CERT_FILE=$IDENTITY_DIR/$1/cert.pem
export X0_TLS__KEY_FILE=$IDENTITY_DIR/$1/key.pem
export X0_TLS__BUNDLE_FILE=$IDENTITY_DIR/$1/bundle.pem
EOF
}

# One `up`/`down` at a time per checkout: two overlapping runs (e.g. two make
# targets) would otherwise race on pid files and ports. The lock is fd 9; every
# service is started with 9>&- so a daemon never inherits (and keeps) the lock.
take_lock() {
  mkdir -p "$STACK_DIR"
  exec 9>"$STACK_DIR/stack.lock"
  flock -w 300 9 || die "another stack.sh still holds $STACK_DIR/stack.lock after 300s"
}

# Before starting anything: every port a stopped service will need must be
# free, so a conflict fails `up` at once instead of after half the stack started.
preflight_ports() {
  redis_pid >/dev/null || ensure_port_free "$REDIS_PORT" "Redis"
  pg_paths
  pg_pid >/dev/null || ensure_port_free "$PG_PORT" "PostgreSQL"
  if ! kafka_pid >/dev/null; then
    ensure_port_free "$KAFKA_PORT" "Kafka broker"
    ensure_port_free "$KAFKA_CONTROLLER_PORT" "Kafka controller"
  fi
}

cmd_up() {
  take_lock
  local start=$SECONDS
  # First: a daemon the packages may start would otherwise hold Kafka's controller port.
  monitoring_tools_up
  preflight_ports
  credentials_make
  # Workload identities (SVIDs): SPIRE server, agent, entries (deploy/local-stack/spire.sh).
  "$SCRIPT_DIR/spire.sh" up
  redis_up
  pg_up
  identity_make
  kafka_up
  kafka_access
  log "stack up in $((SECONDS - start))s; state in $STACK_DIR"
  # Not the admin's: its passwords would land in a terminal or a CI log.
  log "  connection variables: $0 env (admin), $0 env <service> (gateway, crypto, rag, telemetry)"
}

cmd_down() {
  local purge=${1:-}
  take_lock
  # Reverse order of `up`; each step is a no-op when that service is not running.
  kafka_down
  pg_down
  redis_down
  "$SCRIPT_DIR/spire.sh" down
  if [[ "$purge" == --purge ]]; then
    pg_paths
    log "purging $STACK_DIR"
    # PG_DIR may live outside .stack (see pg_paths); PG_SOCK may be in /tmp.
    if [[ "$PG_DIR" != "$STACK_DIR/postgres" ]]; then rm -rf "$(dirname "$PG_DIR")"; fi
    if [[ "$PG_SOCK" != "$PG_DIR/run" ]]; then rm -rf "$PG_SOCK"; fi
    rm -rf "$STACK_DIR"
    log "purged (the Kafka jar cache in $CACHE_ROOT stays)"
  fi
}

# End-to-end check of a running stack with the clients the project uses: psql
# over TCP with the x0 password, redis-cli SET/GET, and smoke.py (aiokafka).
cmd_smoke() {
  pg_paths
  [[ -n "$PG_BIN" ]] || die "PostgreSQL is not installed (stack.sh up installs it)"
  local py="$REPO_ROOT/.venv/bin/python" out
  log "postgres smoke: psql as x0 over TCP"
  out="$(PGPASSWORD="$(credential postgres-x0)" "$PG_BIN/psql" -X -q -At -h "$HOST" -p "$PG_PORT" -U x0 -d x0 \
    -c "CREATE TEMP TABLE smoke(v int); INSERT INTO smoke VALUES (42); SELECT current_user || ' ' || v FROM smoke;")" ||
    die "postgres smoke failed"
  [[ "$out" == "x0 42" ]] || die "postgres smoke: unexpected answer '$out'"
  log "  ok ($out)"
  log "redis smoke: redis-cli SET/GET as admin"
  out="$(rcli set x0:smoke ok EX 10 && rcli get x0:smoke)" || die "redis smoke failed"
  [[ "$out" == $'OK\nok' ]] || die "redis smoke: unexpected answer '$out'"
  log "  ok"
  [[ -x "$py" ]] || py="$(command -v python3)"
  if ! "$py" -c 'import aiokafka' 2>/dev/null; then
    die "kafka smoke needs aiokafka: create the workspace venv first (uv sync)"
  fi
  # As ops: the smoke topic is created and deleted, which no service may do.
  X0_KAFKA__BOOTSTRAP_SERVERS="$HOST:$KAFKA_PORT" X0_TLS__CERT_FILE="$IDENTITY_DIR/ops/cert.pem" \
    X0_TLS__KEY_FILE="$IDENTITY_DIR/ops/key.pem" X0_TLS__BUNDLE_FILE="$IDENTITY_DIR/ops/bundle.pem" \
    "$py" "$SCRIPT_DIR/smoke.py"
}

cmd_status() {
  local rc=0
  kafka_status || rc=1
  pg_status || rc=1
  redis_status || rc=1
  "$SCRIPT_DIR/spire.sh" status || rc=1
  return "$rc"
}

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

main() {
  local cmd=${1:-}
  shift || true
  case "$cmd" in
    up) cmd_up ;;
    down)
      case "${1:-}" in
        "" | --purge) cmd_down "${1:-}" ;;
        *) die "down: unknown option ${1}" ;;
      esac
      ;;
    purge) cmd_down --purge ;;
    status) cmd_status ;;
    smoke) cmd_smoke ;;
    env) print_env "${1:-}" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
