/* a.txt -> b.txt (rename), b.txt -> c.txt (renameat, dirfd), c.txt -> d.txt
 * (renameat2 RENAME_NOREPLACE), then e.txt -> f.txt over an existing f.txt
 * (rename, replaces it). Finally 3 bytes are written to d.txt: they land on
 * the entity first seen as a.txt. All of a.txt, e.txt, f.txt exist. */
#include "tomo_test.h"

int main(int argc, char **argv) {
    init(argc, argv);
    int fd = xopen(P("a.txt"), O_RDONLY, 0); /* see a.txt under its first name */
    xclose(fd);
    CHECK(syscall(SYS_rename, P("a.txt"), P("b.txt")) == 0);
    int dfd = xopen(D, O_RDONLY | O_DIRECTORY, 0);
    CHECK(syscall(SYS_renameat, dfd, "b.txt", dfd, "c.txt") == 0);
    CHECK(syscall(SYS_renameat2, AT_FDCWD, P("c.txt"), AT_FDCWD, P("d.txt"), RENAME_NOREPLACE) == 0);
    CHECK(syscall(SYS_rename, P("e.txt"), P("f.txt")) == 0);
    fd = xopen(P("d.txt"), O_WRONLY, 0);
    xwrite(fd, "abc", 3);
    xclose(fd);
    return 0;
}
