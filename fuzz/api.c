/* libFuzzer target: the transport-neutral route handler, vigil_api_handle(),
 * with the hub's routes mounted (vigil_hub_mount()) on an api with an ingest
 * and a read/write token.
 *
 * The input is a request in HTTP/1.1 shape without the version:
 *     METHOD SP PATH[?QUERY] LF  (Name: value LF)*  LF  BODY
 *
 * The hub runs over an in-memory store (sqlite::memory:) and is created and
 * started once per process in LLVMFuzzerInitialize() (its commit thread must
 * run for /v1/ingest to answer): per-input threads would make runs slow and
 * timing-dependent. What inputs accept (samples, silences, actions) stays in
 * that store for the run, so a run's memory grows with what it accepts;
 * libFuzzer's -rss_limit_mb (2 GiB) bounds it, far above what a 30 s run
 * reaches. The policy engine has no rules, the remediator link is unset. */
#include <vigil/vigil.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_LEN 8192

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADERS_MAX 16

static vigil_hub *hub;
static vigil_api *api;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("VIGIL_FUZZ_INGEST", "fuzz-ingest-token-0123456789", 1);
    setenv("VIGIL_FUZZ_RW", "fuzz-rw-token-0123456789abcd", 1);
    vigil_hub_options ho = VIGIL_HUB_OPTIONS_INIT;
    ho.store_url = "sqlite::memory:";
    ho.events_interval_ms = 3600 * 1000;
    ho.logger.min_level = VIGIL_LOG_OFF;
    vigil_api_token toks[] = {
        {"agents", "VIGIL_FUZZ_INGEST", NULL, VIGIL_API_SCOPE_INGEST},
        {"ops", "VIGIL_FUZZ_RW", NULL, VIGIL_API_SCOPE_READ | VIGIL_API_SCOPE_WRITE}};
    vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
    ao.tokens = toks;
    ao.ntokens = 2;
    ao.max_body = 64 * 1024;
    ao.max_inflated = 256 * 1024;
    ao.logger.min_level = VIGIL_LOG_OFF;
    if (vigil_hub_new(&hub, &ho) != VIGIL_OK || vigil_hub_start(hub) != VIGIL_OK ||
        vigil_api_new(&api, &ao) != VIGIL_OK || vigil_hub_mount(hub, api) != VIGIL_OK)
        abort();
    return 0;
}

/* The next line of [*p, end) as a NUL-terminated copy in a fresh string. */
static char *line(const char **p, const char *end)
{
    const char *eol = memchr(*p, '\n', (size_t)(end - *p));
    const char *le = eol ? eol : end;
    size_t n = (size_t)(le - *p);
    if (n > 0 && le[-1] == '\r')
        n--;
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = eol ? eol + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    char *start = line(&p, end);
    char *sp = strchr(start, ' ');
    const char *method = start, *path = "/";
    if (sp) {
        *sp = '\0';
        path = sp + 1;
    }
    char *query = strchr(path, '?');
    if (query)
        *query++ = '\0';

    char *lines[HEADERS_MAX];
    vigil_http_header hs[HEADERS_MAX];
    size_t nh = 0;
    while (p < end && nh < HEADERS_MAX) {
        char *h = line(&p, end);
        if (!*h) {
            free(h);
            break;
        }
        lines[nh] = h;
        char *colon = strchr(h, ':');
        hs[nh].name = h;
        hs[nh].value = "";
        if (colon) {
            *colon = '\0';
            hs[nh].value = colon + 1 + (colon[1] == ' ');
        }
        nh++;
    }

    vigil_api_request req = VIGIL_API_REQUEST_INIT;
    req.method = method;
    req.path = path;
    req.query = query;
    req.headers = hs;
    req.nheaders = nh;
    req.body = p < end ? p : NULL;
    req.body_len = (size_t)(end - p);
    req.remote_addr = "127.0.0.1";
    req.request_id = "fuzz";
    vigil_api_response *resp = NULL;
    if (vigil_api_response_new(&resp) == VIGIL_OK) {
        if (vigil_api_handle(api, &req, resp) == VIGIL_OK) {
            size_t n = 0;
            (void)vigil_api_response_status(resp);
            (void)vigil_api_response_body(resp, &n);
        }
        vigil_api_response_free(resp);
    }
    for (size_t i = 0; i < nh; i++)
        free(lines[i]);
    free(start);
    return 0;
}
