/*
 * cli.c — the helpers the rtgw commands share (see cli.h). Main thread
 * only; touches nothing but its arguments and stderr.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

bool rt_cli_opt_arg(int argc, char **argv, int *i, const char *name, const char **out)
{
    if (strcmp(argv[*i], name) != 0)
        return false;
    if (*i + 1 >= argc) {
        *out = NULL;
        return true;
    }
    *out = argv[++*i];
    return true;
}

int rt_cli_load_key_config(const char *cmd, rt_config_t *cfg)
{
    char errs[4096];
    if (rt_config_load(cfg, NULL, false, errs, sizeof(errs)) != 0) {
        fprintf(stderr, "rtgw %s: configuration refused (or pass --token JWT):\n", cmd);
        for (char *line = strtok(errs, "\n"); line; line = strtok(NULL, "\n"))
            fprintf(stderr, "  %s\n", line);
        return 2;
    }
    return 0;
}
