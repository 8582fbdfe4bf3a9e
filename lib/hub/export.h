/* GET /v1/export/prometheus (lib/hub/export.c): the selectors of match[]
 * (a subset of PromQL's vector selectors) and the Prometheus text format's
 * names and escapes. Private to lib/hub; the parser is exposed here for
 * tests/unit/test_export.c. */
#ifndef VIGIL_HUB_EXPORT_H
#define VIGIL_HUB_EXPORT_H

#include "internal/common.h"

#include <stddef.h>

/* Bounds of one request. */
#define VIGIL__EXPORT_SELECTORS_MAX   16    /* match[] parameters */
#define VIGIL__EXPORT_SELECTOR_LEN    1024  /* bytes of one selector */
#define VIGIL__EXPORT_MATCHERS_MAX    32    /* matchers of one selector */
#define VIGIL__EXPORT_REGEX_LEN       256   /* bytes of one regular expression */
#define VIGIL__EXPORT_SERIES_MAX      20000 /* series in one answer */
#define VIGIL__EXPORT_LABEL_NAME_SIZE 208   /* a label name's buffer (tag keys are <= 200) */

typedef struct vigil__promsel vigil__promsel;

/* Parses `metric`, `metric{m, ...}` or `{m, ...}` where each m is
 * `label OP "value"` with OP one of = != =~ !~ (values in double or single
 * quotes or backticks, Go escapes \\ \" \' \n \t \r in quotes; regular
 * expressions are POSIX extended ones, anchored at both ends, without
 * back-references, quantifiers in a row, bounds above 100 or a growth of
 * their compiled size past 256). `__name__` names the metric. At least one matcher must
 * not match the empty string. VIGIL_OK; VIGIL_EINVAL with a message that
 * says what is wrong and at which byte; VIGIL_ENOMEM. */
int vigil__promsel_parse(vigil__promsel **out, const char *text);
void vigil__promsel_free(vigil__promsel *sel);
/* The metric name of a selector's `name` or `__name__="..."`, else NULL. */
const char *vigil__promsel_name(const vigil__promsel *sel);
/* 1 when the series (its name, and its labels: names as exported) matches
 * every matcher; an absent label is "". */
int vigil__promsel_match(const vigil__promsel *sel, const char *name, const char *const *lnames,
                         const char *const *lvalues, size_t n);
/* The Prometheus label name of a tag key: characters outside [a-zA-Z0-9_]
 * become '_', a leading digit gets a '_' before it, and a name starting
 * with "__" (reserved by Prometheus) gets "tag" before it. */
void vigil__export_label_name(char *out, size_t size, const char *key);
/* Appends a label value escaped for the text format (\\, \" and \n). */
int vigil__export_escape(vigil_buf *b, const char *value);
/* Appends a sample value as the text format writes it (NaN, +Inf, -Inf, or
 * the shortest decimal that reads back exactly). */
int vigil__export_value(vigil_buf *b, double v);

#endif
