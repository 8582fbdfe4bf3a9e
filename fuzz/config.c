/* libFuzzer target: the YAML loader, vigil_config_load_string(), and the
 * daemon configuration loaders built on it, vigil_hub_config_load_string()
 * and vigil_remediator_config_load_string(). ${VAR} expansion goes through a
 * fixed callback so that a run never depends on the environment. */
#include <vigil/vigil.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_MAX_LEN 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fixed_env(void *payload, const char *name)
{
    (void)payload;
    if (strcmp(name, "VIGIL_FUZZ_TOKEN") == 0)
        return "fuzz-token-0123456789abcdef";
    if (strcmp(name, "VIGIL_FUZZ_SECRET") == 0)
        return "fuzz-secret-0123456789abcdef0123456789";
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    vigil_config_options o = VIGIL_CONFIG_OPTIONS_INIT;
    o.getenv = fixed_env;
    o.max_nodes = 20000;

    vigil_config *c = NULL;
    if (vigil_config_load_string(&c, text, size, "fuzz.yaml", &o) == VIGIL_OK) {
        size_t n = vigil_config_document_count(c);
        for (size_t i = 0; i < n; i++)
            (void)vigil_config_root(c, i);
    }
    vigil_config_free(c);

    vigil_hub_config *h = NULL;
    if (vigil_hub_config_load_string(&h, text, size, "hub.yaml", &o) == VIGIL_OK)
        (void)vigil_hub_config_hub(h);
    vigil_hub_config_free(h);

    vigil_remediator_config *r = NULL;
    (void)vigil_remediator_config_load_string(&r, text, size, "remediator.yaml", &o);
    vigil_remediator_config_free(r);
    return 0;
}
