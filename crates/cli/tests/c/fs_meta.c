/* truncate t1.txt to 10, ftruncate t2.txt (O_WRONLY, no O_TRUNC) to 20;
 * chmod m.txt 0600, fchmod 0640, fchmodat (dirfd) 0604;
 * chown m.txt, fchown, fchownat (dirfd), lchown of symlink ln (-> m.txt),
 * all to the caller's own uid/gid. All files exist; ln is made by the test. */
#include "tomo_test.h"

int main(int argc, char **argv) {
    init(argc, argv);
    uid_t u = getuid();
    gid_t g = getgid();
    CHECK(syscall(SYS_truncate, P("t1.txt"), 10) == 0);
    int fd = xopen(P("t2.txt"), O_WRONLY, 0);
    CHECK(syscall(SYS_ftruncate, fd, 20) == 0);
    xclose(fd);

    int dfd = xopen(D, O_RDONLY | O_DIRECTORY, 0);
    CHECK(syscall(SYS_chmod, P("m.txt"), 0600) == 0);
    fd = xopen(P("m.txt"), O_RDONLY, 0);
    CHECK(syscall(SYS_fchmod, fd, 0640) == 0);
    CHECK(syscall(SYS_fchmodat, dfd, "m.txt", 0604) == 0);
    CHECK(syscall(SYS_chown, P("m.txt"), u, g) == 0);
    CHECK(syscall(SYS_fchown, fd, u, g) == 0);
    CHECK(syscall(SYS_fchownat, dfd, "m.txt", u, g, 0) == 0);
    CHECK(syscall(SYS_lchown, P("ln"), u, g) == 0);
    xclose(fd);
    return 0;
}
