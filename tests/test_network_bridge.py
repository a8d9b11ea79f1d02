"""Bridge networks (CNI): own address and hostname, published ports, user-defined
networks with names, isolation, and crash cleanup.  Everything runs inside a
network namespace the test creates (tests/netns_helpers.py); traffic goes only to
127.0.0.1 and to addresses inside it."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import PYBUILD
from netns_helpers import netcli, netns  # noqa: F401
from runner_helpers import container_id, image_variant, needs_root, wait_for

pytestmark = needs_root

HTTPD = "mkdir -p /www && echo hello-$HOSTNAME > /www/index.html && exec httpd -f -p 80 -h /www"


def fetch(cli, url: str) -> str | None:
    """The body at ``url`` fetched from the test's host namespace, or None."""
    proc = cli.host(sys.executable, "-c", f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=2)"
                    ".read().decode(), end='')", check=False)
    return proc.stdout if proc.returncode == 0 else None


def run_out(cli, *args: str) -> str:
    return cli("run", "--rm", *args).stdout.decode()


def test_default_network_is_a_bridge_with_own_address_and_hostname(netcli, root):
    out = netcli("run", "--name", "solo", "busybox", "sh", "-c",
                 "hostname; ip -o -4 addr show eth0; cat /etc/hosts").stdout.decode().splitlines()
    short = container_id(root, "solo")[:12]
    assert out[0] == short
    address = out[1].split()[3].split("/")[0]
    assert ipaddress.ip_address(address) in ipaddress.ip_network("10.209.0.0/24")
    assert f"{address}\t{short}" in out
    # the address is the container's own: the host namespace now has a bridge, and no 10.209.0.x of its own
    assert "pybr0" in netcli.host("ip", "-o", "link").stdout
    assert f"inet {address}/" not in netcli.host("ip", "-o", "addr").stdout


ACCEPT_ONE = ("import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
              "s.bind(('192.168.250.2', 9999)); s.listen(); print('listening', flush=True); "
              "c, peer = s.accept(); print(peer[0], flush=True)")


def test_outbound_traffic_is_masqueraded(netcli, netns):
    """A second namespace plays "the internet" behind a veth: it sees the host side's address, not the container's."""
    outside = f"{netns}-out"
    netcli.host("iptables", "-P", "FORWARD", "DROP")  # as on a host where docker runs
    subprocess.run(["ip", "netns", "add", outside], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "add", "up0", "type", "veth", "peer", "name", "up1",
                        "netns", outside], check=True)
        subprocess.run(["ip", "-n", netns, "addr", "add", "192.168.250.1/30", "dev", "up0"], check=True)
        subprocess.run(["ip", "-n", netns, "link", "set", "up0", "up"], check=True)
        subprocess.run(["ip", "-n", outside, "addr", "add", "192.168.250.2/30", "dev", "up1"], check=True)
        subprocess.run(["ip", "-n", outside, "link", "set", "up1", "up"], check=True)
        server = subprocess.Popen(["nsenter", f"--net=/run/netns/{outside}", sys.executable, "-c", ACCEPT_ONE],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout.readline().strip() == "listening"
            netcli("run", "--rm", "busybox", "sh", "-c", "echo hi | nc 192.168.250.2 9999")
            assert server.stdout.readline().strip() == "192.168.250.1"
        finally:
            server.kill()
            server.wait()
    finally:
        subprocess.run(["ip", "netns", "del", outside], check=False)


@pytest.mark.parametrize("flags,expected", [
    (["-p", "127.0.0.1:18080:80"], "80/tcp -> 127.0.0.1:18080"),
    (["-p", "18081:80"], "80/tcp -> 0.0.0.0:18081"),
])
def test_published_port_answers_on_localhost(netcli, flags, expected):
    netcli("run", "-d", "--name", "web", *flags, "busybox", "sh", "-c", HTTPD)
    assert netcli("port", "web").stdout.decode().strip() == expected
    port = expected.rsplit(":", 1)[1]
    host_side, container_side = expected.split(" -> ")[1], expected.split(" -> ")[0]
    assert f"{host_side}->{container_side}" in netcli("ps").stdout.decode()  # docker's PORTS column
    body = wait_for(lambda: fetch(netcli, f"http://127.0.0.1:{port}/"))
    assert body.startswith("hello-")


def test_publish_all_maps_each_exposed_port_to_a_free_host_port(netcli, root):
    image_variant(root, "busybox:latest", "web:exposed", ExposedPorts={"80/tcp": {}})
    netcli("run", "-d", "--name", "web", "-P", "web:exposed", "sh", "-c", HTTPD)
    host_side = netcli("port", "web", "80").stdout.decode().strip()
    ip, port = host_side.rsplit(":", 1)
    assert ip == "0.0.0.0" and int(port) > 1024
    assert wait_for(lambda: fetch(netcli, f"http://127.0.0.1:{port}/")).startswith("hello-")


def test_port_ranges_and_udp(netcli):
    netcli("run", "-d", "--name", "r", "-p", "127.0.0.1:18082-18083:82-83", "-p", "127.0.0.1:5353:53/udp",
           "busybox", "sleep", "300")
    assert netcli("port", "r").stdout.decode().splitlines() == [
        "82/tcp -> 127.0.0.1:18082", "83/tcp -> 127.0.0.1:18083", "53/udp -> 127.0.0.1:5353"]


@pytest.mark.parametrize("bad,message", [
    ("80:x", "invalid port"), ("80:81:82:83", "invalid IP address"), ("18080-18081:80", "differ in length"), ("80/sctp", "invalid protocol"),
    ("nothere:80:80", "invalid IP address"),
])
def test_bad_publish_specs_are_one_line_errors(netcli, bad, message):
    proc = netcli("run", "--rm", "-p", bad, "busybox", "true", check=False)
    assert proc.returncode == 125 and message in proc.stderr.decode()
    assert b"Traceback" not in proc.stderr


def test_none_and_host_are_unchanged(netcli):
    assert run_out(netcli, "--network", "none", "busybox", "sh", "-c", "ip -o link | cut -d: -f2").split() == ["lo"]
    netcli("run", "--rm", "busybox", "true")  # the namespace now has pybr0: host mode must see it
    links = run_out(netcli, "--network", "host", "busybox", "sh", "-c", "ip -o link | cut -d: -f2").split()
    assert links == ["lo", "pybr0"]
    assert run_out(netcli, "--network", "host", "busybox", "hostname").strip() == os.uname().nodename


def test_dns_add_host_and_hostname_flags(netcli):
    out = run_out(netcli, "--hostname", "box", "--add-host", "db.test:10.1.2.3", "--dns", "10.0.0.53",
                  "--dns-search", "example.test", "--dns-option", "ndots:2", "busybox", "sh", "-c",
                  "hostname; cat /etc/resolv.conf; grep -E 'db.test|box' /etc/hosts")
    lines = out.splitlines()
    assert lines[0] == "box"
    assert lines[1:4] == ["nameserver 10.0.0.53", "search example.test", "options ndots:2"]
    assert lines[4] == "10.1.2.3\tdb.test" and lines[5].endswith("\tbox")


def test_user_networks_resolve_names_and_aliases_both_ways_and_stay_apart(netcli):
    netcli("network", "create", "front")
    netcli("network", "create", "back")
    netcli("run", "-d", "--name", "a", "--network", "front", "--network-alias", "alpha", "busybox", "sleep", "300")
    netcli("run", "-d", "--name", "b", "--network", "front", "busybox", "sleep", "300")
    netcli("run", "-d", "--name", "c", "--network", "back", "busybox", "sleep", "300")
    # a started before b existed, b after a: both directions, by name and alias
    assert netcli("exec", "a", "ping", "-c1", "-W2", "b").returncode == 0
    assert netcli("exec", "b", "ping", "-c1", "-W2", "alpha").returncode == 0
    assert netcli("exec", "b", "ping", "-c1", "-W2", "a").returncode == 0
    info = json.loads(netcli("network", "inspect", "front").stdout)[0]
    addr_a = next(v["IPv4Address"] for v in info["Containers"].values() if v["Name"] == "a").split("/")[0]
    # the third container, on another network, neither resolves nor reaches them
    assert netcli("exec", "c", "ping", "-c1", "-W1", "a", check=False).returncode != 0
    assert netcli("exec", "c", "ping", "-c1", "-W1", addr_a, check=False).returncode != 0
    # ...until it is connected to their network (the same address now answers: isolation, not routing)
    netcli("network", "connect", "front", "c")
    assert netcli("exec", "c", "ping", "-c1", "-W2", "alpha").returncode == 0
    assert netcli("exec", "a", "ping", "-c1", "-W2", "c").returncode == 0
    netcli("network", "disconnect", "front", "c")
    assert netcli("exec", "a", "ping", "-c1", "-W1", "c", check=False).returncode != 0
    # a stopped container drops out of the others' /etc/hosts
    netcli("stop", "b")
    assert "\tb " not in netcli("exec", "a", "cat", "/etc/hosts").stdout.decode()


def test_ip_and_container_network_mode(netcli):
    netcli("network", "create", "--subnet", "10.211.0.0/24", "fixed")
    netcli("run", "-d", "--name", "a", "--network", "fixed", "--ip", "10.211.0.50", "busybox", "sleep", "300")
    out = run_out(netcli, "--network", "container:a", "busybox", "sh", "-c", "hostname; ip -o -4 addr show eth0")
    hostname, addr = out.splitlines()
    assert hostname == netcli("exec", "a", "hostname").stdout.decode().strip()
    assert "10.211.0.50/24" in addr


def test_network_commands(netcli, root):
    netcli("network", "create", "--label", "team=web", "n1")
    assert "n1" in netcli("network", "ls").stdout.decode()
    dup = netcli("network", "create", "n1", check=False)
    assert dup.returncode != 0 and "already exists" in dup.stderr.decode()
    netcli("run", "-d", "--name", "x", "--network", "n1", "busybox", "sleep", "300")
    info = json.loads(netcli("network", "inspect", "n1").stdout)[0]
    assert info["Labels"] == {"team": "web"} and [v["Name"] for v in info["Containers"].values()] == ["x"]
    busy = netcli("network", "rm", "n1", check=False)
    assert busy.returncode != 0 and "active endpoints" in busy.stderr.decode()
    assert "pre-defined" in netcli("network", "rm", "bridge", check=False).stderr.decode()
    missing = netcli("run", "--rm", "--network", "nosuch", "busybox", "true", check=False)
    assert missing.returncode == 125 and "network nosuch not found" in missing.stderr.decode()
    netcli("rm", "-f", "x")
    netcli("network", "rm", "n1")
    assert "pybr1" not in netcli.host("ip", "-o", "link").stdout
    assert not (root / "networks" / "ipam" / "n1").exists()
    assert "n1" not in netcli("network", "ls").stdout.decode()


def leftovers(cli, root, cid: str, address: str) -> dict[str, list[str]]:
    """What a container's network leaves behind if nobody tears it down."""
    ipam = root / "networks" / "ipam" / "bridge"
    rules = cli.host("iptables-save").stdout.splitlines()
    return {
        "veth": cli.host("ip", "-o", "link", "show", "type", "veth").stdout.splitlines(),
        "ipam": [n for n in os.listdir(ipam) if n not in ("lock",) and not n.startswith("last_reserved")],
        "iptables": [r for r in rules if cid in r or f"{address}/32" in r or f"{address}:" in r],
        "netns": [n for n in os.listdir(root / "netns")] if (root / "netns").exists() else [],
    }


@pytest.mark.parametrize("detached", [False, True], ids=["foreground", "detached"])
def test_kill9_of_the_owner_then_any_command_leaves_nothing(netcli, root, tmp_path, detached):
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    args = ["run", "--name", "k", "-p", "127.0.0.1:18090:80", "-v", f"{tmp_path}:/t", "busybox", "sh", "-c",
            "ip -o -4 addr show eth0 | awk '{print $4}' > /t/ready; exec sleep 1000"]
    if detached:
        netcli("run", "-d", *args[1:])
    else:
        owner = subprocess.Popen(netcli.prefix + [PYBUILD, *args], env=netcli.env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = fifo.read_text().strip().split("/")[0]  # blocks until the container runs
    cid = container_id(root, "k")
    if detached:
        owner_pid = json.loads((root / "containers" / cid / "state.json").read_text())["owner_pid"]
        os.kill(owner_pid, signal.SIGKILL)
    else:
        owner.kill()
        owner.wait()
    before = leftovers(netcli, root, cid, address)
    assert all(before.values()), before  # the test sees each kind of leftover...
    netcli("images")  # ...and any command removes them
    after = leftovers(netcli, root, cid, address)
    assert after == {"veth": [], "ipam": [], "iptables": [], "netns": []}
    state = json.loads((root / "containers" / cid / "state.json").read_text())
    assert state["status"] == "exited"



def test_a_normal_exit_leaves_nothing(netcli, root):
    out = netcli("run", "--rm", "-p", "127.0.0.1:18091:80", "busybox", "sh", "-c",
                 "ip -o -4 addr show eth0 | awk '{print $4}'").stdout.decode()
    address = out.strip().split("/")[0]
    netcli("run", "--name", "kept", "busybox", "true")
    cid = container_id(root, "kept")
    # the DELs run after the exit code is back; inspect waits for teardowns in flight
    assert json.loads(netcli("network", "inspect", "bridge").stdout)[0]["Containers"] == {}
    assert leftovers(netcli, root, cid, address) == {"veth": [], "ipam": [], "iptables": [], "netns": []}


def test_sysctl_sets_the_containers_own_network_namespace(netcli):
    key = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
    before = netcli.host("cat", key).stdout
    out = run_out(netcli, "--sysctl", "net.ipv4.ip_unprivileged_port_start=80", "busybox", "cat", key)
    assert out.strip() == "80" and netcli.host("cat", key).stdout == before
    for bad, message in (("kernel.shmmax=1", "only the network namespace's net.* sysctls"),
                         ("net.no.such=1", "no such file"), ("net.ipv4.ip_forward", "use KEY=VALUE")):
        proc = netcli("run", "--rm", "--sysctl", bad, "busybox", "true", check=False)
        assert proc.returncode == 125 and message in proc.stderr.decode(), proc.stderr
    proc = netcli("run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "busybox", "true", check=False)
    assert proc.returncode == 125 and "not --network host" in proc.stderr.decode()


LISTEN_LOCAL = ("import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                "s.bind(('127.0.0.1', 7777)); s.listen(); print('listening', flush=True); "
                "c, peer = s.accept(); c.sendall(b'SECRET'); print(peer[0], flush=True)")
# the container routes 127.0.0.1 through its gateway (as raw packets with NET_RAW could)
REROUTE = ("ip rule add to 127.0.0.1 lookup main pref 10 && ip route add 127.0.0.1/32 via 10.209.0.1 dev eth0 && "
           "ip rule del pref 0 && ip rule add pref 100 lookup local && ip route get 127.0.0.1 | grep -q eth0 && "
           "echo rerouted; echo | nc -w 2 127.0.0.1 7777; echo")


def loopback_attack(cli) -> str:
    """Output of a container that tries the host's 127.0.0.1:7777, where a secret is served."""
    server = subprocess.Popen(cli.prefix + [sys.executable, "-c", LISTEN_LOCAL], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "listening"
        out = run_out(cli, "-p", "127.0.0.1:18096:80", "--cap-add", "NET_ADMIN", "--sysctl",
                      "net.ipv4.conf.all.route_localnet=1", "busybox", "sh", "-c", REROUTE)
    finally:
        server.kill()
        server.wait()
    assert out.startswith("rerouted")
    return out


def test_attack_container_cannot_reach_the_hosts_loopback_services(netcli):
    """portmap's route_localnet (set for -p 127.0.0.1:...) must not open the host's 127.0.0.1 to containers."""
    assert "SECRET" not in loopback_attack(netcli)
    # the defence is one drop before routing; without it the same attack gets through
    rule = ["PYBUILD-LOCALNET", "-i", "pybr+", "-d", "127.0.0.0/8", "-j", "DROP"]
    netcli.host("iptables", "-t", "mangle", "-D", *rule)
    try:
        assert "SECRET" in loopback_attack(netcli)
    finally:
        netcli.host("iptables", "-t", "mangle", "-A", *rule)
    # published ports on 127.0.0.1 still answer with the rule in place
    netcli("run", "-d", "--name", "web", "-p", "127.0.0.1:18097:80", "busybox", "sh", "-c", HTTPD)
    assert wait_for(lambda: fetch(netcli, "http://127.0.0.1:18097/")).startswith("hello-")


def test_concurrent_starts_on_one_network_all_resolve_each_other(netcli):
    netcli("network", "create", "crowd")
    names = [f"n{i}" for i in range(4)]
    starts = [subprocess.Popen(netcli.prefix + [PYBUILD, "run", "-d", "--name", name, "--network", "crowd",
                                                "busybox", "sleep", "300"], env=netcli.env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE) for name in names]
    for proc in starts:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    addresses = set()
    for name in names:
        hosts = netcli("exec", name, "cat", "/etc/hosts").stdout.decode()
        peers = {line.split()[1] for line in hosts.splitlines() if line.startswith("10.209.")}
        assert peers >= set(names) - {name}, (name, hosts)
        addresses.add(netcli("exec", name, "sh", "-c", "ip -o -4 addr show eth0 | awk '{print $4}'").stdout)
    assert len(addresses) == 4  # host-local gave each its own address


def test_a_killed_owner_leaves_the_peers_hosts_files(netcli, root, tmp_path):
    netcli("network", "create", "pair")
    netcli("run", "-d", "--name", "peer", "--network", "pair", "busybox", "sleep", "300")
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    owner = subprocess.Popen(netcli.prefix + [PYBUILD, "run", "--name", "gone", "--network", "pair", "-v",
                                              f"{tmp_path}:/t", "busybox", "sh", "-c", "echo up > /t/ready; exec sleep 1000"],
                             env=netcli.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert fifo.read_text() == "up\n"
    assert "\tgone " in netcli("exec", "peer", "cat", "/etc/hosts").stdout.decode()
    owner.kill()
    owner.wait()
    netcli("images")
    assert "\tgone " not in netcli("exec", "peer", "cat", "/etc/hosts").stdout.decode()


def test_inspect_shows_a_containers_network_ports_labels_and_mounts(netcli, tmp_path):
    netcli("network", "create", "insp")
    netcli("run", "-d", "--name", "seen", "--network", "insp", "--network-alias", "see", "-l", "team=web",
           "-p", "127.0.0.1:18098:80", "-v", f"{tmp_path}:/h:ro", "--restart", "on-failure:3", "busybox", "sleep", "300")
    info = json.loads(netcli("inspect", "seen").stdout)[0]
    net = info["NetworkSettings"]["Networks"]["insp"]
    assert net["Aliases"] == ["see"] and net["IPAddress"].startswith("10.209.") and net["Gateway"].endswith(".1")
    assert info["NetworkSettings"]["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18098"}]}
    assert info["Config"]["Labels"] == {"team": "web"} and info["Name"] == "/seen"
    assert info["State"]["Running"] and info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                                                 "MaximumRetryCount": 3}
    assert info["Mounts"] == [{"Type": "bind", "Source": str(tmp_path), "Destination": "/h", "RW": False}]
    missing = netcli("inspect", "nothing-called-this", check=False)
    assert missing.returncode != 0 and b"Traceback" not in missing.stderr
