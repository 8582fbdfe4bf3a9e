/*
 * inprocess_loop - the whole loop in one process, no HTTP at all: a hub and a
 * remediator created side by side and joined by library calls.
 *
 *   inprocess_loop
 *
 * In a fresh temporary directory it creates
 *   - a hub on a SQLite file (samples, actions ledger, decisions), with a
 *     threshold policy loaded into its engine (vigil_hub_engine()): when
 *     process_up{process="demo"} drops below 1, request restart_demo for it;
 *   - a remediator on another SQLite file (ledger, guards, audit chain), with
 *     one `exec` action configured from a YAML string as remediator.yaml
 *     would: /bin/echo with the target as one whole argv element;
 * then attaches the remediator to the hub in process
 * (vigil_hub_attach_remediator(): the hub dispatches to it with library calls
 * and its late results go to vigil_hub_action_result()).
 *
 * It ingests a batch where the demo is down (the policy fires, the hub
 * dispatches, the remediator runs /bin/echo and the result comes back as
 * "succeeded", which starts the policy's verification), then a batch where
 * the demo is up again (the policy records "remediated": recovered after the
 * action succeeded). It waits for each step a few seconds at most, prints the
 * decisions, the action's result and the audit chain's verification, removes
 * its directory and exits 0; on any failure it prints why and exits 1.
 *
 * Build against an installed libvigil:
 *   cc -o inprocess_loop inprocess_loop.c $(pkg-config --cflags --libs vigil)
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vigil/policy.h>
#include <vigil/remediator.h>
#include <vigil/vigil.h>

#define WAIT_MS 10000 /* bound of each wait */

static const char policies_yaml[] = "- name: demo_down\n"
                                    "  kind: threshold\n"
                                    "  metric: process_up\n"
                                    "  match: {process: demo}\n"
                                    "  window: 1s\n"
                                    "  aggregate: last\n"
                                    "  op: \"<\"\n"
                                    "  threshold: 1\n"
                                    "  action: restart_demo\n"
                                    "  target: \"{{tags.process}}\"\n"
                                    "  verify: {within: 30s}\n";

static const char actions_yaml[] = "actions:\n"
                                   "  - name: restart_demo\n"
                                   "    type: exec\n"
                                   "    argv: [\"/bin/echo\", \"restarting\", \"{{target}}\"]\n"
                                   "    targets: \"^demo$\"\n"
                                   "    timeout: 5s\n";

static int fail(const char *what)
{
    const vigil_error *e = vigil_error_last();
    fprintf(stderr, "inprocess_loop: %s: %s\n", what,
            e->message[0] ? e->message : vigil_strerror(e->code));
    return 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Removes the files of `dir` (the stores, their WAL files, the audit key),
 * then `dir`. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char path[4096];
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int ingest(vigil_hub *hub, const char *batch_id, double up)
{
    vigil_batch *b = NULL;
    vigil_tag tags[] = {{"host", "example"}, {"process", "demo"}};
    vigil_metric m = {"process_up", up, now_ms(), tags, 2, NULL};
    vigil_hub_ingest_result r = VIGIL_HUB_INGEST_RESULT_INIT;
    int rc = vigil_batch_new(&b);
    if (!rc)
        rc = vigil_batch_set_agent(b, "example");
    if (!rc)
        rc = vigil_batch_set_id(b, batch_id);
    if (!rc)
        rc = vigil_batch_add(b, &m);
    if (!rc)
        rc = vigil_hub_ingest(hub, b, &r);
    vigil_batch_free(b);
    if (!rc)
        printf("ingested %s: process_up{process=\"demo\"} = %g (%zu stored)\n", batch_id, up,
               r.accepted);
    return rc;
}

/* ---- reading the hub's ledger and decisions ------------------------------------ */

typedef struct find_decision {
    const char *decision;
    int found;
} find_decision;

static int on_find_decision(const vigil_store_decision *d, void *payload)
{
    find_decision *f = payload;
    if (strcmp(d->decision, f->decision) == 0)
        f->found = 1;
    return 0;
}

static int has_decision(vigil_hub *hub, const char *decision)
{
    find_decision f = {decision, 0};
    if (vigil_store_decision_list(vigil_hub_store(hub), NULL, on_find_decision, &f) != VIGIL_OK)
        return -1;
    return f.found;
}

static int on_final_action(const vigil_store_action *a, void *payload)
{
    int *final = payload;
    if (strcmp(a->status, "pending") != 0 && strcmp(a->status, "running") != 0)
        *final = strcmp(a->status, "succeeded") == 0 ? 1 : -1;
    return 0;
}

/* 1 when the (only) action has succeeded, -1 when it ended otherwise, 0 while
 * it is pending or there is none yet. */
static int action_outcome(vigil_hub *hub)
{
    int final = 0;
    if (vigil_store_action_list(vigil_hub_store(hub), NULL, on_final_action, &final) != VIGIL_OK)
        return -1;
    return final;
}

static int print_decision(const vigil_store_decision *d, void *payload)
{
    (void)payload;
    printf("  decision %-10s policy=%s target=%s action=%s action_id=%s reason=\"%s\"\n",
           d->decision, d->policy, d->target ? d->target : "", d->action ? d->action : "",
           d->action_id ? d->action_id : "", d->reason ? d->reason : "");
    return 0;
}

static int print_action(const vigil_store_action *a, void *payload)
{
    (void)payload;
    size_t n = a->output ? strlen(a->output) : 0;
    while (n && a->output[n - 1] == '\n')
        n--;
    printf("  action %s %s(%s): %s, output \"%.*s\", %lld ms\n", a->id, a->action, a->target,
           a->status, (int)n, a->output ? a->output : "", (long long)a->duration_ms);
    return 0;
}

/* ---- the loop ------------------------------------------------------------------- */

static int run(const char *dir)
{
    char hub_url[4200], rem_url[4200];
    snprintf(hub_url, sizeof(hub_url), "sqlite://%s/hub.db", dir);
    snprintf(rem_url, sizeof(rem_url), "sqlite://%s/remediator.db", dir);
    vigil_logger quiet = VIGIL_LOGGER_INIT;
    quiet.min_level = VIGIL_LOG_WARN;

    vigil_hub *hub = NULL;
    vigil_remediator *rem = NULL;
    vigil_config *policies = NULL, *actions = NULL;
    int status = 1;

    /* the hub, and the policy in its engine */
    vigil_hub_options ho = VIGIL_HUB_OPTIONS_INIT;
    ho.store_url = hub_url;
    ho.logger = quiet;
    if (vigil_hub_new(&hub, &ho)) {
        fail("hub");
        goto out;
    }
    if (vigil_config_load_string(&policies, policies_yaml, strlen(policies_yaml), "policies",
                                 NULL) ||
        vigil_engine_load(vigil_hub_engine(hub), vigil_config_root(policies, 0))) {
        fail("policies");
        goto out;
    }

    /* the remediator, its action configured from YAML, attached to the hub:
     * the hub dispatches to it in process, its late results go to the hub */
    vigil_remediator_options ro = VIGIL_REMEDIATOR_OPTIONS_INIT;
    if (vigil_config_load_string(&actions, actions_yaml, strlen(actions_yaml), "actions", NULL)) {
        fail("actions");
        goto out;
    }
    ro.store_url = rem_url;
    ro.actions = vigil_config_node_get(vigil_config_root(actions, 0), "actions");
    ro.logger = quiet;
    if (vigil_hub_attach_remediator(hub, &ro, &rem)) {
        fail("remediator");
        goto out;
    }
    if (vigil_hub_start(hub)) {
        fail("start");
        goto out;
    }

    /* the demo is down: the policy fires and the action runs */
    if (ingest(hub, "batch-1", 0)) {
        fail("ingest");
        goto out;
    }
    int outcome = 0;
    for (int64_t end = now_ms() + WAIT_MS; outcome == 0 && now_ms() < end;) {
        outcome = action_outcome(hub);
        if (outcome == 0)
            sleep_ms(20);
    }
    if (outcome != 1) {
        fprintf(stderr, "inprocess_loop: the action did not succeed within %d ms\n", WAIT_MS);
        goto report;
    }

    /* the demo is up again: verified as remediated */
    if (ingest(hub, "batch-2", 1)) {
        fail("ingest");
        goto out;
    }
    int remediated = 0;
    for (int64_t end = now_ms() + WAIT_MS; remediated == 0 && now_ms() < end;) {
        remediated = has_decision(hub, "remediated");
        if (remediated == 0)
            sleep_ms(20);
    }
    if (remediated != 1 || has_decision(hub, "fired") != 1) {
        fprintf(stderr, "inprocess_loop: no fired -> remediated within %d ms\n", WAIT_MS);
        goto report;
    }
    status = 0;

report:
    printf("decisions:\n");
    vigil_store_decision_list(vigil_hub_store(hub), NULL, print_decision, NULL);
    printf("actions:\n");
    vigil_store_action_list(vigil_hub_store(hub), NULL, print_action, NULL);
    vigil_audit_report rep = VIGIL_AUDIT_REPORT_INIT;
    vigil_buf json = VIGIL_BUF_INIT;
    if (vigil_audit_verify(vigil_remediator_audit(rem), &rep) ||
        vigil_audit_report_json(&rep, &json)) {
        status = fail("audit verify");
    } else {
        printf("audit verify: %s\n", json.ptr);
        if (!rep.ok)
            status = 1;
    }
    vigil_buf_dispose(&json);

out:
    /* the remediator first: actions still running finish and report to the
     * hub; then the hub */
    vigil_remediator_stop(rem);
    vigil_hub_stop(hub);
    vigil_hub_free(hub);
    vigil_remediator_free(rem);
    vigil_config_free(actions);
    vigil_config_free(policies);
    return status;
}

int main(void)
{
    char dir[] = "/tmp/vigil-inprocess-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("inprocess_loop: mkdtemp");
        return 1;
    }
    int status = run(dir);
    remove_dir(dir);
    printf("%s\n", status == 0 ? "loop closed: fired -> succeeded -> remediated" : "loop failed");
    return status;
}
