#!/bin/sh
# stop.sh DIR: stop the Slurm daemons start.sh DIR started, by their pid files.
set -u
DIR=${1:?usage: stop.sh DIR}
for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
	[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
done
exit 0
