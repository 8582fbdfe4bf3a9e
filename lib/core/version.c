#include "internal/common.h"

const char *vigil_version(int *major, int *minor, int *patch)
{
    if (major)
        *major = VIGIL_VERSION_MAJOR;
    if (minor)
        *minor = VIGIL_VERSION_MINOR;
    if (patch)
        *patch = VIGIL_VERSION_PATCH;
    return VIGIL_VERSION;
}
