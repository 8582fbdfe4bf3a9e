/* Private declarations shared by the files of lib/agent: agent.c (the agent)
 * and config.c (agent.yaml). Never installed. */
#ifndef VIGIL_AGENT_INT_H
#define VIGIL_AGENT_INT_H

#include "vigil/agent.h"

#define DEF_INTERVAL    10000
#define DEF_MAX_METRICS 5000
#define DEF_MAX_DELAY   1000
#define DEF_CONNECT     5000
#define DEF_REQUEST     10000
#define DEF_RETRIES     2
#define MAX_RETRIES     10
#define DEF_BACKOFF     500
#define DEF_BACKOFF_MAX 30000
#define DEF_RETRY_AFTER 60000
#define DEF_SHUTDOWN    500
#define DEF_ONCE_GAP    1000
#define REPLAY_PER_STEP 16
#define TAGS_MAX        32
#define URLS_MAX        16
#define ALLOW_MAX       256
#define RUN_SLEEP_MAX   60000
#define STR_OPTION_MAX  4096
#define SPOOL_ID_MAX    255
/* inflated size of a batch the agent splits after a 413: far above any
 * batch of VIGIL_BATCH_DEFAULT_MAX_METRICS samples it builds */
#define SPLIT_INFLATE_MAX ((size_t)1 << 30)

/* Arrays built from the configuration; their strings are borrowed from it. */
typedef struct cfg_arrays {
    const char *urls[URLS_MAX];
    vigil_tag tags[TAGS_MAX];
    const char *allow[ALLOW_MAX + 1];
} cfg_arrays;

/* Applies the configuration root (NULL or null: nothing) over the options o:
 * a key present in the file wins, defaults fill what neither sets. The
 * strings and arrays set in o are borrowed from the configuration and arr. */
int vigil__agent_config_apply(vigil_agent_options *o, const vigil_config_node *root,
                              cfg_arrays *arr);

#endif
