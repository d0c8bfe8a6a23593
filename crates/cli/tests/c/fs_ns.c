/* Namespace operations:
 * mkdir d1, mkdirat (dirfd) d2, mknod f1 (S_IFREG), mknodat (dirfd) f2 (S_IFIFO),
 * unlink f1, unlinkat f2, unlinkat(AT_REMOVEDIR) d2, rmdir d1, mkdir d1 again
 * (a new directory entity with the same name). */
#include "tomo_test.h"

int main(int argc, char **argv) {
    init(argc, argv);
    int dfd = xopen(D, O_RDONLY | O_DIRECTORY, 0);
    CHECK(syscall(SYS_mkdir, P("d1"), 0755) == 0);
    CHECK(syscall(SYS_mkdirat, dfd, "d2", 0700) == 0);
    CHECK(syscall(SYS_mknod, P("f1"), S_IFREG | 0644, 0) == 0);
    CHECK(syscall(SYS_mknodat, dfd, "f2", S_IFIFO | 0600, 0) == 0);
    CHECK(syscall(SYS_unlink, P("f1")) == 0);
    CHECK(syscall(SYS_unlinkat, dfd, "f2", 0) == 0);
    CHECK(syscall(SYS_unlinkat, dfd, "d2", AT_REMOVEDIR) == 0);
    CHECK(syscall(SYS_rmdir, P("d1")) == 0);
    CHECK(syscall(SYS_mkdir, P("d1"), 0750) == 0);
    return 0;
}
