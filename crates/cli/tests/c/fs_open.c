/* creat / open(O_TRUNC) / openat(O_CREAT|O_EXCL) / openat2(O_CREAT) are writes;
 * opening existing.txt read-only, write-only and O_CREAT (existing) is not. */
#include "tomo_test.h"
#include <linux/openat2.h>

int main(int argc, char **argv) {
    init(argc, argv);
    long fd = syscall(SYS_creat, P("creat.txt"), 0644);
    CHECK(fd >= 0);
    xclose(fd);

    fd = syscall(SYS_open, P("trunc.txt"), O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    xclose(fd);

    int dfd = xopen(D, O_RDONLY | O_DIRECTORY, 0);
    fd = syscall(SYS_openat, dfd, "openat.txt", O_WRONLY | O_CREAT | O_EXCL, 0644);
    CHECK(fd >= 0);
    xclose(fd);

    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_WRONLY | O_CREAT;
    how.mode = 0644;
    fd = syscall(SYS_openat2, AT_FDCWD, P("openat2.txt"), &how, sizeof how);
    CHECK(fd >= 0);
    xclose(fd);

    fd = syscall(SYS_open, P("existing.txt"), O_RDONLY);
    CHECK(fd >= 0);
    xclose(fd);
    fd = syscall(SYS_open, P("existing.txt"), O_WRONLY);
    CHECK(fd >= 0);
    xclose(fd);
    fd = syscall(SYS_openat, AT_FDCWD, P("existing.txt"), O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0);
    xclose(fd);
    xclose(dfd);
    return 0;
}
