/* Private interface of lib/httpd: the `listen:` and `http:` configuration
 * blocks shared by collector.yaml and remediator.yaml. Never installed. */
#ifndef VIGIL_HTTPD_INTERNAL_H
#define VIGIL_HTTPD_INTERNAL_H

#include "api/internal.h"
#include "internal/common.h"
#include "vigil/config.h"
#include "vigil/httpd.h"

/* Fills `opts` (which the caller initialised) from `listen` (a scalar, may be
 * NULL) and `http` (a map, may be NULL); strings are borrowed from the
 * configuration. `max_inflated` and `drain_timeout_ms` receive http.max_inflated
 * and http.drain_timeout (0 when absent). */
int vigil__httpd_parse(vigil_httpd_options *opts, uint64_t *max_inflated, int64_t *drain_timeout_ms,
                       const vigil_config_node *listen, const vigil_config_node *http);

/* The server part of a daemon's configuration, shared by collector.yaml and
 * remediator.yaml: `listen`, `http` and `security` of `root` into `httpd`
 * and `api` (both initialised by the caller). The api borrows its tokens and
 * origins from `sec`, which must outlive it; `*drain_timeout_ms` is set only
 * when http.drain_timeout is given. Located errors as vigil__httpd_parse()
 * and vigil__api_security_parse(). */
int vigil__httpd_server_parse(const vigil_config_node *root, vigil_httpd_options *httpd,
                              vigil_api_options *api, vigil__api_security *sec,
                              int64_t *drain_timeout_ms);

#endif
