/* With CAP_SYS_ADMIN, try to make pid 1's binary writable again through its
 * /proc/1/exe link (remount, mount_setattr) and open it for writing; prints one
 * line per attempt: its name and OK or the errno name. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

struct mount_attr_arg { uint64_t attr_set, attr_clr, propagation, userns_fd; };

static void show(const char *name, long ret) {
    printf("%s %s\n", name, ret >= 0 ? "OK" : strerrorname_np(errno));
}

int main(void) {
    struct mount_attr_arg attr = {0, 1 /* MOUNT_ATTR_RDONLY cleared */, 0, 0};
    show("remount", mount(NULL, "/proc/1/exe", NULL, MS_REMOUNT | MS_BIND, NULL));
    int fd = open("/proc/1/exe", O_PATH);
    show("mount_setattr", syscall(442 /* mount_setattr */, fd, "", 0x1000 /* AT_EMPTY_PATH */, &attr, sizeof attr));
    show("open_write", open("/proc/1/exe", O_WRONLY | O_TRUNC));
    return 0;
}
