"""Backups on the five-host cluster: the repository on the backup host (the load balancer)
gets its backups from the replica and its WAL from the leader; a point-in-time restore
brings the leader back to exactly the rows of that moment and Patroni makes the replica
again from it, both on the restored timeline, with the app serving through the load
balancer again without a redeploy."""

import secrets

import httpx
import pytest
from backups import next_second, pgbackrest, post, restore, said, table
from deploys import run_playbook
from hostcheck import host_setting, wait_for
from members import Cluster, leader, members, roles, whole

# Takes backups, restores the database and makes the replica again.
pytestmark = [pytest.mark.destructive, pytest.mark.usefixtures("healthy")]


def test_the_backup_host_backs_up_from_the_replica(cluster: Cluster, inventory: str) -> None:
    run = run_playbook(inventory, "backup.yml", "-e", "backup_type=incr")
    assert run.returncode == 0, run.stdout[-3000:]
    backup_host = cluster.hosts[cluster.group("backup")[0]]
    stanza = host_setting(backup_host, "backup_stanza")
    log = backup_host.file(f"/var/log/pgbackrest/{stanza}-backup.log").content_string
    this_backup = log.rsplit("backup command begin", 1)[-1]
    # pgBackRest waits for the replica to replay up to the backup's start, then copies
    # the files from it.
    assert "replay on the standby reached" in this_backup, this_backup[-2000:]
    assert "backup command end: completed successfully" in this_backup, this_backup[-2000:]


def test_a_point_in_time_restore_brings_back_that_state_on_both_database_hosts(
    cluster: Cluster, inventory: str, writer: httpx.Client
) -> None:
    first = leader(cluster)
    assert first, roles(cluster)
    database = str(host_setting(cluster.hosts[first], "app_database_name"))
    ids = [post(writer, f"before the target {n} {secrets.token_hex(4)}") for n in range(6)]
    at_target = table(cluster.hosts[first], database)
    target = next_second(cluster.hosts[first], database)
    assert writer.put(f"/messages/{ids[0]}", json={"message": "changed later"}).status_code == 200
    assert writer.delete(f"/messages/{ids[1]}").status_code == 204
    post(writer, "written later")
    assert table(cluster.hosts[first], database) != at_target
    timeline = {member.get("timeline", 0) for member in members(cluster)}

    run = restore(inventory, backup_restore_target_time=target)

    assert run.returncode == 0, run.stdout[-3000:]
    assert f"to {target} from backup" in said(run)
    assert wait_for(lambda: whole(cluster), 120, step=2) is not None, roles(cluster)
    # The leader was restored; the replica, made again, has exactly its rows.
    assert leader(cluster) == first
    for name in cluster.group("db"):
        host = cluster.hosts[name]
        assert wait_for(lambda h=host: table(h, database) == at_target, 30) is not None, name

    # Both on one timeline after the restore's (a member reports its own once it runs).
    def one_new_timeline() -> bool:
        timelines = [member.get("timeline", 0) for member in members(cluster)]
        return len(timelines) == 2 and len(set(timelines)) == 1 and timelines[0] > max(timeline)

    assert wait_for(one_new_timeline, 30, step=1) is not None, members(cluster)
    # The app's pool found the restored leader: writes go on, and so does archiving.
    post(writer, "after the restore")
    restored_leader = cluster.hosts[first]
    check = pgbackrest(restored_leader, lambda name: host_setting(restored_leader, name), "check")
    assert check.rc == 0, check.stderr
