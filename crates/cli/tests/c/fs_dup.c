/* Writes through dup / dup2 / dup3 / fcntl(F_DUPFD) / fcntl(F_DUPFD_CLOEXEC)
 * copies of one descriptor of out.txt (empty, made by the test), the last
 * after closing the original: 1@0 (fd), 2@1 (dup), 3@3 (dup2), 4@6 (dup3),
 * 5@10 (F_DUPFD), 6@15 (F_DUPFD_CLOEXEC), 7@21 (dup, original closed).
 * Finally dup2 replaces a descriptor of other.txt (opened O_WRONLY, never
 * written) and 8 bytes are written through it: they land on out.txt @28. */
#include "tomo_test.h"

int main(int argc, char **argv) {
    init(argc, argv);
    const char *s = "abcdefgh";
    int fd = xopen(P("out.txt"), O_WRONLY, 0);
    int other = xopen(P("other.txt"), O_WRONLY, 0);
    xwrite(fd, s, 1);
    long d1 = syscall(SYS_dup, fd);
    CHECK(d1 >= 0);
    xwrite(d1, s, 2);
    CHECK(syscall(SYS_dup2, fd, 50) == 50);
    xwrite(50, s, 3);
    CHECK(syscall(SYS_dup3, fd, 60, O_CLOEXEC) == 60);
    xwrite(60, s, 4);
    long d4 = syscall(SYS_fcntl, fd, F_DUPFD, 70);
    CHECK(d4 >= 70);
    xwrite(d4, s, 5);
    long d5 = syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 80);
    CHECK(d5 >= 80);
    xwrite(d5, s, 6);
    xclose(fd);
    xwrite(d1, s, 7);
    CHECK(syscall(SYS_dup2, d1, other) == other);
    xwrite(other, s, 8);
    return 0;
}
