/* write family on out.txt (empty, made by the test, opened O_WRONLY):
 * write 5@0, pwrite64 10@4096, writev 3+4@5, pwritev 8@8192, pwritev2 16@100,
 * write 1@12. */
#include "tomo_test.h"
#include <sys/uio.h>

int main(int argc, char **argv) {
    init(argc, argv);
    char a[64], b[64];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    int fd = xopen(P("out.txt"), O_WRONLY, 0);
    CHECK(syscall(SYS_write, fd, a, 5) == 5);
    CHECK(syscall(SYS_pwrite64, fd, b, 10, 4096) == 10);
    struct iovec iov[2] = {{a, 3}, {b, 4}};
    CHECK(syscall(SYS_writev, fd, iov, 2) == 7);
    struct iovec one = {a, 8};
    CHECK(syscall(SYS_pwritev, fd, &one, 1, 8192, 0) == 8);
    one.iov_len = 16;
    CHECK(syscall(SYS_pwritev2, fd, &one, 1, 100, 0, 0) == 16);
    CHECK(syscall(SYS_write, fd, b, 1) == 1);
    xclose(fd);
    return 0;
}
