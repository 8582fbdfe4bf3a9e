/* The `vigil` CLI: shared declarations of the files of tools/vigil. A consumer of the
 * public API (vigil/vigil.h) only, plus cJSON for reading answers. */
#ifndef VIGIL_CLI_H
#define VIGIL_CLI_H

#include <vigil/vigil.h>

#include <stdio.h>

/* Exit codes (docs/cli.md). */
#define EXIT_OK          0
#define EXIT_FAILED      1 /* a failed check, or the hub refused the request */
#define EXIT_USAGE       2
#define EXIT_UNREACHABLE 3 /* the hub could not be reached */

#define CLI_ARGS_MAX 256

/* Global options and the command's own arguments. */
typedef struct cli {
    const char *url;      /* hub base URL */
    const char *token;    /* bearer token, or NULL */
    const char *env_file; /* --env-file */
    int json;             /* --json */
    int help;             /* --help */
    int color;            /* stdout is a terminal */
    const char *argv[CLI_ARGS_MAX];
    int argc; /* command and its arguments, global options removed */
    vigil_client *client;
} cli;

/* One command: name, one-line summary, usage text, and its function. */
typedef struct cli_command {
    const char *name;
    const char *summary;
    const char *usage;
    int (*run)(cli *c, int argc, const char **argv);
} cli_command;

/* Commands defined in check.c (local: no hub). */
int cmd_validate(cli *c, int argc, const char **argv);
int cmd_simulate(cli *c, int argc, const char **argv);
int cmd_test(cli *c, int argc, const char **argv);

/* Prints "vigil: <message>" to stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reports a usage error for `cmd` and returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses a duration ("90s", "1h30m") into ms; 0 on success. */
int cli_duration(const char *text, int64_t *ms);
/* Writes a JSON string (quoted, escaped) to f. */
void cli_json_string(FILE *f, const char *s);
/* Formats epoch ms as "2026-12-07 03:04:05Z" (UTC) into buf. */
const char *cli_time(int64_t ms, char *buf, size_t size);

#endif
