/* Helpers shared by the client suites (tests/unit/test_client.c,
 * tests/integration/test_client_http.c): options with short timeouts and a
 * captured log. Header-only. */
#ifndef VIGIL_CLIENT_TESTUTIL_H
#define VIGIL_CLIENT_TESTUTIL_H

#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "vigil/client.h"

static char g_log[65536];
static size_t g_log_len;

static inline void log_cb(const vigil_log_record *r, void *payload)
{
    (void)payload;
    vigil_buf b = VIGIL_BUF_INIT;
    if (vigil_log_format(&b, r) == VIGIL_OK && g_log_len + b.size + 2 < sizeof(g_log)) {
        memcpy(g_log + g_log_len, b.ptr, b.size);
        g_log_len += b.size;
        g_log[g_log_len++] = '\n';
        g_log[g_log_len] = '\0';
    }
    vigil_buf_dispose(&b);
}

static char g_urls[4][128];
static const char *g_url_ptrs[4];

static inline vigil_client_options fast_opts(int port)
{
    vigil_client_options o;
    ck_assert_int_eq(vigil_client_options_init(&o, VIGIL_CLIENT_OPTIONS_VERSION), VIGIL_OK);
    snprintf(g_urls[0], sizeof(g_urls[0]), "http://127.0.0.1:%d", port);
    g_url_ptrs[0] = g_urls[0];
    o.urls = g_url_ptrs;
    o.nurls = 1;
    o.connect_timeout_ms = 2000;
    o.request_timeout_ms = 3000;
    o.max_attempts = 3;
    o.backoff_base_ms = 2;
    o.backoff_max_ms = 10;
    o.retry_after_max_ms = 20;
    o.logger.cb = log_cb;
    o.logger.min_level = VIGIL_LOG_DEBUG;
    g_log_len = 0;
    g_log[0] = '\0';
    return o;
}

static inline vigil_client *new_client(const vigil_client_options *o)
{
    vigil_client *c = NULL;
    int rc = vigil_client_new(&c, o);
    ck_assert_msg(rc == VIGIL_OK, "client: %s", vigil_error_last()->message);
    return c;
}

static inline int is_hex32(const char *s)
{
    if (strlen(s) != 32)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

#endif
