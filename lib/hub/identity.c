/* Agent identities on POST /v1/ingest: a token bound to agents
 * (security.tokens[].agents) may only report for those agents. The batch's
 * `agent` must match one of the binding's ids or globs and every metric's
 * `host` tag must equal the agent; a missing agent is filled in from a
 * binding of one plain id, a missing host tag with the agent. */
#include "hub/hub_int.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

static int is_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* "[web-01, web-*]", clipped to the buffer. */
static void binding_text(char *out, size_t size, const char *const *agents, size_t n)
{
    size_t len = 0;
    int w = snprintf(out, size, "[");
    len = w > 0 ? (size_t)w : 0;
    for (size_t i = 0; i < n && len + 1 < size; i++) {
        w = snprintf(out + len, size - len, "%s%s", i ? ", " : "", agents[i]);
        if (w < 0 || (size_t)w >= size - len) {
            if (size > 5)
                memcpy(out + size - 5, "...]", 5);
            return;
        }
        len += (size_t)w;
    }
    if (len + 1 < size)
        snprintf(out + len, size - len, "]");
}

static const char *host_of(const vigil_metric *m)
{
    for (size_t i = 0; i < m->ntags; i++)
        if (strcmp(m->tags[i].key, "host") == 0)
            return m->tags[i].value;
    return NULL;
}

int vigil__hub_bind_batch(vigil_batch **batch, const char *token, const char *const *agents,
                          size_t nagents, char *why, size_t why_size)
{
    vigil_batch *b = *batch;
    char bound[256];
    why[0] = '\0';
    if (!nagents)
        return VIGIL_OK;
    binding_text(bound, sizeof(bound), agents, nagents);
    const char *agent = vigil_batch_agent(b);
    if (!agent) {
        if (nagents != 1 || is_glob(agents[0])) {
            snprintf(why, why_size,
                     "agent: required: token \"%s\" is bound to agents %s; name the agent", token,
                     bound);
            return VIGIL_EPERM;
        }
        int rc = vigil_batch_set_agent(b, agents[0]);
        if (rc)
            return rc;
        agent = vigil_batch_agent(b);
    }
    int ok = 0;
    for (size_t i = 0; i < nagents && !ok; i++)
        ok = fnmatch(agents[i], agent, 0) == 0;
    if (!ok) {
        snprintf(why, why_size, "agent: %.200s is not one token \"%s\" may speak for (bound to %s)",
                 agent, token, bound);
        return VIGIL_EPERM;
    }
    size_t n = vigil_batch_count(b), missing = 0;
    for (size_t i = 0; i < n; i++) {
        const vigil_metric *m = vigil_batch_get(b, i);
        const char *host = host_of(m);
        if (!host) {
            missing++;
        } else if (strcmp(host, agent) != 0) {
            snprintf(why, why_size,
                     "metrics[%zu].tags.host: host %.200s is not the batch's agent %.200s "
                     "(token \"%s\" is bound to %s)",
                     i, host, agent, token, bound);
            return VIGIL_EPERM;
        }
    }
    if (!missing)
        return VIGIL_OK;
    /* Copy the batch with host=<agent> added where it is missing. */
    vigil_batch *nb = NULL;
    int rc = vigil_batch_new(&nb);
    if (!rc)
        vigil_batch_set_max_metrics(nb, n ? n : 1);
    if (!rc)
        rc = vigil_batch_set_agent(nb, agent);
    if (!rc && vigil_batch_id(b))
        rc = vigil_batch_set_id(nb, vigil_batch_id(b));
    vigil_tag tags[VIGIL_METRIC_TAGS_MAX];
    for (size_t i = 0; i < n && !rc; i++) {
        const vigil_metric *m = vigil_batch_get(b, i);
        vigil_metric c = *m;
        if (!host_of(m)) {
            if (m->ntags >= VIGIL_METRIC_TAGS_MAX) {
                rc = vigil__error_set(VIGIL_ELIMIT,
                                      "metrics[%zu].tags: no room for the host tag (%d tags)", i,
                                      VIGIL_METRIC_TAGS_MAX);
                break;
            }
            if (m->ntags)
                memcpy(tags, m->tags, m->ntags * sizeof(vigil_tag));
            tags[m->ntags].key = "host";
            tags[m->ntags].value = agent;
            c.tags = tags;
            c.ntags = m->ntags + 1;
        }
        rc = vigil_batch_add(nb, &c);
    }
    if (rc) {
        vigil_batch_free(nb);
        return rc;
    }
    vigil_batch_free(b);
    *batch = nb;
    return VIGIL_OK;
}
