/* Log lines of the hub whose fields come from requests (action names,
 * ids, policies, targets): every value quoted and escaped as logfmt and
 * clipped, so that a hostile value can neither forge a log line nor flood
 * the log. */
#include "hub/hub_int.h"

#include <string.h>

#define FIELD_CLIP 200

void vigil__hub_log_fields(vigil_hub *hub, vigil_log_level level, const char *msg,
                           const char *const *kv)
{
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = VIGIL_OK;
    for (size_t i = 0; kv[i] && !rc; i += 2) {
        const char *v = kv[i + 1] ? kv[i + 1] : "";
        char clip[FIELD_CLIP + 4];
        if (strlen(v) > FIELD_CLIP) {
            memcpy(clip, v, FIELD_CLIP);
            memcpy(clip + FIELD_CLIP, "...", 4);
            v = clip;
        }
        rc = vigil__buf_printf(&b, "%s%s=", i ? " " : "", kv[i]);
        if (!rc)
            rc = vigil__logfmt_value(&b, v);
    }
    if (!rc)
        vigil__log(&hub->logger, level, "hub", msg, "%s", b.ptr ? b.ptr : "");
    vigil_buf_dispose(&b);
}
