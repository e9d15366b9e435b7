#!/usr/bin/env bash
# SCRAM users and ACLs for docker-compose.yml, the same grants as the secured devstack
# (sdstream/devstack/kafka_acls.py; docs/SECURITY.md "Kafka principals"):
# - producer-<cluster>: topics prefixed <prefix>.<cluster>.: create, write, read, describe,
#   describe-configs;
# - fold: topics prefixed <prefix>.: read, describe; topic <prefix>.targets: create, write,
#   describe-configs; groups prefixed <prefix>: read, describe.
# Runs in the broker's network namespace and talks to its loopback-only ADMIN listener.
# Passwords come from Docker secrets; they appear on kafka-configs.sh's command line inside
# this short-lived container only.
set -euo pipefail
bin=/opt/kafka/bin
admin=127.0.0.1:9094
prefix=${TOPIC_PREFIX:-sdstream}
group=${CONSUMER_GROUP:-sdstream-consumer}

for attempt in $(seq 1 60); do
  "$bin/kafka-broker-api-versions.sh" --bootstrap-server "$admin" >/dev/null 2>&1 && break
  [ "$attempt" = 60 ] && { echo "kafka-setup: broker not answering on $admin" >&2; exit 1; }
  sleep 2
done

scram() {  # user, password file
  "$bin/kafka-configs.sh" --bootstrap-server "$admin" --alter --entity-type users \
    --entity-name "$1" --add-config "SCRAM-SHA-512=[password=$(cat "$2")]"
}
acl() {  # principal, then kafka-acls.sh resource and operation options
  local principal=$1; shift
  "$bin/kafka-acls.sh" --bootstrap-server "$admin" --add --allow-principal "User:$principal" "$@"
}

for cluster in ${CLUSTERS//,/ }; do
  scram "producer-$cluster" /run/secrets/producer_kafka_password
  acl "producer-$cluster" --resource-pattern-type prefixed --topic "$prefix.$cluster." \
    --operation Create --operation Write --operation Read --operation Describe \
    --operation DescribeConfigs
done
scram fold /run/secrets/fold_kafka_password
acl fold --resource-pattern-type prefixed --topic "$prefix." --operation Read --operation Describe
acl fold --topic "$prefix.targets" --operation Create --operation Write --operation DescribeConfigs
acl fold --resource-pattern-type prefixed --group "$prefix" --operation Read --operation Describe
echo "kafka-setup: users and ACLs for prefix $prefix, clusters $CLUSTERS, group $group"
