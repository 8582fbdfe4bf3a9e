/* The requests the engine waits on, for the hub's reconciliation with its
 * ledger at start (lib/internal/policy.h). */
#include "internal/policy.h"
#include "policy/policy_int.h"

#include <stdlib.h>
#include <string.h>

static int by_id(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void vigil__policy_awaited_free(char **ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        vigil__free(ids[i]);
    vigil__free(ids);
}

int vigil__policy_awaited(vigil_engine *e, char ***ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    char **v = NULL;
    size_t k = 0, cap = 0;
    int rc = VIGIL_OK;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->actions.cap && !rc; i++) {
        const pol_action *a = e->actions.e[i].val;
        if (!e->actions.e[i].key || a->phase == PH_VERIFY)
            continue;
        if (vigil__array_grow((void **)&v, &cap, k + 1, sizeof(*v)) < 0 ||
            !(v[k] = vigil__strdup(a->id)))
            rc = vigil__error_oom();
        else
            k++;
    }
    pthread_mutex_unlock(&e->mu);
    if (rc) {
        vigil__policy_awaited_free(v, k);
        return rc;
    }
    if (k > 1)
        qsort(v, k, sizeof(*v), by_id);
    *ids = v;
    *n = k;
    return VIGIL_OK;
}
