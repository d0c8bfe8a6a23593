/* Target of the exec tests: writes its argv (space-separated) to target.txt. */
#include "tomo_test.h"

int main(int argc, char **argv) {
    init(argc, argv);
    char buf[1024] = "";
    for (int i = 0; i < argc; i++) {
        if (i) strcat(buf, " ");
        strncat(buf, i == 1 ? "DIR" : argv[i], sizeof buf - strlen(buf) - 2);
    }
    write_file(P("target.txt"), buf);
    return 0;
}
