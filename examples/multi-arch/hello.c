#include <stdio.h>

#if defined(__aarch64__)
#define ARCH "aarch64"
#elif defined(__x86_64__)
#define ARCH "x86_64"
#else
#define ARCH "another architecture"
#endif

int main(void) {
    printf("hello from a static %s binary\n", ARCH);
    return 0;
}
