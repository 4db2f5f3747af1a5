/*
 * fuzz_config.c — libFuzzer target for configuration parsing: rt_config_load
 * on a fuzzed .env file, with a clean environment (every RTGW_ variable is
 * unset once, before the first input, so only the file speaks).
 *
 * Input: bit 0 of byte 0 is --dev; the rest is the .env file, written to a
 * temporary path. Inputs naming /dev, /proc or /sys are skipped: a TLS path
 * there would make the certificate check read a device, which only an
 * operator can ask for.
 * Invariants checked:
 *   - every integer setting is within its [min, max] whatever the file says
 *     (an out-of-range or malformed value keeps the default);
 *   - each error is one line naming RTGW_… or the env file, and the count
 *     returned equals the lines written;
 *   - when there is no error: host:port parsed (port 0..65535), log level and
 *     token alg known, a signing key unless --dev, TTL <= max TTL, origins a
 *     NULL-terminated list of scheme://host entries;
 *   - a signing key (current or fallback) is never echoed in an error;
 *   - loading the same file twice gives the same count, errors and values;
 *   - rt_config_free releases everything (LeakSanitizer).
 */
#include "config.h"
#include "log.h"
#include "rt_tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "rt_env.h"

static char path[256];

static void remove_file(void)
{
    if (path[0])
        unlink(path);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    int fd;

    rt_test_unsetenv_prefix("RTGW_");
    snprintf(path, sizeof(path), "%s/rtgw-fuzz-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    atexit(remove_file);
    rt_log_set_level(RT_LOG_ERROR);
    CHECK(rt_tokens_init() == 0);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static size_t occurrences(const uint8_t *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle), c = 0;
    for (size_t i = 0; k && i + k <= n; i++)
        c += memcmp(hay + i, needle, k) == 0;
    return c;
}

/* A key that looks real, appears once in the file and is not help text. */
static bool is_secret(const char *v, const uint8_t *file, size_t n)
{
    return v && strncmp(v, "signkey-", 8) == 0 && strlen(v) >= 16 && !strchr(v, '<') &&
           occurrences(file, n, v) == 1;
}

static void check_lines(const char *errs)
{
    const char *line = errs;
    while (*line) {
        CHECK(strncmp(line, "RTGW_", 5) == 0 || strncmp(line, "env file ", 9) == 0);
        const char *nl = strchr(line, '\n');
        CHECK(nl != NULL);
        line = nl + 1;
    }
}

static void check_ints(const rt_config_t *c)
{
#define CHECK_INT(f, env, def, mn, mx, help) CHECK(c->f >= (mn) && c->f <= (mx));
    RT_CONFIG_INTS(CHECK_INT)
#undef CHECK_INT
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void check_same(const rt_config_t *a, const rt_config_t *b)
{
#define SAME_INT(f, env, def, mn, mx, help) CHECK(a->f == b->f);
    RT_CONFIG_INTS(SAME_INT)
#undef SAME_INT
#define SAME_STR(f, env, def, help) CHECK(same_str(a->f, b->f));
    RT_CONFIG_STRS(SAME_STR)
#undef SAME_STR
    CHECK(a->norigins == b->norigins);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char errs[16384], errs2[16384];
    rt_config_t cfg, cfg2;
    bool dev;
    FILE *f;
    int n, n2;

    if (!path[0])
        setup();
    if (size == 0)
        return 0;
    dev = data[0] & 1;
    data++, size--;
    if (occurrences(data, size, "/dev") || occurrences(data, size, "/proc") ||
        occurrences(data, size, "/sys"))
        return 0;
    f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(data, 1, size, f) == size);
    CHECK(fclose(f) == 0);

    n = rt_config_load(&cfg, path, dev, errs, sizeof(errs));
    CHECK(n >= 0);
    CHECK(memchr(errs, 0, sizeof(errs)) != NULL);
    check_ints(&cfg);
    if (strlen(errs) + 1 < sizeof(errs) - 1) { /* not truncated */
        CHECK(count_lines(errs) == (size_t)n);
        check_lines(errs);
    }
    if (is_secret(cfg.signing_key, data, size))
        CHECK(strstr(errs, cfg.signing_key) == NULL);
    if (is_secret(cfg.signing_key_fallback, data, size))
        CHECK(strstr(errs, cfg.signing_key_fallback) == NULL);
    if (n == 0) {
        CHECK(cfg.host[0] && cfg.port >= 0 && cfg.port <= 65535);
        CHECK(rt_log_level_parse(cfg.log_level) >= 0);
        CHECK(rt_alg_parse(rt_slice_cstr(cfg.token_alg)) >= 0);
        CHECK(dev || cfg.signing_key != NULL);
        CHECK(cfg.token_ttl_s <= cfg.token_max_ttl_s);
        if (cfg.origins) {
            for (size_t i = 0; i < cfg.norigins; i++)
                CHECK(strncmp(cfg.origins[i], "http://", 7) == 0 ||
                      strncmp(cfg.origins[i], "https://", 8) == 0);
            CHECK(cfg.origins[cfg.norigins] == NULL);
        } else {
            CHECK(cfg.norigins == 0);
        }
    }

    n2 = rt_config_load(&cfg2, path, dev, errs2, sizeof(errs2));
    CHECK(n2 == n && strcmp(errs, errs2) == 0);
    check_same(&cfg, &cfg2);
    rt_config_free(&cfg);
    rt_config_free(&cfg2);
    return 0;
}
