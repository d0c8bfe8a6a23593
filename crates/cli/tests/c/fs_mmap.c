/* mmap of files made by the test (8192 bytes each):
 * lib.bin PROT_READ|PROT_EXEC private (load), data.bin PROT_READ|PROT_WRITE
 * MAP_SHARED (read + write), ro.bin PROT_READ private (read),
 * cow.bin PROT_READ|PROT_WRITE private (read only: copy-on-write). */
#include "tomo_test.h"
#include <sys/mman.h>

static void *map(const char *name, int oflags, int prot, int flags) {
    int fd = xopen(P(name), oflags, 0);
    void *m = (void *)syscall(SYS_mmap, NULL, 8192, prot, flags, fd, 0);
    CHECK(m != MAP_FAILED);
    xclose(fd);
    return m;
}

int main(int argc, char **argv) {
    init(argc, argv);
    volatile char *lib = map("lib.bin", O_RDONLY, PROT_READ | PROT_EXEC, MAP_PRIVATE);
    volatile char *data = map("data.bin", O_RDWR, PROT_READ | PROT_WRITE, MAP_SHARED);
    volatile char *ro = map("ro.bin", O_RDONLY, PROT_READ, MAP_PRIVATE);
    volatile char *cow = map("cow.bin", O_RDONLY, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    char sum = lib[0] + ro[1] + cow[2];
    data[0] = sum | 1;
    cow[0] = 'x';
    CHECK(msync((void *)data, 8192, MS_SYNC) == 0);
    return 0;
}
