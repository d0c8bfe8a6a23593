/* Relative paths after chdir/fchdir (sub/ and sub2/ exist):
 * chdir(D/sub), creat rel.txt -> D/sub/rel.txt;
 * fchdir(fd of D/sub2), open(O_CREAT) rel2.txt -> D/sub2/rel2.txt;
 * openat(AT_FDCWD, "../up.txt", O_CREAT) -> D/up.txt;
 * chdir("..") (relative), a forked child creates child.txt -> D/child.txt. */
#include "tomo_test.h"

int main(int argc, char **argv) {
    init(argc, argv);
    CHECK(syscall(SYS_chdir, P("sub")) == 0);
    long fd = syscall(SYS_creat, "rel.txt", 0644);
    CHECK(fd >= 0);
    xclose(fd);
    int d2 = xopen(P("sub2"), O_RDONLY | O_DIRECTORY, 0);
    CHECK(syscall(SYS_fchdir, d2) == 0);
    xclose(d2);
    fd = syscall(SYS_open, "rel2.txt", O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0);
    xclose(fd);
    fd = syscall(SYS_openat, AT_FDCWD, "../up.txt", O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0);
    xclose(fd);
    CHECK(syscall(SYS_chdir, "..") == 0);
    long pid = syscall(SYS_fork);
    CHECK(pid >= 0);
    if (pid == 0) {
        write_file("child.txt", "c");
        syscall(SYS_exit_group, 0);
    }
    wait_exit(pid, 0);
    return 0;
}
