/* A pthread (clone with CLONE_THREAD) writes a file: no new process. */
#include "tomo_test.h"
#include <pthread.h>

static void *thread_main(void *arg) {
    (void)arg;
    write_file(P("thread.txt"), "t");
    return NULL;
}

int main(int argc, char **argv) {
    init(argc, argv);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    write_file(P("main.txt"), "m");
    return 0;
}
