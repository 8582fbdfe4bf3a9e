/* The adaptive schedule of a git source: min_interval after a change,
 * doubling up to max_interval while nothing changes, with jitter. */
#include "internal/common.h"

#include "crypto/crypto.h"
#include "vigil/gitsync.h"

#include <math.h>

#define GS_DEFAULT_MIN_MS  30000
#define GS_DEFAULT_MAX_MS  300000
#define GS_DEFAULT_JITTER  0.1
#define GS_MAX_INTERVAL_MS (INT64_C(366) * 24 * 3600 * 1000)

struct vigil_gitsync_schedule {
    int64_t min_ms;
    int64_t max_ms;
    double jitter;
    vigil_clock_cb clock;
    void *clock_payload;
    vigil_gitsync_random_cb random;
    void *random_payload;
    uint64_t rng;
    int64_t interval;
    int64_t deadline;
};

int vigil_gitsync_schedule_options_init(vigil_gitsync_schedule_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "gitsync schedule options: NULL");
    if (vigil__version_check("gitsync schedule options", version,
                             VIGIL_GITSYNC_SCHEDULE_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_gitsync_schedule_options d = VIGIL_GITSYNC_SCHEDULE_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

static int64_t gs_now(const vigil_gitsync_schedule *s)
{
    return s->clock ? s->clock(s->clock_payload) : vigil__monotonic_ms();
}

int vigil_gitsync_schedule_new(vigil_gitsync_schedule **out,
                               const vigil_gitsync_schedule_options *opts)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "gitsync schedule: NULL out");
    *out = NULL;
    vigil_gitsync_schedule_options d = VIGIL_GITSYNC_SCHEDULE_OPTIONS_INIT;
    if (!opts)
        opts = &d;
    if (vigil__version_check("gitsync schedule options", opts->version,
                             VIGIL_GITSYNC_SCHEDULE_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    int64_t min = opts->min_interval_ms ? opts->min_interval_ms : GS_DEFAULT_MIN_MS;
    int64_t max = opts->max_interval_ms ? opts->max_interval_ms : GS_DEFAULT_MAX_MS;
    double jitter = opts->jitter == 0.0 ? GS_DEFAULT_JITTER : opts->jitter < 0 ? 0.0 : opts->jitter;
    if (min < 0 || max < 0)
        return vigil__error_set(VIGIL_ERANGE, "gitsync schedule: a negative interval");
    if (min > GS_MAX_INTERVAL_MS || max > GS_MAX_INTERVAL_MS)
        return vigil__error_set(VIGIL_ERANGE, "gitsync schedule: an interval above 366 days");
    if (max < min)
        return vigil__error_set(VIGIL_ERANGE,
                                "gitsync schedule: max_interval (%lld ms) is below min_interval "
                                "(%lld ms)",
                                (long long)max, (long long)min);
    if (!isfinite(jitter) || jitter > 0.5)
        return vigil__error_set(VIGIL_ERANGE, "gitsync schedule: jitter must be within 0..0.5");
    vigil_gitsync_schedule *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    s->min_ms = min;
    s->max_ms = max;
    s->jitter = jitter;
    s->clock = opts->clock;
    s->clock_payload = opts->clock_payload;
    s->random = opts->random;
    s->random_payload = opts->random_payload;
    if (!s->random)
        s->rng = vigil__crypto_seed();
    s->interval = min;
    s->deadline = gs_now(s);
    *out = s;
    return VIGIL_OK;
}

void vigil_gitsync_schedule_free(vigil_gitsync_schedule *s)
{
    vigil__free(s);
}

int64_t vigil_gitsync_schedule_done(vigil_gitsync_schedule *s, int changed)
{
    if (!s)
        return 0;
    if (changed)
        s->interval = s->min_ms;
    else
        s->interval = s->interval > s->max_ms / 2 ? s->max_ms : s->interval * 2;
    if (s->interval < 1)
        s->interval = s->min_ms < 1 ? 1 : s->min_ms;
    int64_t delay = s->interval;
    if (s->jitter > 0) {
        uint64_t r = s->random ? s->random(s->random_payload) : vigil__rand_next(&s->rng);
        double u = (double)(r >> 11) / 9007199254740992.0; /* [0, 1) */
        double span = (double)s->interval * s->jitter;
        delay = s->interval + (int64_t)floor((2.0 * u - 1.0) * span);
        if (delay < 0)
            delay = 0;
    }
    s->deadline = gs_now(s) + delay;
    return delay;
}

void vigil_gitsync_schedule_now(vigil_gitsync_schedule *s)
{
    if (s)
        s->deadline = gs_now(s);
}

int64_t vigil_gitsync_schedule_deadline(const vigil_gitsync_schedule *s)
{
    return s ? s->deadline : 0;
}

int64_t vigil_gitsync_schedule_interval(const vigil_gitsync_schedule *s)
{
    return s ? s->interval : 0;
}
