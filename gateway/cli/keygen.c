/*
 * keygen.c — `rtgw keygen`: print a new signing key signkey-<env>-<64 hex>.
 * Main thread; the key goes to stdout only and is wiped from memory after.
 */
#include "cli.h"
#include "rt_tokens.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

int rt_cmd_keygen(int argc, char **argv)
{
    const char *env = "prod";
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--env") == 0 && i + 1 < argc) {
            env = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0) {
            printf("Usage: rtgw keygen [--env NAME]\n\nPrints a new signing key signkey-<NAME>-<64 "
                   "hex> "
                   "(NAME defaults to prod; [a-z0-9_], 1-64 chars).\n");
            return 0;
        } else {
            fprintf(stderr, "rtgw keygen: unknown option '%s' (see rtgw keygen --help)\n", argv[i]);
            return 2;
        }
    }
    char key[160];
    int n = rt_signing_key_generate(env, key, sizeof(key));
    if (n < 0) {
        fprintf(stderr, "rtgw keygen: %s\n", rt_tok_strerror(n));
        return 2;
    }
    printf("%s\n", key);
    sodium_memzero(key, sizeof(key));
    return 0;
}
