/*
 * test_config.c — unit tests for gateway/config/config.h: defaults, environment over
 * .env, .env syntax, and one refusal line per bad variable.
 *
 * Each case runs in its own process (one CTest entry each), starts from an
 * environment with every RTGW_* variable removed, and runs in a fresh
 * temporary directory so that no stray ./.env is read.
 */
#include "config.h"
#include "rt_test.h"
#include "rt_env.h"
#include "rt_tokens.h"

#include <dirent.h>
#include <unistd.h>

static char tmpdir[64];
static char errs[4096];

/* Remove the temporary directory and whatever a case left in it. */
static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char path[320];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    if (chdir("/") == 0)
        rmdir(tmpdir);
}

static void clean_env(void)
{
    rt_test_unsetenv_prefix("RTGW_");
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/rt_test_config.XXXXXX");
        RT_ASSERT(mkdtemp(tmpdir) != NULL);
        atexit(remove_tmpdir);
        RT_ASSERT_INT_EQ(chdir(tmpdir), 0);
    }
}

static const char *valid_key(void)
{
    static char key[200];
    if (!key[0]) {
        RT_ASSERT_INT_EQ(rt_tokens_init(), 0);
        RT_ASSERT(rt_signing_key_generate("test", key, sizeof(key)) > 0);
    }
    return key;
}

/* A temporary .env file with the given contents; returns its path (static). */
static const char *env_file(const char *contents)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/envXXXXXX", tmpdir[0] ? tmpdir : "/tmp");
    int fd = mkstemp(path);
    RT_ASSERT(fd >= 0);
    size_t n = strlen(contents);
    RT_ASSERT_INT_EQ(write(fd, contents, n), (long long)n);
    close(fd);
    return path;
}

static int load(rt_config_t *cfg, const char *file, bool dev)
{
    memset(errs, 0, sizeof(errs));
    return rt_config_load(cfg, file, dev, errs, sizeof(errs));
}

/* Number of lines in errs. */
static int nlines(void)
{
    int n = 0;
    for (const char *p = errs; *p; p++)
        n += *p == '\n';
    return n;
}

/* errs has a line starting with prefix. */
static void assert_line(const char *prefix)
{
    size_t pl = strlen(prefix);
    for (const char *p = errs; *p;) {
        if (strncmp(p, prefix, pl) == 0)
            return;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    rt_test_fail(__FILE__, __LINE__, "no error line starting with \"%s\"\n    errors: \"%s\"",
                 prefix, errs);
}

/* Exactly one refusal, naming the variable. */
#define ASSERT_ONE_REFUSAL(cfg, dev, var)                                                          \
    do {                                                                                           \
        int n_ = load(cfg, NULL, dev);                                                             \
        if (n_ != 1 || nlines() != 1)                                                              \
            rt_test_fail(__FILE__, __LINE__, "want one refusal for %s, got %d:\n%s", var, n_,      \
                         errs);                                                                    \
        char pfx_[128];                                                                            \
        snprintf(pfx_, sizeof(pfx_), "%s: ", var);                                                 \
        assert_line(pfx_);                                                                         \
        rt_config_free(cfg);                                                                       \
    } while (0)

/* Loads cleanly (in dev mode). */
#define ASSERT_OK(cfg)                                                                             \
    do {                                                                                           \
        int n_ = load(cfg, NULL, true);                                                            \
        if (n_ != 0)                                                                               \
            rt_test_fail(__FILE__, __LINE__, "want no refusal, got %d:\n%s", n_, errs);            \
    } while (0)

RT_TEST(defaults)
{
    clean_env();
    rt_config_t cfg;
    ASSERT_OK(&cfg);
    RT_ASSERT_STR_EQ(errs, "");
    RT_ASSERT_STR_EQ(cfg.listen, "127.0.0.1:8288");
    RT_ASSERT_STR_EQ(cfg.host, "127.0.0.1");
    RT_ASSERT_INT_EQ(cfg.port, 8288);
    RT_ASSERT_STR_EQ(cfg.token_alg, "HS256");
    RT_ASSERT_STR_EQ(cfg.issuer, "rtgw");
    RT_ASSERT_STR_EQ(cfg.log_level, "info");
    RT_ASSERT(cfg.signing_key == NULL);
    RT_ASSERT(cfg.signing_key_fallback == NULL);
    RT_ASSERT(cfg.public_url == NULL);
    RT_ASSERT(cfg.origins == NULL);
    RT_ASSERT(cfg.dev);
    RT_ASSERT_INT_EQ(cfg.token_ttl_s, 60);
    RT_ASSERT_INT_EQ(cfg.token_max_ttl_s, 3600);
    RT_ASSERT_INT_EQ(cfg.max_connections, 1000);
    RT_ASSERT_INT_EQ(cfg.queue_max_messages, 4096);
    RT_ASSERT_INT_EQ(cfg.queue_max_bytes, 8388608);
    RT_ASSERT_INT_EQ(cfg.history_max, 1000);
    RT_ASSERT_INT_EQ(cfg.history_max_age_s, 300);
    RT_ASSERT_INT_EQ(cfg.max_topics, 64);
    RT_ASSERT_INT_EQ(cfg.max_body_bytes, 524288);
    rt_config_free(&cfg);
    RT_ASSERT(cfg.listen == NULL);
}

RT_TEST(every_int_default_is_in_range)
{
#define CHECK_DEF(f, env, def, mn, mx, help) RT_ASSERT((def) >= (mn) && (def) <= (mx));
    RT_CONFIG_INTS(CHECK_DEF)
#undef CHECK_DEF
}

RT_TEST(valid_key_outside_dev)
{
    clean_env();
    setenv("RTGW_SIGNING_KEY", valid_key(), 1);
    rt_config_t cfg;
    int n = load(&cfg, NULL, false);
    if (n != 0)
        rt_test_fail(__FILE__, __LINE__, "refused: %s", errs);
    RT_ASSERT_STR_EQ(cfg.signing_key, valid_key());
    RT_ASSERT(!cfg.dev);
    rt_config_free(&cfg);
}

RT_TEST(environment_overrides_env_file)
{
    clean_env();
    const char *f = env_file("RTGW_TOKEN_TTL=10\nRTGW_MAX_TOPICS=5\nRTGW_TOKEN_ISSUER=from-file\n");
    setenv("RTGW_TOKEN_TTL", "20", 1);
    setenv("RTGW_TOKEN_ISSUER", "from-env", 1);
    setenv("RTGW_MAX_TOPICS", "", 1); /* empty counts as unset: the file's value holds */
    rt_config_t cfg;
    int n = load(&cfg, f, true);
    if (n)
        rt_test_fail(__FILE__, __LINE__, "refused: %s", errs);
    RT_ASSERT_INT_EQ(cfg.token_ttl_s, 20);
    RT_ASSERT_STR_EQ(cfg.issuer, "from-env");
    RT_ASSERT_INT_EQ(cfg.max_topics, 5);
    rt_config_free(&cfg);
    unlink(f);
}

RT_TEST(default_env_file_in_cwd)
{
    clean_env();
    FILE *fp = fopen(".env", "w");
    RT_ASSERT(fp != NULL);
    fputs("RTGW_MAX_TOPICS=7\n", fp);
    fclose(fp);
    rt_config_t cfg;
    ASSERT_OK(&cfg);
    RT_ASSERT_INT_EQ(cfg.max_topics, 7);
    rt_config_free(&cfg);
    unlink(".env");
    /* and no .env at all is fine */
    ASSERT_OK(&cfg);
    RT_ASSERT_INT_EQ(cfg.max_topics, 64);
    rt_config_free(&cfg);
}

RT_TEST(env_file_syntax)
{
    clean_env();
    const char *f = env_file("# a comment\n"
                             "\n"
                             "   # indented comment\n"
                             "export RTGW_LOG_LEVEL=debug\n"
                             "RTGW_TOKEN_ISSUER=\"my issuer # not a comment\"\n"
                             "RTGW_LISTEN='0.0.0.0:9000'\n"
                             "RTGW_MAX_TOPICS=12 # trailing comment\n"
                             "  RTGW_TOKEN_TTL  =  30  \n"
                             "RTGW_ALLOWED_ORIGINS=https://a.example.com\n"
                             "RTGW_ALLOWED_ORIGINS=https://b.example.com\n" /* last one wins */
                             "RTGW_PUBLIC_URL=\"\"\n");                     /* empty = unset */
    rt_config_t cfg;
    int n = load(&cfg, f, true);
    if (n)
        rt_test_fail(__FILE__, __LINE__, "refused: %s", errs);
    RT_ASSERT_STR_EQ(cfg.log_level, "debug");
    RT_ASSERT_STR_EQ(cfg.issuer, "my issuer # not a comment");
    RT_ASSERT_STR_EQ(cfg.host, "0.0.0.0");
    RT_ASSERT_INT_EQ(cfg.port, 9000);
    RT_ASSERT_INT_EQ(cfg.max_topics, 12);
    RT_ASSERT_INT_EQ(cfg.token_ttl_s, 30);
    RT_ASSERT_INT_EQ(cfg.norigins, 1);
    RT_ASSERT_STR_EQ(cfg.origins[0], "https://b.example.com");
    RT_ASSERT(cfg.public_url == NULL);
    rt_config_free(&cfg);
    unlink(f);
}

RT_TEST(env_file_bad_line)
{
    clean_env();
    const char *f = env_file("RTGW_MAX_TOPICS=3\nthis is not an assignment\n");
    rt_config_t cfg;
    int n = load(&cfg, f, true);
    RT_ASSERT_INT_EQ(n, 1);
    assert_line("env file ");
    RT_ASSERT(strstr(errs, ":2: ") != NULL); /* names the line */
    RT_ASSERT_INT_EQ(cfg.max_topics, 3);
    rt_config_free(&cfg);
    unlink(f);
}

RT_TEST(env_file_unreadable)
{
    clean_env();
    rt_config_t cfg;
    int n = load(&cfg, "/nonexistent/dir/.env", true);
    RT_ASSERT_INT_EQ(n, 1);
    assert_line("env file /nonexistent/dir/.env: ");
    rt_config_free(&cfg);
    /* a directory is not readable as a file either */
    n = load(&cfg, tmpdir, true);
    RT_ASSERT(n >= 1);
    assert_line("env file ");
    rt_config_free(&cfg);
}

RT_TEST(refuse_missing_key_outside_dev)
{
    clean_env();
    rt_config_t cfg;
    ASSERT_ONE_REFUSAL(&cfg, false, "RTGW_SIGNING_KEY");
    RT_ASSERT(strstr(errs, "--dev") != NULL); /* says how to fix it */
}

RT_TEST(refuse_malformed_key)
{
    clean_env();
    const char *bad[] = {"signkey-test-zz", "signkey-test-0123", "notakey",
                         "signkey-UPPER-"
                         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("RTGW_SIGNING_KEY", bad[i], 1);
        rt_config_t cfg;
        ASSERT_ONE_REFUSAL(&cfg, true, "RTGW_SIGNING_KEY");
        if (strstr(errs, bad[i]))
            rt_test_fail(__FILE__, __LINE__, "the key is echoed back: %s", errs);
    }
}

RT_TEST(refuse_listen_garbage)
{
    clean_env();
    const char *bad[] = {"nonsense",        "127.0.0.1",    "127.0.0.1:", "127.0.0.1:http",
                         "127.0.0.1:65536", "127.0.0.1:-1", "[::1]",      "[::1:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("RTGW_LISTEN", bad[i], 1);
        rt_config_t cfg;
        ASSERT_ONE_REFUSAL(&cfg, true, "RTGW_LISTEN");
    }
}

RT_TEST(refuse_int_out_of_range)
{
    clean_env();
    const char *cases[][2] = {{"RTGW_TOKEN_TTL", "0"},
                              {"RTGW_TOKEN_TTL", "86401"},
                              {"RTGW_MAX_CONNECTIONS", "200001"},
                              {"RTGW_QUEUE_MAX_BYTES", "1023"},
                              {"RTGW_HISTORY_MAX", "-1"},
                              {"RTGW_MAX_TOPICS", "99999999999999999999"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        clean_env();
        setenv(cases[i][0], cases[i][1], 1);
        rt_config_t cfg;
        ASSERT_ONE_REFUSAL(&cfg, true, cases[i][0]);
    }
    /* the bounds themselves are accepted */
    clean_env();
    setenv("RTGW_HISTORY_MAX", "0", 1);
    setenv("RTGW_MAX_TOPICS", "4096", 1);
    rt_config_t cfg;
    ASSERT_OK(&cfg);
    RT_ASSERT_INT_EQ(cfg.history_max, 0);
    RT_ASSERT_INT_EQ(cfg.max_topics, 4096);
    rt_config_free(&cfg);
}

RT_TEST(refuse_int_not_numeric)
{
    const char *bad[] = {"abc", "10x", "1.5", "0x10", "1e3", "ten"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        clean_env();
        setenv("RTGW_MAX_TOPICS", bad[i], 1);
        rt_config_t cfg;
        ASSERT_ONE_REFUSAL(&cfg, true, "RTGW_MAX_TOPICS");
        RT_ASSERT_INT_EQ(cfg.max_topics, 64); /* the value was not taken: default kept */
    }
}

RT_TEST(refuse_ttl_above_max_ttl)
{
    clean_env();
    setenv("RTGW_TOKEN_TTL", "600", 1);
    setenv("RTGW_TOKEN_MAX_TTL", "300", 1);
    rt_config_t cfg;
    ASSERT_ONE_REFUSAL(&cfg, true, "RTGW_TOKEN_TTL");
}

RT_TEST(refuse_unknown_log_level)
{
    clean_env();
    setenv("RTGW_LOG_LEVEL", "verbose", 1);
    rt_config_t cfg;
    ASSERT_ONE_REFUSAL(&cfg, true, "RTGW_LOG_LEVEL");
}

RT_TEST(refuse_unknown_alg)
{
    clean_env();
    const char *bad[] = {"RS256", "none", "HS512"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("RTGW_TOKEN_ALG", bad[i], 1);
        rt_config_t cfg;
        ASSERT_ONE_REFUSAL(&cfg, true, "RTGW_TOKEN_ALG");
    }
    setenv("RTGW_TOKEN_ALG", "EdDSA", 1);
    rt_config_t cfg;
    ASSERT_OK(&cfg);
    rt_config_free(&cfg);
}

RT_TEST(refuse_fallback_equal_to_current)
{
    clean_env();
    setenv("RTGW_SIGNING_KEY", valid_key(), 1);
    setenv("RTGW_SIGNING_KEY_FALLBACK", valid_key(), 1);
    rt_config_t cfg;
    ASSERT_ONE_REFUSAL(&cfg, false, "RTGW_SIGNING_KEY_FALLBACK");
    RT_ASSERT(strstr(errs, valid_key()) == NULL);
    /* a different valid fallback is fine */
    char other[200];
    RT_ASSERT(rt_signing_key_generate("test", other, sizeof(other)) > 0);
    setenv("RTGW_SIGNING_KEY_FALLBACK", other, 1);
    RT_ASSERT_INT_EQ(load(&cfg, NULL, false), 0);
    rt_config_free(&cfg);
    /* a malformed fallback is named as such */
    setenv("RTGW_SIGNING_KEY_FALLBACK", "signkey-x-00", 1);
    ASSERT_ONE_REFUSAL(&cfg, false, "RTGW_SIGNING_KEY_FALLBACK");
}

RT_TEST(refuse_public_url_http_non_local)
{
    clean_env();
    const char *bad[] = {"http://rt.example.com", "ws://rt.example.com:8288",
                         "http://10.0.0.5:8288", "http://127.example.com",
                         "http://localhost.example.com:8288"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("RTGW_PUBLIC_URL", bad[i], 1);
        rt_config_t cfg;
        ASSERT_ONE_REFUSAL(&cfg, true, "RTGW_PUBLIC_URL");
    }
}

RT_TEST(refuse_public_url_path_or_trailing_slash)
{
    clean_env();
    const char *bad[] = {"https://rt.example.com/", "https://rt.example.com/realtime",
                         "http://localhost:8288/",  "https://",
                         "rt.example.com",          "ftp://rt.example.com"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("RTGW_PUBLIC_URL", bad[i], 1);
        rt_config_t cfg;
        ASSERT_ONE_REFUSAL(&cfg, true, "RTGW_PUBLIC_URL");
    }
}

RT_TEST(public_url_local_http_accepted)
{
    clean_env();
    const char *good[] = {"http://localhost:8288",  "http://localhost",
                          "http://127.0.0.1:8288",  "http://127.1.2.3",
                          "ws://localhost:8288",    "http://[::1]:8288",
                          "https://rt.example.com", "https://rt.example.com:8443",
                          "wss://rt.example.com"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        setenv("RTGW_PUBLIC_URL", good[i], 1);
        rt_config_t cfg;
        int n = load(&cfg, NULL, true);
        if (n)
            rt_test_fail(__FILE__, __LINE__, "%s refused: %s", good[i], errs);
        RT_ASSERT_STR_EQ(cfg.public_url, good[i]);
        rt_config_free(&cfg);
    }
}

RT_TEST(refuse_origin_with_path_or_slash)
{
    clean_env();
    const char *bad[] = {"https://app.example.com/", "https://app.example.com/path",
                         "https://a.example.com,https://b.example.com/x", "app.example.com",
                         "ftp://app.example.com"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("RTGW_ALLOWED_ORIGINS", bad[i], 1);
        rt_config_t cfg;
        ASSERT_ONE_REFUSAL(&cfg, true, "RTGW_ALLOWED_ORIGINS");
    }
}

RT_TEST(refuse_star_inside_origin_list)
{
    clean_env();
    setenv("RTGW_ALLOWED_ORIGINS", "https://app.example.com,*", 1);
    rt_config_t cfg;
    ASSERT_ONE_REFUSAL(&cfg, true, "RTGW_ALLOWED_ORIGINS");
}

RT_TEST(several_refusals_one_line_each)
{
    clean_env();
    setenv("RTGW_LISTEN", "x", 1);
    setenv("RTGW_LOG_LEVEL", "loud", 1);
    setenv("RTGW_MAX_TOPICS", "many", 1);
    rt_config_t cfg;
    int n = load(&cfg, NULL, false);
    RT_ASSERT_INT_EQ(n, 4);
    RT_ASSERT_INT_EQ(nlines(), 4);
    assert_line("RTGW_LISTEN: ");
    assert_line("RTGW_LOG_LEVEL: ");
    assert_line("RTGW_MAX_TOPICS: ");
    assert_line("RTGW_SIGNING_KEY: ");
    rt_config_free(&cfg);
}

RT_TEST(errs_buffer_is_bounded)
{
    clean_env();
    setenv("RTGW_LISTEN", "x", 1);
    setenv("RTGW_LOG_LEVEL", "loud", 1);
    char small[16];
    memset(small, 'Q', sizeof(small));
    rt_config_t cfg;
    RT_ASSERT_INT_EQ(rt_config_load(&cfg, NULL, true, small, sizeof(small)), 2);
    RT_ASSERT(memchr(small, 0, sizeof(small)) != NULL);
    rt_config_free(&cfg);
}

/* ---- rt_config_parse_listen ---- */

static void listen_is(const char *s, int want_rc, const char *want_host, int want_port)
{
    char host[64] = "unchanged";
    int port = -7;
    int rc = rt_config_parse_listen(s, host, sizeof(host), &port);
    if (rc != want_rc)
        rt_test_fail(__FILE__, __LINE__,
                     "rt_config_parse_listen(\"%s\")\n    left:  %d\n    right: %d", s, rc,
                     want_rc);
    if (want_host) {
        RT_ASSERT_STR_EQ(host, want_host);
        RT_ASSERT_INT_EQ(port, want_port);
    }
}

RT_TEST(parse_listen_v4)
{
    listen_is("127.0.0.1:8288", 0, "127.0.0.1", 8288);
    listen_is("0.0.0.0:80", 0, "0.0.0.0", 80);
    listen_is("localhost:65535", 0, "localhost", 65535);
}

RT_TEST(parse_listen_v6)
{
    listen_is("[::1]:9000", 0, "::1", 9000);
    listen_is("[::]:8288", 0, "::", 8288);
    listen_is("[fe80::1%eth0]:1", 0, "fe80::1%eth0", 1);
}

RT_TEST(parse_listen_port_only)
{
    listen_is(":8080", 0, "0.0.0.0", 8080);
}

RT_TEST(parse_listen_bad)
{
    listen_is("127.0.0.1", -1, NULL, 0);
    listen_is("127.0.0.1:", -1, NULL, 0);
    listen_is("127.0.0.1:abc", -1, NULL, 0);
    listen_is("127.0.0.1:80x", -1, NULL, 0);
    listen_is("127.0.0.1:65536", -1, NULL, 0);
    listen_is("127.0.0.1:-1", -1, NULL, 0);
    listen_is("[::1]", -1, NULL, 0);
    listen_is("[::1]9000", -1, NULL, 0);
    listen_is("[::1:9000", -1, NULL, 0);
    listen_is("", -1, NULL, 0);
    char big[200];
    memset(big, 'h', 100);
    strcpy(big + 100, ":80");
    listen_is(big, -1, NULL, 0); /* host longer than the buffer */
}

/* ---- rt_config_origin_allowed ---- */

RT_TEST(origin_allowed)
{
    clean_env();
    setenv("RTGW_ALLOWED_ORIGINS", "https://app.example.com, http://localhost:3000", 1);
    rt_config_t cfg;
    ASSERT_OK(&cfg);
    RT_ASSERT_INT_EQ(cfg.norigins, 2);
    RT_ASSERT(rt_config_origin_allowed(&cfg, "https://app.example.com"));
    RT_ASSERT(rt_config_origin_allowed(&cfg, "HTTPS://APP.EXAMPLE.COM"));
    RT_ASSERT(rt_config_origin_allowed(&cfg, "http://localhost:3000"));
    RT_ASSERT(!rt_config_origin_allowed(&cfg, "http://app.example.com"));
    RT_ASSERT(!rt_config_origin_allowed(&cfg, "https://app.example.com:8443"));
    RT_ASSERT(!rt_config_origin_allowed(&cfg, "https://evil.app.example.com"));
    RT_ASSERT(!rt_config_origin_allowed(&cfg, "https://app.example.com.evil.com"));
    RT_ASSERT(!rt_config_origin_allowed(&cfg, "http://localhost:3001"));
    RT_ASSERT(!rt_config_origin_allowed(&cfg, "null"));
    /* no Origin header: not a browser */
    RT_ASSERT(rt_config_origin_allowed(&cfg, NULL));
    RT_ASSERT(rt_config_origin_allowed(&cfg, ""));
    rt_config_free(&cfg);
}

RT_TEST(origin_unset_or_star_allows_all)
{
    clean_env();
    rt_config_t cfg;
    ASSERT_OK(&cfg);
    RT_ASSERT(rt_config_origin_allowed(&cfg, "https://anything.example"));
    rt_config_free(&cfg);
    setenv("RTGW_ALLOWED_ORIGINS", "*", 1);
    ASSERT_OK(&cfg);
    RT_ASSERT(cfg.origins == NULL);
    RT_ASSERT(rt_config_origin_allowed(&cfg, "https://anything.example"));
    rt_config_free(&cfg);
}
