/*
 * vigil/vigil.h - the umbrella header of libvigil, the embeddable core of the
 * Vigil self-healing control plane. Include this one header; plug-in authors
 * also include the vtables under <vigil/sys/...> on purpose.
 *
 * Conventions (docs/architecture.md): functions return VIGIL_OK or a negative
 * vigil_status and record details in vigil_error_last(); objects are opaque,
 * created by vigil_<x>_new/_open and released by vigil_<x>_free/_close (NULL
 * is a no-op); a function's prefix names its header; options structs start
 * with a version and have *_INIT, all zero but the version meaning the
 * defaults; structs the library fills start with a version the caller sets.
 */
#ifndef VIGIL_VIGIL_H
#define VIGIL_VIGIL_H

#include "vigil/common.h"
#include "vigil/types.h"
#include "vigil/errors.h"
#include "vigil/allocator.h"
#include "vigil/buf.h"
#include "vigil/log.h"
#include "vigil/scalar.h"
#include "vigil/config.h"
#include "vigil/metric.h"
#include "vigil/batch.h"
#include "vigil/store.h"
#include "vigil/window.h"
#include "vigil/collector.h"
#include "vigil/client.h"
#include "vigil/agent.h"
#include "vigil/api.h"
#include "vigil/httpd.h"
#include "vigil/hub.h"
#include "vigil/action.h"
#include "vigil/signature.h"
#include "vigil/audit.h"
#include "vigil/remediator.h"
#include "vigil/daemon.h"
#include "vigil/policy.h"
#include "vigil/engine.h"
#include "vigil/gitsync.h"
#include "vigil/manifest.h"
#include "vigil/gitops.h"

#endif
