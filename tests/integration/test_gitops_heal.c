/* GitOps self-healing end to end over loopback: vigil-collector runs as a
 * real process with its remediator in process (remediator.yaml with a
 * restore_file action); a drift report for a File with selfHeal, POSTed over
 * HTTP as vigil-gitopsd sends it, makes the hub's drift rule request
 * restore_file, which writes the blob's bytes to the path (byte for byte,
 * with its mode); the action shows succeeded in GET /v1/actions, the
 * decisions fired and then remediated in GET /v1/decisions; a path outside
 * the action's prefixes is refused and nothing is written there. */
#include <cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "httptest.h"
#include "proctest.h"
#include "testutil.h"

#define REV "0123456789abcdef0123456789abcdef01234567"

static long request(const pt_proc *d, const char *method, const char *path, const char *body,
                    char *out, size_t size)
{
    char url[600];
    http_result r;
    snprintf(url, sizeof(url), "%s%s", d->base, path);
    http_do(method, url, body, body ? strlen(body) : 0, NULL, &r);
    if (out)
        snprintf(out, size, "%s", r.body ? r.body : "");
    long st = r.status;
    http_result_free(&r);
    return st;
}

/* The status of the action on `target` in GET /v1/actions ("" when none). */
static void action_of(const pt_proc *d, const char *target, char *status, size_t size, char *id,
                      size_t isize)
{
    static char body[65536];
    status[0] = id[0] = '\0';
    if (request(d, "GET", "/v1/actions", NULL, body, sizeof(body)) != 200)
        return;
    cJSON *j = cJSON_Parse(body);
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(j, "actions"))
    {
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(a, "target"));
        if (!t || strcmp(t, target) != 0)
            continue;
        ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "policy")), "drift");
        ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "action")), "restore_file");
        snprintf(status, size, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(a, "status")));
        snprintf(id, isize, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(a, "id")));
    }
    cJSON_Delete(j);
}

static void wait_action(const pt_proc *d, const char *target, const char *want, char *id,
                        size_t isize)
{
    char status[64] = "";
    for (int64_t end = pt_mono_ms() + 20000; pt_mono_ms() < end; usleep(20000)) {
        action_of(d, target, status, sizeof(status), id, isize);
        if (strcmp(status, want) == 0)
            return;
    }
    pt_dump_log(d);
    ck_abort_msg("action on %s: status \"%s\", expected %s", target, status, want);
}

static char *drift_body(const char *name, const char *status, const char *path, const char *sha)
{
    static char body[3 * PATH_MAX];
    snprintf(body, sizeof(body),
             "{\"source\":\"web-01\",\"revision\":\"" REV "\",\"observed\":1700000000000,"
             "\"items\":[{\"target\":\"web-01/File/%s\",\"kind\":\"File\",\"name\":\"%s\","
             "\"status\":\"%s\",\"selfHeal\":true,\"diff\":[{\"field\":\"sha256\",\"desired\":"
             "\"%s\",\"observed\":null}],\"heal\":{\"action\":\"restore_file\",\"target\":"
             "\"web-01/File/%s\",\"params\":{\"path\":\"%s\",\"sha256\":\"%s\",\"mode\":"
             "\"0640\"}}}]}",
             name, name, status, sha, name, path, sha);
    return body;
}

START_TEST(drift_is_restored_byte_for_byte)
{
    const char *dir = vt_tmpdir();
    unsetenv("VIGIL_REMEDIATOR_SECRET");
    char path[PATH_MAX], outside[PATH_MAX], out[65536];
    snprintf(path, sizeof(path), "%s/blobs", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/managed", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    const char content[] = "Welcome to web-01.\nManaged by Vigil from git.\n\tbytes: \x01\x7f\n";
    unsigned char digest[32];
    char sha[65];
    ck_assert_int_eq(vigil__crypto_sha256(digest, content, sizeof(content) - 1), VIGIL_OK);
    for (int i = 0; i < 32; i++)
        snprintf(sha + 2 * i, 3, "%02x", digest[i]);
    snprintf(path, sizeof(path), "%s/blobs", dir);
    vt_write_file(path, sha, content, sizeof(content) - 1);
    snprintf(path, sizeof(path), "%s/managed", dir);
    vt_write_file(path, "motd", "edited by hand\n", 15);
    snprintf(path, sizeof(path), "%s/managed/motd", dir);
    snprintf(outside, sizeof(outside), "%s/outside.conf", dir);

    static const char remtext[] =
        "listen: 127.0.0.1:1                 # not served in process\n"
        "secret_env: VT_GH_UNSET_SECRET\n"
        "audit: sqlite://./rem.db\n"
        "guards: {cooldown: 0s}\n"
        "execution: {tick: 50ms}\n"
        "actions:\n"
        "  - name: restore_file\n"
        "    type: restore_file\n"
        "    targets: \"^[^/]+/File/.+$\"\n"
        "    blobs_dir: ./blobs\n"
        "    paths: [\"./managed/\"]\n"
        "    params: {path: \"^.+$\", sha256: \"^[0-9a-f]{64}$\", mode: \"^[0-7]{3,4}$\", "
        "owner: \"^[A-Za-z0-9_.-]{1,32}$\"}\n";
    vt_write_file(dir, "rem.yaml", remtext, sizeof(remtext) - 1);
    static const char cfgtext[] = "listen: 127.0.0.1:0\n"
                                  "store: sqlite://./vigil.db\n"
                                  "http: {threads: 2, timeout: 5s, drain_timeout: 5s}\n"
                                  "remediator: {inprocess: true, config: rem.yaml}\n"
                                  "drift: {cooldown: 1s}\n";
    char cfgpath[PATH_MAX];
    snprintf(cfgpath, sizeof(cfgpath), "%s",
             vt_write_file(dir, "collector.yaml", cfgtext, sizeof(cfgtext) - 1));

    pt_proc d;
    char *args[] = {(char *)pt_bin_path("vigil-collector"), "--config", cfgpath, NULL};
    pt_start(&d, "collector", args, dir, 1);

    /* the desired state of the host, then its drift */
    char body[PATH_MAX + 1024];
    snprintf(body, sizeof(body),
             "{\"source\":\"web-01\",\"revision\":\"" REV "\",\"resources\":[{\"target\":"
             "\"web-01/File/motd\",\"kind\":\"File\",\"name\":\"motd\",\"selfHeal\":true,"
             "\"spec\":{\"path\":\"%s\",\"sha256\":\"%s\",\"mode\":\"0640\"}}]}",
             path, sha);
    ck_assert_int_eq(request(&d, "PUT", "/v1/desired", body, out, sizeof(out)), 200);
    ck_assert_str_eq(out, "{\"source\":\"web-01\",\"revision\":\"" REV
                          "\",\"resources\":1,\"removed\":0}");
    ck_assert_int_eq(request(&d, "POST", "/v1/drift", drift_body("motd", "drifted", path, sha), out,
                             sizeof(out)),
                     200);
    ck_assert_str_eq(out, "{\"items\":1,\"drifted\":1,\"requested\":1}");

    char id[128];
    wait_action(&d, "web-01/File/motd", "succeeded", id, sizeof(id));
    char *got = pt_slurp(path);
    ck_assert_int_eq((int)strlen(got), (int)sizeof(content) - 1);
    ck_assert_int_eq(memcmp(got, content, sizeof(content) - 1), 0);
    free(got);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq((int)(st.st_mode & 0777), 0640);

    /* the next report shows it in sync: remediated */
    ck_assert_int_eq(request(&d, "POST", "/v1/drift", drift_body("motd", "in_sync", path, sha), out,
                             sizeof(out)),
                     200);
    ck_assert_str_eq(out, "{\"items\":1,\"drifted\":0,\"requested\":0}");
    ck_assert_int_eq(request(&d, "GET", "/v1/decisions", NULL, out, sizeof(out)), 200);
    char want[512];
    snprintf(want, sizeof(want),
             "\"policy\":\"drift\",\"series\":\"drift/web-01/File/motd\",\"target\":\"web-01/"
             "File/motd\",\"action\":\"restore_file\",\"action_id\":\"%s\",\"decision\":\"fired\"",
             id);
    ck_assert_msg(strstr(out, want) != NULL, "%s lacks %s", out, want);
    snprintf(want, sizeof(want), "\"action_id\":\"%s\",\"decision\":\"remediated\"", id);
    ck_assert_msg(strstr(out, want) != NULL, "%s lacks %s", out, want);
    ck_assert_int_eq(request(&d, "GET", "/v1/drift", NULL, out, sizeof(out)), 200);
    ck_assert_msg(strstr(out, "\"status\":\"in_sync\"") && strstr(out, "\"count\":1"), "%s", out);

    /* a manifest cannot make it write outside its prefixes */
    ck_assert_int_eq(request(&d, "POST", "/v1/drift", drift_body("evil", "drifted", outside, sha),
                             out, sizeof(out)),
                     200);
    ck_assert_str_eq(out, "{\"items\":1,\"drifted\":1,\"requested\":1}");
    wait_action(&d, "web-01/File/evil", "refused", id, sizeof(id));
    ck_assert_int_ne(access(outside, F_OK), 0);

    int rc = pt_stop(&d);
    if (rc != 0)
        pt_dump_log(&d);
    ck_assert_int_eq(rc, 0);
}
END_TEST

static Suite *gitops_heal_suite(void)
{
    Suite *s = suite_create("gitops_heal");
    TCase *tc = tcase_create("daemon");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, drift_is_restored_byte_for_byte);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gitops_heal_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
