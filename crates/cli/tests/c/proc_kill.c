/* kill(child, SIGTERM), tgkill(self, SIGUSR1) with a handler, kill(self, 0). */
#include "tomo_test.h"

static volatile sig_atomic_t got;
static void on_usr1(int s) { got = s; }

int main(int argc, char **argv) {
    init(argc, argv);
    int ready[2];
    CHECK(pipe(ready) == 0);
    long pid = syscall(SYS_fork);
    CHECK(pid >= 0);
    if (pid == 0) {
        xclose(ready[0]);
        xclose(ready[1]); /* parent's read sees EOF: we are running */
        for (;;) pause();
    }
    xclose(ready[1]);
    char c;
    CHECK(syscall(SYS_read, ready[0], &c, 1) == 0);
    CHECK(syscall(SYS_kill, pid, SIGTERM) == 0);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    signal(SIGUSR1, on_usr1);
    CHECK(syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1) == 0);
    CHECK(got == SIGUSR1);
    CHECK(syscall(SYS_kill, getpid(), 0) == 0);
    return 0;
}
