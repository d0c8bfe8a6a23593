/* In-kernel copies from src.txt (4096 bytes, made by the test):
 * sendfile src@0 -> dst1@0 (100); splice src@200 -> pipe p (50);
 * tee p -> q (50); splice p -> dst2@0 (50); read q (50);
 * copy_file_range src@10 -> dst3@20 (30). dst*.txt exist, empty. */
#include "tomo_test.h"

int main(int argc, char **argv) {
    init(argc, argv);
    int src = xopen(P("src.txt"), O_RDONLY, 0);
    int d1 = xopen(P("dst1.txt"), O_WRONLY, 0);
    int d2 = xopen(P("dst2.txt"), O_WRONLY, 0);
    int d3 = xopen(P("dst3.txt"), O_WRONLY, 0);
    off_t off = 0;
    CHECK(syscall(SYS_sendfile, d1, src, &off, 100) == 100);

    int p[2], q[2];
    CHECK(syscall(SYS_pipe2, p, 0) == 0);
    CHECK(syscall(SYS_pipe2, q, 0) == 0);
    loff_t in_off = 200;
    CHECK(syscall(SYS_splice, src, &in_off, p[1], NULL, 50, 0) == 50);
    CHECK(syscall(SYS_tee, p[0], q[1], 50, 0) == 50);
    loff_t out_off = 0;
    CHECK(syscall(SYS_splice, p[0], NULL, d2, &out_off, 50, 0) == 50);
    char buf[64];
    CHECK(syscall(SYS_read, q[0], buf, 50) == 50);

    loff_t ci = 10, co = 20;
    CHECK(syscall(SYS_copy_file_range, src, &ci, d3, &co, 30, 0) == 30);
    return 0;
}
