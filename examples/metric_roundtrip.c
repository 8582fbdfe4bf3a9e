/*
 * metric_roundtrip - builds a batch of metrics, encodes it as the JSON body of
 * POST /v1/ingest, decodes that body back and prints each metric's series key.
 * Uses only the public API:
 *
 *   cc metric_roundtrip.c $(pkg-config --cflags --libs vigil) -o metric_roundtrip
 *
 * Exits 0 when the decoded batch matches the one that was encoded.
 */
#include <stdio.h>
#include <string.h>

#include <vigil/vigil.h>

static int fail(const char *what)
{
    const vigil_error *e = vigil_error_last();
    fprintf(stderr, "metric_roundtrip: %s: %s (%s)\n", what, e->message, vigil_strerror(e->code));
    return 1;
}

int main(void)
{
    vigil_batch *out = NULL, *in = NULL;
    vigil_buf body = VIGIL_BUF_INIT, key = VIGIL_BUF_INIT;
    int status = 1;

    if (vigil_batch_new(&out) != VIGIL_OK || vigil_batch_new(&in) != VIGIL_OK) {
        fail("vigil_batch_new");
        goto done;
    }
    if (vigil_batch_set_agent(out, "h1") != VIGIL_OK ||
        vigil_batch_set_id(out, "example-batch-1") != VIGIL_OK) {
        fail("ids");
        goto done;
    }

    /* Tags may come in any order; the batch keeps them sorted by key. */
    vigil_tag cpu_tags[] = {{"host", "h1"}, {"cpu", "0"}};
    vigil_tag disk_tags[] = {{"mount", "/var"}, {"host", "h1"}};
    vigil_tag http_tags[] = {{"check", "demo_health"}};
    vigil_metric metrics[] = {
        {"cpu_usage", 0.93, 1732650000000, cpu_tags, 2, NULL},
        {"disk_used_ratio", 0.5, 1732650000000, disk_tags, 2, NULL},
        {"load1", 1.25, 1732650000000, NULL, 0, NULL},
        /* A collector that failed: an error text and no value. */
        {"http_up", 0, 1732650000000, http_tags, 1, "connection refused"},
    };
    size_t n = sizeof(metrics) / sizeof(metrics[0]);
    for (size_t i = 0; i < n; i++) {
        if (vigil_batch_add(out, &metrics[i]) != VIGIL_OK) {
            fail("vigil_batch_add");
            goto done;
        }
    }

    if (vigil_batch_encode_json(&body, out) != VIGIL_OK) {
        fail("vigil_batch_encode_json");
        goto done;
    }
    printf("body: %s\n", body.ptr);

    if (vigil_batch_decode_json(in, body.ptr, body.size, NULL) != VIGIL_OK) {
        fail("vigil_batch_decode_json");
        goto done;
    }
    if (vigil_batch_count(in) != n || strcmp(vigil_batch_agent(in), "h1") != 0 ||
        strcmp(vigil_batch_id(in), "example-batch-1") != 0) {
        fprintf(stderr, "metric_roundtrip: decoded batch differs\n");
        goto done;
    }
    for (size_t i = 0; i < vigil_batch_count(in); i++) {
        const vigil_metric *m = vigil_batch_get(in, i);
        const vigil_metric *o = vigil_batch_get(out, i);
        if (vigil_metric_series_key(&key, m) != VIGIL_OK) {
            fail("vigil_metric_series_key");
            goto done;
        }
        if (m->error)
            printf("%s error=\"%s\"\n", key.ptr, m->error);
        else
            printf("%s %g @%lld\n", key.ptr, m->value, (long long)m->ts_ms);
        if (m->ts_ms != o->ts_ms || (!m->error && m->value != o->value)) {
            fprintf(stderr, "metric_roundtrip: metric %zu differs\n", i);
            goto done;
        }
    }

    /* Bad input is refused with a code and a message naming the JSON path. */
    const char *bad = "{\"metrics\":[{\"name\":\"cpu_usage\",\"value\":\"high\",\"ts\":1}]}";
    int rc = vigil_batch_decode_json(in, bad, strlen(bad), NULL);
    printf("refused: %s: %s\n", vigil_strerror(rc), vigil_error_last()->message);
    if (rc != VIGIL_ETYPE || vigil_batch_count(in) != 0)
        goto done;
    status = 0;

done:
    vigil_buf_dispose(&body);
    vigil_buf_dispose(&key);
    vigil_batch_free(out);
    vigil_batch_free(in);
    return status;
}
