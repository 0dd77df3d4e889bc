#!/bin/sh
# start.sh DIR: start a real single-node Slurm (slurmctld + slurmd, munge
# auth) for tests, with its state, logs and config under DIR, and print the
# line to export SLURM_CONF. Needs root and the Debian packages
#   slurmctld slurmd slurm-client munge
# (apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge).
# Stop it with stop.sh DIR. Recipe: ../shared/docs/slurm-single-node.md.
set -eu
DIR=${1:?usage: start.sh DIR}
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
DIR=$(cd "$DIR" && pwd)
NODE=$(slurmd -C | head -n 1)
HOST=$(echo "$NODE" | sed -n 's/^NodeName=\([^ ]*\).*/\1/p')
cat >"$DIR/slurm.conf" <<CONF
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
$NODE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$DIR/slurm.conf"
install -d -o munge -g munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n >/dev/null 2>&1; then
	[ -f /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
	runuser -u munge -- /usr/sbin/munged
fi
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
i=0
until [ "$(sinfo -h -o %T 2>/dev/null | head -n 1)" = idle ]; do
	i=$((i + 1))
	if [ $i -gt 100 ]; then
		echo "start.sh: Slurm did not become idle in 20 s; see $DIR/log" >&2
		exit 1
	fi
	sleep 0.2
done
echo "export SLURM_CONF=$SLURM_CONF"
