#!/usr/bin/env bash
# One line per SeaweedFS unit of this host: name, MainPID, ActiveEnterTimestampMonotonic, ActiveExitTimestampMonotonic.
set -euo pipefail
for unit in /etc/systemd/system/seaweedfs-*.service; do
  name=$(basename "$unit")
  echo "$name $(systemctl show --property=MainPID,ActiveEnterTimestampMonotonic,ActiveExitTimestampMonotonic --value "$name" | tr '\n' ' ')"
done
