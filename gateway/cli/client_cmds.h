/*
 * client_cmds.h — `rtgw publish` and `rtgw subscribe`: the gateway's own
 * command line as a client of a (possibly remote) gateway, over sdk/c.
 * Exit codes as every rtgw command: 0 ok, 1 runtime failure, 2 bad usage.
 */
#ifndef RT_CLIENT_CMDS_H
#define RT_CLIENT_CMDS_H

/* argv holds the options after the command name. Blocks until done. */
int rt_cmd_publish(int argc, char **argv);
int rt_cmd_subscribe(int argc, char **argv);

#endif
