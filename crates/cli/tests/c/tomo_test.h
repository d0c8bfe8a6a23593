/* Helpers shared by the syscall coverage programs.
 *
 * Every program takes the test's working directory as argv[1], names its
 * files with P("name") (absolute paths), issues the system call under test
 * with a raw syscall() so that glibc cannot substitute another call, prints
 * nothing on success and exits 99 with a message on stderr on failure. */
#ifndef TOMO_TEST_H
#define TOMO_TEST_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define UNUSED __attribute__((unused))

static const char *D;

#define CHECK(x)                                                                  \
    do {                                                                          \
        if (!(x)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: %s\n", __FILE__, __LINE__, #x, \
                    strerror(errno));                                             \
            exit(99);                                                             \
        }                                                                         \
    } while (0)

/* Absolute path of NAME in the working directory (8 rotating buffers). */
static UNUSED char *P(const char *name) {
    static char bufs[8][4096];
    static int i;
    char *b = bufs[i++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", D, name);
    return b;
}

static UNUSED void init(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s WORKDIR ...\n", argv[0]);
        exit(99);
    }
    D = argv[1];
}

static UNUSED int xopen(const char *path, int flags, int mode) {
    long fd = syscall(SYS_openat, AT_FDCWD, path, flags, mode);
    CHECK(fd >= 0);
    return (int)fd;
}

static UNUSED void xwrite(int fd, const void *buf, size_t n) {
    CHECK(syscall(SYS_write, fd, buf, n) == (long)n);
}

static UNUSED void xclose(int fd) { CHECK(syscall(SYS_close, fd) == 0); }

/* Create (or truncate) PATH and write S into it. */
static UNUSED void write_file(const char *path, const char *s) {
    int fd = xopen(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    xwrite(fd, s, strlen(s));
    xclose(fd);
}

static UNUSED void wait_exit(pid_t pid, int code) {
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != code) {
        fprintf(stderr, "child %d: status 0x%x, wanted exit %d\n", pid, st, code);
        exit(99);
    }
}

static UNUSED void xread_exact(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        long r = syscall(SYS_read, fd, (char *)buf + got, n - got);
        CHECK(r > 0);
        got += (size_t)r;
    }
}
#endif
