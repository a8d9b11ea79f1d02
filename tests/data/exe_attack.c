/* The CVE-2019-5736 attacker's second half.  Started as `exe_attack FD CTL_DIR`
 * by a script that holds FD, an O_PATH handle on /proc/self/exe of the process
 * that ran it.  Says where the handle points, waits for the test's go-ahead (a
 * FIFO), then tries to open the file for writing through the handle, as the
 * exploit does.  With O_TRUNC the open fails before it can truncate anything
 * while the file is executing anywhere (ETXTBSY) or on a read-only mount
 * (EROFS).  Each outcome goes to CTL_DIR/report, a FIFO the test reads. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char path[64], go[16], link[4096] = {0}, where[4200];
    struct stat st;
    if (argc != 3)
        return 2;
    snprintf(path, sizeof path, "/proc/self/fd/%s", argv[1]);
    snprintf(where, sizeof where, "%s/report", argv[2]);
    FILE *report = fopen(where, "w");     /* blocks until the test reads */
    if (!report)
        return 3;
    setvbuf(report, NULL, _IOLBF, 0);
    readlink(path, link, sizeof link - 1);
    fstat(atoi(argv[1]), &st);
    fprintf(report, "holding %s size=%lld\n", link, (long long)st.st_size);
    snprintf(where, sizeof where, "%s/go", argv[2]);
    int ctl = open(where, O_RDONLY);      /* blocks until the test says go */
    if (ctl < 0 || read(ctl, go, sizeof go) < 0)
        return 4;
    int fd = open(path, O_WRONLY | O_TRUNC);
    if (fd < 0) {
        fprintf(report, "open %s\n", strerrorname_np(errno));
        return 0;
    }
    fprintf(report, "open OK\n");
    return 0;
}
