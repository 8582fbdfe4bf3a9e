/*
 * Private JSON helpers (lib/json/json.c) shared by every module that reads or
 * writes JSON: the cJSON allocator hooks, a strict parse on top of cJSON that
 * refuses what cJSON accepts silently, JSON paths for error messages, and a
 * writer that escapes strings and round-trips doubles. Never installed.
 */
#ifndef VIGIL_INTERNAL_JSON_H
#define VIGIL_INTERNAL_JSON_H

#include "internal/common.h"

#include <cJSON.h>

/* Installs cJSON's allocator hooks once per process, so that every cJSON
 * allocation goes through vigil__malloc/vigil__free (and so through the hook of
 * vigil_allocator_set()). Call before any cJSON function; cheap to call again.
 * Thread-safe. */
void vigil__json_init(void);

/* ---- strict input ---------------------------------------------------------- */

/* Default nesting limit of vigil__json_parse() callers that have no better one. */
#define VIGIL__JSON_MAX_DEPTH 64

/* A problem found in JSON text: where (byte offset), what code, and why
 * (a static string such as "invalid UTF-8 in a string"). */
typedef struct vigil__json_problem {
    int code; /* VIGIL_EJSON, VIGIL_EENCODING or VIGIL_ELIMIT */
    size_t offset;
    const char *reason;
} vigil__json_problem;

/* Validates text[0..len) as exactly one JSON value (RFC 8259), strictly,
 * without building anything, so that cJSON only ever sees valid input and
 * every problem gets an exact position:
 * - grammar: commas, colons, keys, balanced brackets, nothing after the value;
 * - strings: valid UTF-8 (no overlong forms, no surrogates, nothing above
 *   U+10FFFF), no NUL byte, no raw control character, only the escapes of
 *   RFC 8259, \u with four hex digits, no \u0000, surrogate escapes only as
 *   a high + low pair (VIGIL_EENCODING for encoding problems, VIGIL_EJSON for
 *   syntax) -- cJSON accepts most of these silently;
 * - numbers: the RFC 8259 grammar (no leading zeros, no "1.", no "+1") and at
 *   most 63 characters (cJSON's own limit; VIGIL_ELIMIT);
 * - outside strings: only JSON whitespace (no BOM, no NUL);
 * - arrays and objects nested at most max_depth deep (VIGIL_ELIMIT; capped at
 *   cJSON's 1000), which also bounds cJSON's recursion.
 * Returns VIGIL_OK or the first problem's code, filling *problem. Does not
 * record an error. */
int vigil__json_check(const char *text, size_t len, size_t max_depth, vigil__json_problem *problem);

/* Parses text[0..len) (need not be NUL-terminated) strictly: vigil__json_check,
 * then cJSON. On success *out is
 * the caller's (cJSON_Delete). On failure records an error whose message names
 * the JSON path and position, e.g.
 *   "metrics[3].tags.host: invalid UTF-8 in a string (line 1, column 80)"
 * and returns VIGIL_EJSON, VIGIL_EENCODING, VIGIL_ELIMIT or VIGIL_ENOMEM. */
int vigil__json_parse(cJSON **out, const char *text, size_t len, size_t max_depth);

/* A document parsed by vigil__json_parse_doc(): the whole tree lives in one
 * arena (no allocation per node or string, no walk to free it). The tree is
 * read-only: never pass it to cJSON_Delete or to cJSON functions that add,
 * replace or detach items; release it with vigil__json_doc_free(). */
typedef struct vigil__json_doc {
    cJSON *root;
    struct json_block *blocks;
    size_t next_block;
} vigil__json_doc;

/* As vigil__json_parse(), into an arena: the fast path for decoders. The tree
 * is built during the strict check itself (one pass, same acceptance and
 * messages as vigil__json_check), not by cJSON's parser, and is exactly the
 * tree cJSON_Parse would build from the text (types, values, valueint, keys,
 * links); numbers are read as strtod reads them, independent of the locale. */
int vigil__json_parse_doc(vigil__json_doc *doc, const char *text, size_t len, size_t max_depth);

/* A budget for the tree of vigil__json_parse_doc_limited(), checked as
 * each node is built, so a text of many small values is refused after the
 * budget, not after building them all. Zero fields: no limit. */
#define VIGIL__JSON_LIMIT_DEPTHS 4
typedef struct vigil__json_limits {
    size_t max_nodes; /* values in the whole tree (each costs sizeof(cJSON)) */
    /* members or elements of one container at depth d (0: the root) */
    size_t max_children[VIGIL__JSON_LIMIT_DEPTHS];
} vigil__json_limits;

/* vigil__json_parse_doc() within `lim` (NULL: none): VIGIL_ELIMIT with the
 * path and position of the first value past the budget. */
int vigil__json_parse_doc_limited(vigil__json_doc *doc, const char *text, size_t len,
                                  size_t max_depth, const vigil__json_limits *lim);

/* Releases a document (its root becomes NULL). Safe on a failed parse. */
void vigil__json_doc_free(vigil__json_doc *doc);

/* ---- JSON paths for messages ---------------------------------------------- */

/* A JSON path such as metrics[3].tags.host, built without allocating (long
 * paths are clipped with "..."). Keys that are not identifiers are written as
 * ["key"] with JSON escapes, clipped to 64 bytes; invalid UTF-8 shows as U+FFFD. */
typedef struct vigil__json_path {
    size_t len;
    char s[384];
} vigil__json_path;

void vigil__json_path_init(vigil__json_path *p);
void vigil__json_path_key(vigil__json_path *p, const char *key, size_t len);
void vigil__json_path_index(vigil__json_path *p, size_t index);
/* The path, or "top level" when it is empty. */
const char *vigil__json_path_str(const vigil__json_path *p);

/* Fills *p with the path of the value (or object key) that contains byte
 * `offset` of text[0..len), reading the JSON before it (which must be
 * well-formed up to there). Used to name the location of a problem. */
void vigil__json_path_at(vigil__json_path *p, const char *text, size_t len, size_t offset);

/* Appends a quoted, clipped (64 bytes), escaped rendering of s[0..len) to a
 * message buffer of `size` bytes holding a NUL-terminated string; invalid
 * UTF-8 shows as U+FFFD. For quoting untrusted input in messages. */
void vigil__json_quote_clip(char *msg, size_t size, const char *s, size_t len);

/* ---- writer ----------------------------------------------------------------- */

/* Appends s[0..len) as a JSON string: quotes, \" \\ \b \f \n \r \t, other
 * control characters (and NUL) as \u00XX; invalid UTF-8 sequences are written
 * as U+FFFD, so the output is always valid JSON. */
int vigil__json_put_string(vigil_buf *b, const char *s, size_t len);

/* Appends a double that reads back to exactly the same value (the shortest of
 * %.15g, %.16g, %.17g that round-trips; integral values as integers),
 * independent of the locale. NaN and infinities are never written: they give
 * VIGIL_EVALUE and the buffer is unchanged. */
int vigil__json_put_double(vigil_buf *b, double v);

/* Appends a 64-bit integer. */
int vigil__json_put_int64(vigil_buf *b, int64_t v);

#endif
