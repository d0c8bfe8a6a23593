/* Hard links a.txt -> b.txt (link) and c.txt (linkat, dirfd); symlinks
 * s1 -> a.txt (symlink) and s2 -> a.txt (symlinkat, dirfd). Then 2 bytes
 * are written through b.txt and 3 through s2: both land on a.txt's inode. */
#include "tomo_test.h"

int main(int argc, char **argv) {
    init(argc, argv);
    CHECK(syscall(SYS_link, P("a.txt"), P("b.txt")) == 0);
    int dfd = xopen(D, O_RDONLY | O_DIRECTORY, 0);
    CHECK(syscall(SYS_linkat, dfd, "a.txt", dfd, "c.txt", 0) == 0);
    CHECK(syscall(SYS_symlink, "a.txt", P("s1")) == 0);
    CHECK(syscall(SYS_symlinkat, "a.txt", dfd, "s2") == 0);
    int fd = xopen(P("b.txt"), O_WRONLY, 0);
    xwrite(fd, "bb", 2);
    xclose(fd);
    fd = xopen(P("s2"), O_WRONLY | O_APPEND, 0);
    xwrite(fd, "sss", 3);
    xclose(fd);
    return 0;
}
