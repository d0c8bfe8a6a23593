/* read family on in.txt (8192 bytes, made by the test):
 * read 5@0, read 10@100, pread64 20@1000, readv 3+4@110, preadv 8@2000,
 * preadv2 16@3000, read 0@8192 (EOF). */
#include "tomo_test.h"
#include <sys/uio.h>

int main(int argc, char **argv) {
    init(argc, argv);
    char a[64], b[64];
    int fd = xopen(P("in.txt"), O_RDONLY, 0);
    CHECK(syscall(SYS_read, fd, a, 5) == 5);
    CHECK(syscall(SYS_lseek, fd, 100, SEEK_SET) == 100);
    CHECK(syscall(SYS_read, fd, a, 10) == 10);
    CHECK(syscall(SYS_pread64, fd, a, 20, 1000) == 20);
    struct iovec iov[2] = {{a, 3}, {b, 4}};
    CHECK(syscall(SYS_readv, fd, iov, 2) == 7);
    struct iovec one = {a, 8};
    CHECK(syscall(SYS_preadv, fd, &one, 1, 2000, 0) == 8);
    one.iov_len = 16;
    CHECK(syscall(SYS_preadv2, fd, &one, 1, 3000, 0, 0) == 16);
    CHECK(syscall(SYS_lseek, fd, 0, SEEK_END) == 8192);
    CHECK(syscall(SYS_read, fd, a, 10) == 0);
    xclose(fd);
    return 0;
}
