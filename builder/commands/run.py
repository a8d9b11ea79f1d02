"""``pybuild run``: run a command in a new container (docker's options)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """Docker's ``run`` flags; everything after IMAGE is the command."""
    add = parser.add_argument
    add("--rm", action="store_true", help="remove the container when it exits")
    add("-d", "--detach", action="store_true", help="run in the background and print the container ID")
    add("-i", "--interactive", action="store_true", help="keep stdin open")
    add("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    add("--name", help="assign a name to the container")
    add("-e", "--env", action="append", default=[], metavar="K[=V]", help="set an environment variable")
    add("--env-file", action="append", default=[], metavar="FILE", help="read environment variables from a file")
    add("-v", "--volume", action="append", default=[], metavar="HOST|NAME:CTR[:ro]",
        help="bind-mount a host path or a named volume")
    add("--mount", action="append", default=[], metavar="type=..,target=..", help="bind, volume or tmpfs mount")
    add("--volumes-from", action="append", default=[], metavar="CONTAINER[:ro|rw]",
        help="mount another container's volumes")
    add("--tmpfs", action="append", default=[], metavar="PATH[:OPTS]", help="mount a tmpfs")
    add("-w", "--workdir", help="working directory inside the container")
    add("-u", "--user", help="USER[:GROUP] (name or id) to run as")
    add("--entrypoint", help="override the image's entrypoint ('' to clear it)")
    add("--hostname", help="container host name")
    add("--network", "--net", help="bridge (default; $PYBUILD_NETWORK changes it), host, none, NAME or container:ID")
    add("-p", "--publish", action="append", default=[], metavar="[IP:][HOST:]CTR[/PROTO]", help="publish a port")
    add("-P", "--publish-all", action="store_true", help="publish every exposed port to a free host port")
    add("--network-alias", action="append", default=[], metavar="NAME", help="another name on the network")
    add("--ip", help="IPv4 address on a user-defined network")
    add("--add-host", action="append", default=[], metavar="NAME:IP", help="add a line to /etc/hosts")
    add("--dns", action="append", default=[], metavar="IP", help="nameserver for /etc/resolv.conf")
    add("--dns-search", action="append", default=[], metavar="DOMAIN", help="search domain")
    add("--dns-option", action="append", default=[], metavar="OPT", help="resolv.conf option")
    add("-m", "--memory", help="memory limit (e.g. 64m)")
    add("--memory-swap", help="memory + swap limit (-1: unlimited swap)")
    add("--cpus", type=float, help="number of CPUs (e.g. 0.5)")
    add("--pids-limit", type=int, help="maximum number of processes")
    add("--read-only", action="store_true", help="mount the root filesystem read-only")
    add("--cap-add", action="append", default=[], metavar="CAP", help="add a Linux capability")
    add("--cap-drop", action="append", default=[], metavar="CAP", help="drop a Linux capability")
    add("--init", action="store_true", help="run an init that forwards signals and reaps zombies")
    add("--security-opt", action="append", default=[], metavar="OPT",
        help="seccomp=unconfined (no syscall filter), no-new-privileges[=true|false]")
    add("--stop-signal", help="signal to stop the container (default: the image's, else SIGTERM)")
    add("--policy", metavar="FILE", help="verification policy for an image that must be pulled "
                                          "(containers' policy.json; default: $PYBUILD_POLICY, then the system's)")
    add("--platform", metavar="OS/ARCH[/VARIANT]",
        help="platform to run (picks it from a multi-platform image; foreign ones run under qemu emulation)")
    add("-l", "--label", action="append", default=[], metavar="K=V", help="set a label on the container")
    add("--label-file", action="append", default=[], metavar="FILE", help="read labels from a file")
    add("--stop-timeout", type=float, help="seconds 'stop' waits before killing (default 10)")
    add("--pull", default="missing", help="pull the image: always, missing (default) or never")
    add("--sysctl", action="append", default=[], metavar="net.K=V", help="set a network namespace sysctl")
    add("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]", help="resource limit (e.g. nofile=1024)")
    add("--privileged", action="store_true", help="all capabilities and devices, no seccomp, writable /sys")
    add("--device", action="append", default=[], metavar="HOST[:CTR]", help="add a host device to /dev")
    add("--group-add", action="append", default=[], metavar="GROUP", help="another supplementary group")
    add("--restart", default="no", help="no, on-failure[:N], always or unless-stopped (needs -d)")
    add("image", help="image name or ID")
    add("command", nargs=argparse.REMAINDER, help="command and arguments")


def run(args: argparse.Namespace) -> int:
    """Create the container, then run it attached (exit code passes through) or detached."""
    import os

    from runner import lifecycle
    from runner.create import RunOptions, create_container

    if args.policy:  # read by the pull that runs when the image is not in the store
        os.environ["PYBUILD_POLICY"] = os.path.abspath(args.policy)

    opts = RunOptions(
        image=args.image, args=args.command, name=args.name, rm=args.rm, detach=args.detach,
        interactive=args.interactive, tty=args.tty, env=args.env, env_files=args.env_file,
        volumes=args.volume, tmpfs=args.tmpfs, workdir=args.workdir, user=args.user,
        entrypoint=args.entrypoint, hostname=args.hostname, network=args.network, memory=args.memory,
        memory_swap=args.memory_swap, cpus=args.cpus, pids_limit=args.pids_limit, read_only=args.read_only,
        cap_add=args.cap_add, cap_drop=args.cap_drop, init=args.init, stop_signal=args.stop_signal,
        security_opt=args.security_opt,
        platform=args.platform,
        publish=args.publish, publish_all=args.publish_all, network_aliases=args.network_alias, ip=args.ip,
        add_hosts=args.add_host, dns=args.dns, dns_search=args.dns_search, dns_options=args.dns_option,
        mounts=args.mount, volumes_from=args.volumes_from, labels=args.label, label_files=args.label_file,
        stop_timeout=args.stop_timeout, pull=args.pull, sysctls=args.sysctl, restart=args.restart,
        ulimits=args.ulimit, group_add=args.group_add, devices=args.device, privileged=args.privileged,
    )
    container = create_container(args.root, opts)
    if args.detach:
        lifecycle.run_detached(container, args.interactive)
        print(container.id)
        return 0
    return lifecycle.run_foreground(container, args.interactive)
