/* Tries system calls a container's seccomp profile decides about; prints one
 * line per call: its name and OK or the errno name.  Every call is harmless
 * when allowed (bad arguments, or nothing a container without privileges can
 * change).  Built static at test time, run under docker and under pybuild. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static void show(const char *name, long ret) {
    if (ret >= 0)
        printf("%s OK\n", name);
    else
        printf("%s %s\n", name, strerrorname_np(errno));
}

/* a call that may create a process: the child leaves at once */
static void show_fork(const char *name, long ret) {
    if (ret == 0)
        _exit(0);
    if (ret > 0)
        waitpid((pid_t)ret, NULL, __WALL);
    show(name, ret < 0 ? -1 : 0);
}

int main(void) {
    char buf[64] = {0};
    struct timespec now;
    setvbuf(stdout, NULL, _IOLBF, 0);
    show("keyctl", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0));
    show("add_key", syscall(SYS_add_key, "user", "pybuild-probe", "x", 1, -2 /* process keyring */));
    show("request_key", syscall(SYS_request_key, "user", "pybuild-probe", NULL, 0));
    show("bpf", syscall(SYS_bpf, 5 /* PROG_LOAD */, NULL, 0));
    show("perf_event_open", syscall(SYS_perf_event_open, buf, 0, -1, -1, 0));
    show("userfaultfd", syscall(SYS_userfaultfd, 1 /* UFFD_USER_MODE_ONLY */));
    show("unshare_user", syscall(SYS_unshare, CLONE_NEWUSER));
    show("unshare_net", syscall(SYS_unshare, CLONE_NEWNET));
    show_fork("clone_newuser", syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    show_fork("clone_plain", syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
    show("clone3", syscall(SYS_clone3, NULL, 0));
    show("mount", syscall(SYS_mount, "none", "/mnt", "tmpfs", 0, NULL));
    show("umount2", syscall(SYS_umount2, "/nonexistent", 0));
    show("swapon", syscall(SYS_swapon, "/nonexistent", 0));
    show("swapoff", syscall(SYS_swapoff, "/nonexistent"));
    show("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    show("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, "", 0));
    show("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, buf, 0));
    show("init_module", syscall(SYS_init_module, NULL, 0, ""));
    show("delete_module", syscall(SYS_delete_module, "pybuild_probe", 0));
    show("ptrace_attach", syscall(SYS_ptrace, 16 /* ATTACH */, 999999, 0, 0));
    show("personality_query", syscall(SYS_personality, 0xffffffffUL));
    show("personality_linux32", syscall(SYS_personality, 0x0008UL));
    show("personality_norandom", syscall(SYS_personality, 0x0040000UL));
    show("personality_read_implies_exec", syscall(SYS_personality, 0x0400000UL));
    show("personality_linux", syscall(SYS_personality, 0UL));
    clock_gettime(CLOCK_REALTIME, &now);
    show("clock_settime", syscall(SYS_clock_settime, CLOCK_REALTIME, &now));
    show("settimeofday", syscall(SYS_settimeofday, NULL, NULL));
    show("acct", syscall(SYS_acct, NULL));
    show("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
    show("iopl", syscall(SYS_iopl, 3));
    show("ioperm", syscall(SYS_ioperm, 0x80, 1, 1));
    show("socket_vsock", syscall(SYS_socket, AF_VSOCK, SOCK_STREAM, 0));
    show("socket_unix", syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0));
    show("setns", syscall(SYS_setns, -1, 0));
    show("chroot", syscall(SYS_chroot, "/"));
    show("syslog", syscall(SYS_syslog, 10 /* SIZE_BUFFER */, NULL, 0));
    show("quotactl", syscall(SYS_quotactl, 0, NULL, 0, NULL));
    show("sethostname", syscall(SYS_sethostname, "probe", 5));
    show("vhangup", syscall(SYS_vhangup));
    show("fanotify_init", syscall(SYS_fanotify_init, 0x200 /* REPORT_FID */, O_RDONLY));
    show("kcmp", syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, 0, 0));
    show("get_mempolicy", syscall(SYS_get_mempolicy, NULL, NULL, 0, NULL, 0));
    show("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
    show("open_tree", syscall(SYS_open_tree, AT_FDCWD, "/", 0));
    show("pidfd_getfd", syscall(SYS_pidfd_getfd, -1, 0, 0));
    show("uselib", syscall(SYS_uselib, "/nonexistent"));
    show("tuxcall", syscall(SYS_tuxcall));
    show("fchmodat2", syscall(452, AT_FDCWD, "/tmp", 01777, 0)); /* newer than the profile */
    show("syscall_1000", syscall(1000));
    show("mknodat_fifo", syscall(SYS_mknodat, AT_FDCWD, "/tmp/probe-fifo", 0010600, 0));
    return 0;
}
