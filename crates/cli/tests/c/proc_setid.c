/* The setuid family. As root: setresuid(-1, 65534, -1) makes euid 65534,
 * then a failed open (recorded, with credentials) of missing1, then
 * setresuid(-1, 0, -1) back, open of missing2. Then, for everybody, the
 * calls that keep the ids: setuid(uid), setreuid(-1,-1), setgid(gid),
 * setregid(-1,-1), setresgid(-1,-1,-1). Non-root: setresuid(-1, uid, -1) twice. */
#include "tomo_test.h"

int main(int argc, char **argv) {
    init(argc, argv);
    uid_t u = getuid();
    gid_t g = getgid();
    long other = u == 0 ? 65534 : (long)u;
    CHECK(syscall(SYS_setresuid, -1, other, -1) == 0);
    CHECK(syscall(SYS_openat, AT_FDCWD, P("missing1"), O_RDONLY, 0) < 0);
    CHECK(syscall(SYS_setresuid, -1, u, -1) == 0);
    CHECK(syscall(SYS_openat, AT_FDCWD, P("missing2"), O_RDONLY, 0) < 0);
    CHECK(syscall(SYS_setuid, u) == 0);
    CHECK(syscall(SYS_setreuid, -1, -1) == 0);
    CHECK(syscall(SYS_setgid, g) == 0);
    CHECK(syscall(SYS_setregid, -1, -1) == 0);
    CHECK(syscall(SYS_setresgid, -1, -1, -1) == 0);
    return 0;
}
