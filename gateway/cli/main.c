/*
 * main.c — the rtgw command line: usage and dispatch. Each command lives in
 * its own file (serve.c, keygen.c, token.c, publish.c, subscribe.c; doctor
 * in gateway/doctor); cli.h has what they share. `rtgw --dev` is
 * `rtgw serve --dev`; no command is serve.
 * Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration.
 */
#include "cli.h"
#include "doctor.h"
#include "rt_tokens.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "rtgw %s — realtime gateway (Inngest Realtime protocol)\n\n"
            "Usage: rtgw [command] [options]\n\n"
            "Commands:\n"
            "  serve      run the gateway (the default command)\n"
            "  keygen     print a new signing key\n"
            "  token      mint a subscription token offline with RTGW_SIGNING_KEY\n"
            "  publish    publish an event (or a stream) to a gateway\n"
            "  subscribe  subscribe to a gateway and print events as JSON lines\n"
            "  doctor     check the path from a browser to a gateway, or its configuration\n"
            "  version    print the version\n\n"
            "Run 'rtgw <command> --help' for a command's options.\n",
            RT_VERSION);
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"serve", rt_cmd_serve},     {"keygen", rt_cmd_keygen},       {"token", rt_cmd_token},
    {"publish", rt_cmd_publish}, {"subscribe", rt_cmd_subscribe}, {"doctor", rt_doctor_main},
};

int main(int argc, char **argv)
{
    if (rt_tokens_init() != 0) {
        fprintf(stderr, "rtgw: cannot initialise libsodium\n");
        return 1;
    }
    const char *cmd = argc > 1 ? argv[1] : "serve";
    int sub_argc = argc > 1 ? argc - 2 : 0;
    char **sub_argv = argv + 2;
    if (argc > 1 && argv[1][0] == '-' && strcmp(argv[1], "--help") != 0 &&
        strcmp(argv[1], "-h") != 0 && strcmp(argv[1], "--version") != 0) {
        cmd = "serve"; /* rtgw --dev == rtgw serve --dev */
        sub_argc = argc - 1;
        sub_argv = argv + 1;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(sub_argc, sub_argv);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("rtgw %s (civetweb, libsodium %s, jansson %s)\n", RT_VERSION,
               sodium_version_string(), jansson_version_str());
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "rtgw: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
