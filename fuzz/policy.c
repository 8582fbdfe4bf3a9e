/* libFuzzer target: policy rules. The input is YAML: a list of rules, or a map
 * whose `policies:` is that list, as vigil_engine_load() reads it. Each input
 * gets a fresh engine over a fresh in-memory store (sqlite::memory:, no
 * threads), so no state carries from one input to the next; a loaded rule set
 * then takes a fixed batch of samples and a tick at a fixed clock. */
#include <vigil/vigil.h>

#include <stddef.h>
#include <stdint.h>

#define FUZZ_MAX_LEN 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_MS 1700000000000LL

static int64_t fixed_clock(void *payload)
{
    (void)payload;
    return NOW_MS;
}

static void feed(vigil_engine *e)
{
    vigil_batch *b = NULL;
    if (vigil_batch_new(&b) != VIGIL_OK)
        return;
    (void)vigil_batch_set_agent(b, "web-01");
    vigil_tag host = {"host", "web-01"};
    vigil_tag tags[] = {{"host", "web-01"}, {"service", "nginx"}};
    vigil_metric m[] = {{"cpu_usage", 97.5, NOW_MS - 1000, &host, 1, NULL},
                        {"cpu_usage", 99.0, NOW_MS, &host, 1, NULL},
                        {"process_up", 0, NOW_MS, tags, 2, NULL},
                        {"disk_used_pct", 91, NOW_MS, &host, 1, NULL},
                        {"http_up", 0, NOW_MS, &host, 1, "connection refused"}};
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        (void)vigil_batch_add(b, &m[i]);
    (void)vigil_engine_ingest(e, b);
    (void)vigil_engine_tick(e, NOW_MS + 60000);
    vigil_batch_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vigil_config_options co = VIGIL_CONFIG_OPTIONS_INIT;
    co.no_env = 1;
    co.max_nodes = 10000;
    vigil_config *c = NULL;
    if (vigil_config_load_string(&c, (const char *)data, size, "policies.yaml", &co) != VIGIL_OK) {
        vigil_config_free(c);
        return 0;
    }
    const vigil_config_node *root = vigil_config_root(c, 0);
    const vigil_config_node *list = vigil_config_node_get(root, "policies");
    if (!list)
        list = root;
    vigil_store *st = NULL;
    if (vigil_store_open(&st, "sqlite::memory:", NULL) == VIGIL_OK) {
        vigil_engine_options o = VIGIL_ENGINE_OPTIONS_INIT;
        o.store = st;
        o.clock = fixed_clock;
        o.logger.min_level = VIGIL_LOG_OFF;
        vigil_engine *e = NULL;
        if (vigil_engine_new(&e, &o) == VIGIL_OK && vigil_engine_load(e, list) == VIGIL_OK)
            feed(e);
        vigil_engine_free(e);
        vigil_store_close(st);
    }
    vigil_config_free(c);
    return 0;
}
