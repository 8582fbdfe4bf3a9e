/* Events to Redis (collector.yaml `redis:`), against a real redis-server the
 * test starts on a free loopback port (redistest.h), and vigil-collector
 * processes: the hub's events (ingest rates, a policy's decision, the
 * action's result, a drift report) appear in the stream with their fields;
 * MAXLEN bounds it; two hubs on one stream each deliver the other's events
 * to their SSE clients exactly once; Redis killed during ingest: every
 * ingest is still acknowledged, drops are counted in /metrics, and after a
 * restart the hub reconnects and publishes again; a password from the
 * environment works and a wrong one is reported clearly (and never
 * logged); the config loader's errors for a bad `redis:` block. Skipped
 * with a message when redis-server is not installed. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "httptest.h"
#include "proctest.h"
#include "redistest.h"
#include "testutil.h"
#include "vigil/vigil.h"

#define DEADLINE_MS 20000

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A vigil-collector with `extra` appended to its config, killed with this
 * process (rt_spawn); waits for its "listening" line. */
static void hub_start(pt_proc *p, const char *dir, const char *name, const char *extra)
{
    char cfg[4096], file[64], path[PATH_MAX];
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "store: sqlite://%s/%s.db\n"
             "%s",
             dir, name, extra);
    snprintf(file, sizeof(file), "%s.yaml", name);
    vt_write_file(dir, file, cfg, strlen(cfg));
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->log, sizeof(p->log), "%s/%s.log", dir, name);
    char *args[] = {(char *)pt_bin_path("vigil-collector"), "--config", path, NULL};
    p->pid = rt_spawn(args, dir, p->log);
    static const char needle[] = "msg=listening address=127.0.0.1:";
    for (int64_t end = pt_mono_ms() + 20000; !p->port && pt_mono_ms() < end;) {
        char *s = pt_slurp(p->log);
        const char *at = strstr(s, needle);
        if (at)
            p->port = atoi(at + strlen(needle));
        free(s);
        int st;
        if (!p->port && waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            pt_dump_log(p);
            ck_abort_msg("%s exited before listening", name);
        }
        if (!p->port)
            usleep(10000);
    }
    if (!p->port)
        pt_dump_log(p);
    ck_assert_msg(p->port > 0, "%s did not log its address", name);
    snprintf(p->base, sizeof(p->base), "http://127.0.0.1:%d", p->port);
}

static long ingest(const pt_proc *hub, const char *batch_id, const char *name, double value)
{
    char body[512], url[128];
    snprintf(body, sizeof(body),
             "{\"agent\":\"h1\",\"batch_id\":\"%s\",\"metrics\":[{\"name\":\"%s\",\"value\":%g,"
             "\"ts\":%lld,\"tags\":{\"host\":\"h1\"}}]}",
             batch_id, name, value, (long long)now_ms());
    snprintf(url, sizeof(url), "%s/v1/ingest", hub->base);
    http_result r;
    http_do("POST", url, body, strlen(body), NULL, &r);
    long st = r.status;
    http_result_free(&r);
    return st;
}

/* POST /v1/drift with `revision` as a marker: a "drift" event. */
static void drift(const pt_proc *hub, const char *revision)
{
    char body[512], url[128];
    snprintf(body, sizeof(body),
             "{\"source\":\"vt-src\",\"revision\":\"%s\",\"items\":[{\"target\":\"vt-src/File/f\","
             "\"kind\":\"File\",\"name\":\"f\",\"status\":\"in_sync\"}]}",
             revision);
    snprintf(url, sizeof(url), "%s/v1/drift", hub->base);
    http_result r;
    http_do("POST", url, body, strlen(body), NULL, &r);
    ck_assert_msg(r.status == 200, "drift: %ld %s", r.status, r.body);
    http_result_free(&r);
}

/* The value of a /metrics line that starts with `series` + ' ', or -1. */
static double metric(const pt_proc *hub, const char *series)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/metrics", hub->base);
    http_result r;
    http_do("GET", url, NULL, 0, NULL, &r);
    double v = -1;
    size_t n = strlen(series);
    for (const char *line = r.body; line && *line;) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    http_result_free(&r);
    return v;
}

/* Waits until metric(series) >= min; its value. */
static double wait_metric(const pt_proc *hub, const char *series, double min)
{
    double v = -1;
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; pt_mono_ms() < end; usleep(20000))
        if ((v = metric(hub, series)) >= min)
            return v;
    pt_dump_log(hub);
    ck_abort_msg("%s: %s stayed at %g, expected >= %g", hub->name, series, v, min);
    return v;
}

static int log_has(const pt_proc *p, const char *needle)
{
    char *s = pt_slurp(p->log);
    int found = strstr(s, needle) != NULL;
    free(s);
    return found;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- the stream's entries ------------------------------------------------------- */

START_TEST(events_reach_the_stream_with_their_fields)
{
    if (!rt_have_redis("events_reach_the_stream_with_their_fields"))
        return;
    rt_redis rd = {0};
    rt_redis_start(&rd, NULL);
    const char *dir = vt_tmpdir();
    char extra[1024];
    snprintf(extra, sizeof(extra),
             "events: {interval: 100ms}\n"
             "redis: {url: \"redis://127.0.0.1:%d/0\", stream: \"vt:events\", hub_id: hub-a}\n"
             "policies:\n"
             "  - {name: vt_high, kind: threshold, metric: vt_temp, match: {host: \"*\"}, window: "
             "1s, aggregate: last,"
             " op: \">\", threshold: 10, for: 0s, action: vt_act, target: \"{{tags.host}}\"}\n",
             rd.port);
    pt_proc hub;
    hub_start(&hub, dir, "hub-a", extra);
    ck_assert_int_eq(ingest(&hub, "b1", "vt_temp", 50), 202);
    drift(&hub, "rev-stream-1");

    int seen_ingest = 0, seen_decision = 0, seen_action = 0, seen_drift = 0;
    int64_t t0 = now_ms();
    for (int64_t end = pt_mono_ms() + DEADLINE_MS;
         pt_mono_ms() < end && !(seen_ingest && seen_decision && seen_action && seen_drift);
         usleep(50000)) {
        const char *argv[] = {"XRANGE", "vt:events", "-", "+"};
        redisReply *rep = rt_cmd(&rd, 4, argv);
        ck_assert_ptr_nonnull(rep);
        ck_assert_int_eq(rep->type, REDIS_REPLY_ARRAY);
        for (size_t i = 0; i < rep->elements; i++) {
            redisReply *e = rep->element[i];
            ck_assert_int_eq(e->type, REDIS_REPLY_ARRAY);
            ck_assert_uint_eq(e->elements, 2);
            redisReply *f = e->element[1];
            /* origin, type, data, ts: in that order */
            ck_assert_uint_eq(f->elements, 8);
            ck_assert_str_eq(f->element[0]->str, "origin");
            ck_assert_str_eq(f->element[1]->str, "hub-a");
            ck_assert_str_eq(f->element[2]->str, "type");
            ck_assert_str_eq(f->element[4]->str, "data");
            ck_assert_str_eq(f->element[6]->str, "ts");
            long long ts = atoll(f->element[7]->str);
            ck_assert_msg(ts >= t0 - 60000 && ts <= now_ms() + 1000, "ts %lld", ts);
            const char *type = f->element[3]->str;
            cJSON *data = cJSON_Parse(f->element[5]->str);
            ck_assert_msg(data != NULL, "data is not JSON: %s", f->element[5]->str);
            if (strcmp(type, "ingest") == 0) {
                ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(data, "samples_per_second")));
                seen_ingest = 1;
            } else if (strcmp(type, "decision") == 0) {
                cJSON *pol = cJSON_GetObjectItem(data, "policy");
                ck_assert(cJSON_IsString(pol));
                ck_assert_str_eq(pol->valuestring, "vt_high");
                if (strcmp(cJSON_GetObjectItem(data, "decision")->valuestring, "fired") == 0) {
                    ck_assert_str_eq(cJSON_GetObjectItem(data, "target")->valuestring, "h1");
                    seen_decision = 1;
                }
            } else if (strcmp(type, "action") == 0) {
                ck_assert_str_eq(cJSON_GetObjectItem(data, "action")->valuestring, "vt_act");
                seen_action = 1;
            } else if (strcmp(type, "drift") == 0) {
                ck_assert_str_eq(cJSON_GetObjectItem(data, "revision")->valuestring,
                                 "rev-stream-1");
                ck_assert_str_eq(cJSON_GetObjectItem(data, "source")->valuestring, "vt-src");
                seen_drift = 1;
            }
            cJSON_Delete(data);
        }
        freeReplyObject(rep);
    }
    if (!(seen_ingest && seen_decision && seen_action && seen_drift))
        pt_dump_log(&hub);
    ck_assert_msg(seen_ingest && seen_decision && seen_action && seen_drift,
                  "ingest %d decision %d action %d drift %d", seen_ingest, seen_decision,
                  seen_action, seen_drift);
    ck_assert_double_ge(metric(&hub, "vigil_redis_published_total"), 4);
    ck_assert_double_eq(metric(&hub, "vigil_redis_connected"), 1);
    ck_assert_double_eq(metric(&hub, "vigil_redis_dropped_total{reason=\"queue_full\"}"), 0);
    ck_assert(log_has(&hub, "msg=\"connected; publishing events\""));
    ck_assert_int_eq(pt_stop(&hub), 0);
    rt_redis_stop(&rd);
}
END_TEST

START_TEST(maxlen_bounds_the_stream)
{
    if (!rt_have_redis("maxlen_bounds_the_stream"))
        return;
    rt_redis rd = {0};
    rt_redis_start(&rd, NULL);
    const char *dir = vt_tmpdir();
    char extra[512];
    snprintf(extra, sizeof(extra),
             "events: {interval: 10ms}\n"
             "redis: {url: \"redis://127.0.0.1:%d\", stream: \"vt:bounded\", maxlen: 30}\n",
             rd.port);
    pt_proc hub;
    hub_start(&hub, dir, "hub-m", extra);
    wait_metric(&hub, "vigil_redis_published_total", 300);
    long long n = rt_xlen(&rd, "vt:bounded");
    /* MAXLEN ~ trims whole nodes (10 entries: --stream-node-max-entries) */
    ck_assert_msg(n >= 30 && n <= 40, "XLEN %lld after 300 events, maxlen 30", n);
    ck_assert_int_eq(pt_stop(&hub), 0);
    rt_redis_stop(&rd);
}
END_TEST

/* ---- two hubs on one stream ------------------------------------------------------ */

typedef struct sse {
    int fd;
    char buf[1 << 20];
    size_t len;
} sse;

static void sse_open(sse *s, const pt_proc *hub)
{
    s->fd = raw_connect(NULL, hub->port);
    ck_assert_int_ge(s->fd, 0);
    static const char req[] = "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    raw_send(s->fd, req, sizeof(req) - 1);
    s->len = 0;
    s->buf[0] = '\0';
}

/* Reads what arrived until `needle` is in the stream (or the deadline). */
static int sse_wait(sse *s, const char *needle)
{
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; pt_mono_ms() < end;) {
        if (strstr(s->buf, needle))
            return 1;
        int closed = 0;
        size_t got = raw_recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len, 100, &closed);
        s->len += got;
        ck_assert_msg(s->len < sizeof(s->buf) - 1, "SSE buffer full");
        ck_assert_msg(!closed, "the SSE stream ended");
    }
    return strstr(s->buf, needle) != NULL;
}

START_TEST(two_hubs_see_each_others_events_once)
{
    if (!rt_have_redis("two_hubs_see_each_others_events_once"))
        return;
    rt_redis rd = {0};
    rt_redis_start(&rd, NULL);
    const char *dir = vt_tmpdir();
    char extra[512];
    pt_proc a, b;
    snprintf(extra, sizeof(extra),
             "events: {interval: 200ms}\n"
             "redis: {url: \"redis://127.0.0.1:%d\", stream: \"vt:shared\", subscribe: true,"
             " hub_id: hub-a}\n",
             rd.port);
    hub_start(&a, dir, "hub-a", extra);
    snprintf(extra, sizeof(extra),
             "events: {interval: 200ms}\n"
             "redis: {url: \"redis://127.0.0.1:%d\", stream: \"vt:shared\", subscribe: true,"
             " hub_id: hub-b}\n",
             rd.port);
    hub_start(&b, dir, "hub-b", extra);
    /* each reader is reading: it has delivered the other's ingest events */
    wait_metric(&a, "vigil_redis_received_total", 1);
    wait_metric(&b, "vigil_redis_received_total", 1);

    static sse sa, sb;
    sse_open(&sa, &a);
    sse_open(&sb, &b);
    ck_assert(sse_wait(&sa, ": connected"));
    ck_assert(sse_wait(&sb, ": connected"));

    drift(&a, "rev-from-a-1");
    drift(&b, "rev-from-b-1");
    /* markers after them: once a marker is in, the events before it are too */
    drift(&a, "rev-marker-a");
    drift(&b, "rev-marker-b");
    ck_assert_msg(sse_wait(&sb, "rev-marker-a"), "hub B's client never saw A's marker");
    ck_assert_msg(sse_wait(&sb, "rev-marker-b"), "hub B's client never saw its own marker");
    ck_assert_msg(sse_wait(&sa, "rev-marker-b"), "hub A's client never saw B's marker");
    ck_assert_msg(sse_wait(&sa, "rev-marker-a"), "hub A's client never saw its own marker");
    /* a later round trip: a double would have arrived by now */
    drift(&a, "rev-marker-a2");
    drift(&b, "rev-marker-b2");
    ck_assert(sse_wait(&sb, "rev-marker-a2") && sse_wait(&sb, "rev-marker-b2"));
    ck_assert(sse_wait(&sa, "rev-marker-a2") && sse_wait(&sa, "rev-marker-b2"));

    ck_assert_int_eq(count_of(sb.buf, "\"revision\":\"rev-from-a-1\""), 1);
    ck_assert_int_eq(count_of(sb.buf, "\"revision\":\"rev-from-b-1\""), 1);
    ck_assert_int_eq(count_of(sa.buf, "\"revision\":\"rev-from-a-1\""), 1);
    ck_assert_int_eq(count_of(sa.buf, "\"revision\":\"rev-from-b-1\""), 1);
    /* another hub's ingest rates name it (a client must not mix the hubs' running
     * totals); this hub's own do not */
    ck_assert_msg(sse_wait(&sb, "event: ingest\ndata: {\"hub\":\"hub-a\",\"ts\":"),
                  "hub B's client never saw A's ingest rates with \"hub\"");
    ck_assert_msg(sse_wait(&sa, "event: ingest\ndata: {\"hub\":\"hub-b\",\"ts\":"),
                  "hub A's client never saw B's ingest rates with \"hub\"");
    ck_assert_ptr_null(strstr(sb.buf, "\"hub\":\"hub-b\""));
    ck_assert_ptr_null(strstr(sa.buf, "\"hub\":\"hub-a\""));
    /* the SSE frame of another hub's event is an ordinary one */
    ck_assert_ptr_nonnull(strstr(sb.buf, "event: drift\ndata: {\"source\":\"vt-src\","
                                         "\"revision\":\"rev-from-a-1\""));
    close(sa.fd);
    close(sb.fd);
    ck_assert_int_eq(pt_stop(&a), 0);
    ck_assert_int_eq(pt_stop(&b), 0);
    rt_redis_stop(&rd);
}
END_TEST

/* ---- an outage during ingest ------------------------------------------------------- */

START_TEST(redis_outage_never_blocks_ingest)
{
    if (!rt_have_redis("redis_outage_never_blocks_ingest"))
        return;
    rt_redis rd = {0};
    rt_redis_start(&rd, NULL);
    const char *dir = vt_tmpdir();
    char extra[512];
    snprintf(extra, sizeof(extra),
             "events: {interval: 20ms}\n"
             "redis: {url: \"redis://127.0.0.1:%d\", stream: \"vt:outage\", queue: 20}\n",
             rd.port);
    pt_proc hub;
    hub_start(&hub, dir, "hub-o", extra);
    char id[32];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "before-%d", i);
        ck_assert_int_eq(ingest(&hub, id, "vt_load", i), 202);
    }
    wait_metric(&hub, "vigil_redis_published_total", 5);

    rt_redis_kill(&rd);
    /* the publisher notices at its next write */
    for (int64_t end = pt_mono_ms() + DEADLINE_MS;
         metric(&hub, "vigil_redis_connected") != 0 && pt_mono_ms() < end;)
        usleep(20000);
    ck_assert_double_eq(metric(&hub, "vigil_redis_connected"), 0);
    int64_t worst = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "during-%d", i);
        int64_t t = pt_mono_ms();
        ck_assert_int_eq(ingest(&hub, id, "vt_load", i), 202);
        if (pt_mono_ms() - t > worst)
            worst = pt_mono_ms() - t;
    }
    /* 20 ms events into a queue of 20: full within a second */
    wait_metric(&hub, "vigil_redis_dropped_total{reason=\"queue_full\"}", 1);
    ck_assert_double_eq(metric(&hub, "vigil_redis_queue_depth"), 20);
    ck_assert_double_ge(metric(&hub, "vigil_redis_connect_failures_total{connection=\"publish\"}"),
                        1);
    ck_assert(log_has(&hub, "msg=\"connection lost; events queue until it is back"));
    ck_assert(log_has(&hub, "msg=\"cannot connect; retrying with backoff\" connection=publish"));
    ck_assert_double_eq(metric(&hub, "vigil_ingest_batches_total"), 120);
    fprintf(stderr, "redis_outage_never_blocks_ingest: slowest ingest during the outage %lld ms\n",
            (long long)worst);

    rt_redis_start(&rd, NULL); /* the same port */
    wait_metric(&hub, "vigil_redis_reconnects_total", 1);
    wait_metric(&hub, "vigil_redis_connected", 1);
    ck_assert(log_has(&hub, "msg=\"reconnected; publishing events\""));
    for (int64_t end = pt_mono_ms() + DEADLINE_MS;
         rt_xlen(&rd, "vt:outage") < 25 && pt_mono_ms() < end;)
        usleep(20000);
    /* the 20 queued during the outage, then new ones */
    ck_assert_int_ge(rt_xlen(&rd, "vt:outage"), 25);
    ck_assert_int_eq(ingest(&hub, "after-1", "vt_load", 1), 202);
    ck_assert_int_eq(pt_stop(&hub), 0);
    rt_redis_stop(&rd);
}
END_TEST

/* ---- passwords ------------------------------------------------------------------ */

START_TEST(password_from_the_environment)
{
    if (!rt_have_redis("password_from_the_environment"))
        return;
    rt_redis rd = {0};
    rt_redis_start(&rd, "vt-redis-secret-pw");
    setenv("VT_REDIS_PW", "vt-redis-secret-pw", 1);
    setenv("VT_REDIS_BAD_PW", "vt-wrong-pw-98765", 1);
    const char *dir = vt_tmpdir();
    char extra[512];
    pt_proc good, bad;
    snprintf(extra, sizeof(extra),
             "events: {interval: 50ms}\n"
             "redis: {url: \"redis://127.0.0.1:%d\", stream: \"vt:auth\", password_env: "
             "VT_REDIS_PW, hub_id: good}\n",
             rd.port);
    hub_start(&good, dir, "good", extra);
    snprintf(extra, sizeof(extra),
             "events: {interval: 50ms}\n"
             "redis: {url: \"redis://127.0.0.1:%d\", stream: \"vt:auth\", password_env: "
             "VT_REDIS_BAD_PW, hub_id: bad}\n",
             rd.port);
    hub_start(&bad, dir, "bad", extra);
    wait_metric(&good, "vigil_redis_published_total", 5);
    ck_assert_int_ge(rt_xlen(&rd, "vt:auth"), 5);
    wait_metric(&bad, "vigil_redis_connect_failures_total{connection=\"publish\"}", 2);
    ck_assert_double_eq(metric(&bad, "vigil_redis_connected"), 0);
    ck_assert_double_eq(metric(&bad, "vigil_redis_published_total"), 0);
    char *log = pt_slurp(bad.log);
    ck_assert_msg(strstr(log, "level=error component=redis msg=\"authentication failed; retrying "
                              "with backoff\" connection=publish") != NULL,
                  "%s", log);
    ck_assert_ptr_nonnull(strstr(log, "authentication refused with the password of "
                                      "$VT_REDIS_BAD_PW"));
    ck_assert_ptr_nonnull(strstr(log, "WRONGPASS"));
    /* logged once per outage, not per attempt; the password itself never */
    ck_assert_int_eq(count_of(log, "authentication failed"), 1);
    ck_assert_ptr_null(strstr(log, "vt-wrong-pw-98765"));
    free(log);
    /* the good hub's entries only */
    const char *argv[] = {"XRANGE", "vt:auth", "-", "+"};
    redisReply *rep = rt_cmd(&rd, 4, argv);
    ck_assert_ptr_nonnull(rep);
    for (size_t i = 0; i < rep->elements; i++)
        ck_assert_str_eq(rep->element[i]->element[1]->element[1]->str, "good");
    freeReplyObject(rep);
    ck_assert_int_eq(pt_stop(&good), 0);
    ck_assert_int_eq(pt_stop(&bad), 0);
    rt_redis_stop(&rd);
}
END_TEST

/* ---- configuration and options --------------------------------------------------- */

static void load_fails(const char *text, int code, const char *needle)
{
    vigil_hub_config *c = NULL;
    int rc = vigil_hub_config_load_string(&c, text, strlen(text), "collector.yaml", NULL);
    ck_assert_msg(rc == code, "expected %d, got %d (%s) for:\n%s", code, rc,
                  vigil_error_last()->message, text);
    vt_assert_error(code, needle);
    ck_assert_ptr_null(c);
}

START_TEST(config_redis)
{
    static const char ok[] = "redis: {url: \"redis://cache.example:6380/2\", stream: \"a:b\","
                             " maxlen: 5000, queue: 100, password_env: VT_CFG_PW, subscribe: true,"
                             " hub_id: hub-1}\n";
    setenv("VT_CFG_PW", "pw", 1);
    vigil_hub_config *c = NULL;
    ck_assert_int_eq(vigil_hub_config_load_string(&c, ok, strlen(ok), "collector.yaml", NULL),
                     VIGIL_OK);
    const vigil_hub_options *o = vigil_hub_config_hub(c);
    ck_assert_uint_eq(o->version, 3);
    ck_assert_str_eq(o->redis_url, "redis://cache.example:6380/2");
    ck_assert_str_eq(o->redis_stream, "a:b");
    ck_assert_uint_eq(o->redis_maxlen, 5000);
    ck_assert_uint_eq(o->redis_queue_max, 100);
    ck_assert_str_eq(o->redis_password_env, "VT_CFG_PW");
    ck_assert_int_eq(o->redis_subscribe, 1);
    ck_assert_str_eq(o->redis_hub_id, "hub-1");
    vigil_hub_config_free(c);

    load_fails("redis: {stream: x}\n", VIGIL_EMISSING, "url");
    load_fails("redis: {url: \"redis://u:secret@h:6379\"}\n", VIGIL_EVALUE,
               "collector.yaml:1:14: redis.url: a user or password in the URL is refused: put "
               "the password in the environment variable named by password_env");
    load_fails("redis: {url: \"rediss://h:6379\"}\n", VIGIL_EVALUE,
               "rediss:// (TLS) is not supported");
    load_fails("redis: {url: \"http://h:6379\"}\n", VIGIL_EVALUE,
               "expected redis://host[:port][/db], got \"http://h:6379\"");
    load_fails("redis: {url: \"redis://h:99999\"}\n", VIGIL_EVALUE,
               "expected a port from 1 to 65535");
    load_fails("redis: {url: \"redis://h/x\"}\n", VIGIL_EVALUE,
               "expected a database number after /, got \"x\"");
    load_fails("redis: {url: \"redis://:6379\"}\n", VIGIL_EVALUE, "expected a host name");
    load_fails("redis: {url: \"redis://h\", password_env: VT_CFG_UNSET_PW}\n", VIGIL_EENV,
               "redis.password_env: environment variable \"VT_CFG_UNSET_PW\" (the Redis "
               "password) is not set");
    load_fails("redis: {url: \"redis://h\", password: x}\n", VIGIL_EUNKNOWNKEY,
               "redis.password: unknown key");
    load_fails("redis: {url: \"redis://h\", maxlen: 0}\n", VIGIL_ERANGE, "maxlen");
    load_fails("redis: {url: \"redis://h\", subscribe: maybe}\n", VIGIL_EVALUE,
               "redis.subscribe: expected a boolean");
}
END_TEST

START_TEST(hub_options_redis)
{
    /* version 2 callers: their struct ends before the redis fields */
    union {
        vigil_hub_options o;
        unsigned char bytes[sizeof(vigil_hub_options)];
    } u;
    memset(&u, 0xA5, sizeof(u));
    ck_assert_int_eq(vigil_hub_options_init(&u.o, 2), VIGIL_OK);
    ck_assert_uint_eq(u.o.version, 2);
    ck_assert_uint_eq(u.bytes[offsetof(vigil_hub_options, redis_url)], 0xA5);
    ck_assert_uint_eq(u.bytes[sizeof(u) - 1], 0xA5);
    ck_assert_ptr_null(u.o.remediators);
    memset(&u, 0xA5, sizeof(u));
    ck_assert_int_eq(vigil_hub_options_init(&u.o, 1), VIGIL_OK);
    ck_assert_uint_eq(u.bytes[offsetof(vigil_hub_options, remediator_ca_file)], 0xA5);

    vigil_hub_options o = VIGIL_HUB_OPTIONS_INIT;
    o.store_url = "sqlite://:memory:";
    o.redis_url = "redis://127.0.0.1:1";
    o.redis_hub_id = "bad id!";
    vigil_hub *hub = NULL;
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "redis hub_id: 1-128 bytes");
    o.redis_hub_id = NULL;
    o.redis_stream = "has space";
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "redis stream: 1-200 bytes");
    o.redis_stream = NULL;
    o.redis_password_env = "VT_OPT_UNSET_PW";
    unsetenv("VT_OPT_UNSET_PW");
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "the variable \"VT_OPT_UNSET_PW\" is not set or is empty");
    /* a version 2 struct's redis fields are never read */
    o.version = 2;
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_OK);
    vigil_hub_free(hub);
    /* nothing listens on port 1: the hub starts, ingests and stops all the same */
    o.version = VIGIL_HUB_OPTIONS_VERSION;
    o.redis_password_env = NULL;
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    vigil_metric m = {0};
    m.name = "x";
    m.value = 1;
    m.ts_ms = now_ms();
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_ingest(hub, b, NULL), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_publish(hub, "custom.x", "{\"a\":1}"), VIGIL_OK);
    int64_t t = pt_mono_ms();
    vigil_hub_free(hub);
    ck_assert_int_lt(pt_mono_ms() - t, 3000);
    vigil_batch_free(b);
}
END_TEST

static Suite *redis_suite(void)
{
    Suite *s = suite_create("redis");
    TCase *tc = tcase_create("redis");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, config_redis);
    tcase_add_test(tc, hub_options_redis);
    tcase_add_test(tc, events_reach_the_stream_with_their_fields);
    tcase_add_test(tc, maxlen_bounds_the_stream);
    tcase_add_test(tc, two_hubs_see_each_others_events_once);
    tcase_add_test(tc, redis_outage_never_blocks_ingest);
    tcase_add_test(tc, password_from_the_environment);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(redis_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
