/*
 * cli.h — what the rtgw commands share: their entry points (dispatched by
 * main.c) and the option and configuration helpers. Private to gateway/cli.
 *
 * Every command takes the options after its name, runs on the main thread,
 * prints to stdout/stderr and returns the process's exit code: 0 ok, 1
 * runtime failure, 2 bad usage or configuration.
 */
#ifndef RT_CLI_H
#define RT_CLI_H

#include "config.h"

#include <stdbool.h>

/* The gateway a client command talks to without --url (the default
 * RTGW_LISTEN); no variable of its own, so `serve --help` stays the list of
 * every variable. */
#define RT_CLI_DEFAULT_URL "http://127.0.0.1:8288"

int rt_cmd_serve(int argc, char **argv);     /* serve.c; blocks until shutdown */
int rt_cmd_keygen(int argc, char **argv);    /* keygen.c */
int rt_cmd_token(int argc, char **argv);     /* token.c */
int rt_cmd_publish(int argc, char **argv);   /* publish.c; blocks for the answer */
int rt_cmd_subscribe(int argc, char **argv); /* subscribe.c; blocks until done */

/* If argv[*i] is `name`, consume it and its value: *out is the value (NULL
 * when it is the last argument, for the caller to report) and *i moves past
 * it. Returns whether argv[*i] was `name`. */
bool rt_cli_opt_arg(int argc, char **argv, int *i, const char *name, const char **out);

/* Load RTGW_SIGNING_KEY and the token settings (environment or .env) for
 * `rtgw <cmd>`, like `rtgw token` does. Returns 0, or prints the problems
 * and returns 2; either way the caller frees cfg with rt_config_free. */
int rt_cli_load_key_config(const char *cmd, rt_config_t *cfg);

#endif
