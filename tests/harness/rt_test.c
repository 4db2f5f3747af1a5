#include "rt_test.h"

#include <stdarg.h>

#define RT_TEST_MAX 1024

static struct {
    const char *name;
    rt_test_fn fn;
} cases[RT_TEST_MAX];
static int ncases;
static const char *current;

void rt_test_register(const char *name, rt_test_fn fn)
{
    if (ncases == RT_TEST_MAX) {
        fprintf(stderr, "rt_test: more than %d cases in one suite\n", RT_TEST_MAX);
        exit(2);
    }
    cases[ncases].name = name;
    cases[ncases].fn = fn;
    ncases++;
}

void rt_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FAIL %s\n  %s:%d: ", current ? current : "?", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    exit(1);
}

void rt_test_skip(const char *why)
{
    fprintf(stderr, "SKIP %s: %s\n", current ? current : "?", why);
    exit(77);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < ncases; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    if (argc > 1) {
        for (int i = 0; i < ncases; i++) {
            if (strcmp(cases[i].name, argv[1]) == 0) {
                current = cases[i].name;
                cases[i].fn();
                printf("PASS %s\n", current);
                return 0;
            }
        }
        fprintf(stderr, "rt_test: no case named '%s' (try --list)\n", argv[1]);
        return 2;
    }
    /* No argument: run everything in-process, stopping at the first failure. */
    for (int i = 0; i < ncases; i++) {
        current = cases[i].name;
        cases[i].fn();
        printf("PASS %s\n", current);
    }
    printf("%d passed, 0 failed\n", ncases);
    return 0;
}
