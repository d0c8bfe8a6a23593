/* A thread ends with exit (SYS_exit), then the process with exit_group(7). */
#include "tomo_test.h"
#include <pthread.h>

static void *thread_main(void *arg) {
    (void)arg;
    syscall(SYS_exit, 0);
    return NULL;
}

int main(int argc, char **argv) {
    init(argc, argv);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    syscall(SYS_exit_group, 7);
    return 99;
}
