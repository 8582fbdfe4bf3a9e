/*
 * Library-internal parts of the ingest client shared with the agent
 * (lib/agent). Never installed; not API.
 */
#ifndef VIGIL_CLIENT_INT_H
#define VIGIL_CLIENT_INT_H

#include "internal/common.h"
#include "vigil/client.h"

/* Encodes `batch` as an ingest body and gzips it into `out`; sets a random
 * batch id on the batch first when it has none. */
int vigil__client_encode(vigil_buf *out, vigil_batch *batch);

/* Makes sends give up with VIGIL_ECLOSED once `fd` is readable (the read end
 * of a self-pipe; -1 disables; only polled, never read): a backoff wait ends
 * at once, a transfer in progress may go on for `grace_ms` more (0: none). */
void vigil__client_set_cancel_fd(vigil_client *client, int fd, int64_t grace_ms);

/* As vigil_client_send_body() for a gzip body whose batch id (for logs) is
 * `batch_id`, with at most `max_attempts` rounds (0: the client's option) and,
 * when `deadline` is not 0, no request or wait past that vigil__monotonic_ms()
 * time. */
int vigil__client_send_gzip(vigil_client *client, const void *gz, size_t len, const char *batch_id,
                            unsigned int max_attempts, int64_t deadline);

#endif
