/*
 * JSON helpers shared by the library: cJSON's allocator hooks, a strict parse
 * (cJSON accepts \u0000, invalid UTF-8, raw control characters, leading zeros
 * and more without a word), JSON paths for messages, and a writer.
 */
#include "internal/json.h"

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- allocator hooks -------------------------------------------------------- */

/* Set when a cJSON allocation failed on this thread, so that a NULL from
 * cJSON's parser can be told apart from malformed input. */
static _Thread_local int t_alloc_failed;

/* The arena of a tree built by vigil__json_parse_doc(): blocks chained on
 * the document, released at once. */
typedef struct json_block {
    struct json_block *next;
    size_t cap, pad[2]; /* 32 bytes: data stays 16-byte aligned */
    char data[];
} json_block;

/* An arena being filled: its document and the free space of its current block. */
typedef struct {
    vigil__json_doc *doc;
    char *ptr, *end;
} arena_state;

#define ARENA_MIN (16 * 1024)
#define ARENA_MAX (64 * 1024 * 1024)

static void *arena_alloc_slow(arena_state *a, size_t size)
{
    vigil__json_doc *doc = a->doc;
    size_t cap = doc->next_block > size ? doc->next_block : size;
    if (cap > SIZE_MAX - sizeof(json_block))
        return NULL;
    json_block *b = vigil__malloc(sizeof(json_block) + cap);
    if (!b)
        return NULL;
    b->next = doc->blocks;
    b->cap = cap;
    doc->blocks = b;
    if (doc->next_block < ARENA_MAX)
        doc->next_block *= 2;
    a->ptr = b->data + size;
    a->end = b->data + cap;
    return b->data;
}

static void *hook_malloc(size_t size)
{
    void *p = vigil__malloc(size);
    if (!p)
        t_alloc_failed = 1;
    return p;
}

static void hook_free(void *ptr)
{
    vigil__free(ptr);
}

static pthread_once_t g_hooks_once = PTHREAD_ONCE_INIT;

static void install_hooks(void)
{
    cJSON_Hooks hooks = {hook_malloc, hook_free};
    cJSON_InitHooks(&hooks);
}

void vigil__json_init(void)
{
    pthread_once(&g_hooks_once, install_hooks);
}

/* ---- UTF-8 ------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence starting with a byte >= 0x80 at p, or 0
 * when it is invalid (stray continuation, overlong, surrogate, > U+10FFFF,
 * truncated). */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], c1;
    size_t avail = (size_t)(end - p);
    if (c < 0xC2)
        return 0;
    if (c < 0xE0)
        return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (avail < 3)
            return 0;
        c1 = p[1];
        if ((c1 & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0))
            return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (avail < 4)
            return 0;
        c1 = p[1];
        if ((c1 & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* Reads a \u escape and its four hex digits at p (p[0] == '\\'); -1 when the four hex digits are
 * missing. */
static long read_u_escape(const unsigned char *p, const unsigned char *end)
{
    if (end - p < 6 || p[1] != 'u')
        return -1;
    long v = 0;
    for (int i = 2; i < 6; i++) {
        int h = vigil__hex_value(p[i]);
        if (h < 0)
            return -1;
        v = (v << 4) | h;
    }
    return v;
}

/* ---- the strict check ------------------------------------------------------ */

enum {
    C_BAD = 0,
    C_WS,
    C_OBJ,
    C_ARR,
    C_END_OBJ,
    C_END_ARR,
    C_COMMA,
    C_COLON,
    C_QUOTE,
    C_NUM,
    C_LIT
};

/* Classes of bytes outside strings. */
static const unsigned char k_outer[256] = {
    [' '] = C_WS,    ['\t'] = C_WS,     ['\n'] = C_WS,     ['\r'] = C_WS,   ['{'] = C_OBJ,
    ['['] = C_ARR,   ['}'] = C_END_OBJ, [']'] = C_END_ARR, [','] = C_COMMA, [':'] = C_COLON,
    ['"'] = C_QUOTE, ['-'] = C_NUM,     ['0'] = C_NUM,     ['1'] = C_NUM,   ['2'] = C_NUM,
    ['3'] = C_NUM,   ['4'] = C_NUM,     ['5'] = C_NUM,     ['6'] = C_NUM,   ['7'] = C_NUM,
    ['8'] = C_NUM,   ['9'] = C_NUM,     ['t'] = C_LIT,     ['f'] = C_LIT,   ['n'] = C_LIT,
};

/* 1 for the bytes a string may contain as they are: 0x20..0x7F but '"' and '\\'. */
static unsigned char k_plain[256];
static pthread_once_t g_tables_once = PTHREAD_ONCE_INIT;

static void init_tables(void)
{
    for (int c = 0x20; c < 0x80; c++)
        k_plain[c] = c != '"' && c != '\\';
}

static int problem(vigil__json_problem *pb, int code, const unsigned char *base,
                   const unsigned char *at, const char *reason)
{
    pb->code = code;
    pb->offset = (size_t)(at - base);
    pb->reason = reason;
    return code;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Marks (in the high bit of each byte) the bytes of p[0..8) that a string
 * cannot hold as they are: '"', '\\', < 0x20 and >= 0x80. The lowest mark is
 * exact; marks above it may be spurious, which is harmless. */
static inline uint64_t special8(const unsigned char *p)
{
    uint64_t v, q, bs;
    memcpy(&v, p, 8);
    q = v ^ (ONES * '"');
    bs = v ^ (ONES * '\\');
    return (((q - ONES) & ~q) | ((bs - ONES) & ~bs) | ((v - ONES * 0x20) & ~v) | v) & HIGHS;
}

/* Scans the string whose opening quote is at *pp; leaves *pp after the
 * closing quote. */
static int check_string(const unsigned char **pp, const unsigned char *end,
                        const unsigned char *base, vigil__json_problem *pb, int *esc)
{
    const unsigned char *p = *pp + 1;
    for (;;) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* Eight bytes at a time while none is special. */
        while (end - p >= 8) {
            uint64_t m = special8(p);
            if (m) {
                p += (unsigned)__builtin_ctzll(m) >> 3;
                break;
            }
            p += 8;
        }
#endif
        while (p < end && k_plain[*p])
            p++;
        if (p >= end)
            return problem(pb, VIGIL_EJSON, base, *pp, "unterminated string");
        unsigned char c = *p;
        if (c == '"') {
            *pp = p + 1;
            return VIGIL_OK;
        }
        if (c == '\\') {
            *esc = 1;
            if (end - p < 2)
                return problem(pb, VIGIL_EJSON, base, *pp, "unterminated string");
            switch (p[1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't': p += 2; continue;
            case 'u': break;
            default: return problem(pb, VIGIL_EJSON, base, p, "invalid escape in a string");
            }
            long cp = read_u_escape(p, end);
            if (cp < 0)
                return problem(pb, VIGIL_EJSON, base, p,
                               "\\u escape without four hexadecimal digits");
            if (cp == 0)
                return problem(pb, VIGIL_EENCODING, base, p, "\\u0000 is not allowed in a string");
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return problem(pb, VIGIL_EENCODING, base, p,
                               "unpaired UTF-16 surrogate escape in a string");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = end - p > 6 && p[6] == '\\' ? read_u_escape(p + 6, end) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return problem(pb, VIGIL_EENCODING, base, p,
                                   "unpaired UTF-16 surrogate escape in a string");
                p += 12;
            } else {
                p += 6;
            }
            continue;
        }
        if (c == 0)
            return problem(pb, VIGIL_EENCODING, base, p, "NUL byte in a string");
        if (c < 0x20)
            return problem(pb, VIGIL_EJSON, base, p, "raw control character in a string");
        size_t n = utf8_seq(p, end);
        if (!n)
            return problem(pb, VIGIL_EENCODING, base, p, "invalid UTF-8 in a string");
        p += n;
    }
}

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* check_string() for the usual short string: plain bytes and its closing
 * quote within the next 16 bytes, inline; anything else goes to
 * check_string(). */
static ALWAYS_INLINE int scan_string(const unsigned char **pp, const unsigned char *end,
                                     const unsigned char *base, vigil__json_problem *pb, int *esc)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const unsigned char *p = *pp + 1;
    if (end - p >= 16) {
        uint64_t m = special8(p);
        if (!m) {
            p += 8;
            m = special8(p);
        }
        if (m) {
            p += (unsigned)__builtin_ctzll(m) >> 3; /* the first special byte */
            if (*p == '"') {
                *pp = p + 1;
                return VIGIL_OK;
            }
        }
    }
#endif
    return check_string(pp, end, base, pb, esc);
}

/* The digits of a number as check_number() reads them, for its value: up to
 * 19 significant digits in w, the decimal exponent that applies to w, and
 * whether a non-zero digit did not fit. */
typedef struct num_acc {
    uint64_t w;
    int digits, e10, dropped;
} num_acc;

/* RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * With `acc`, also gathers the digits (one pass for check and value). */
static ALWAYS_INLINE int check_number(const unsigned char **pp, const unsigned char *end,
                                      const unsigned char *base, vigil__json_problem *pb,
                                      num_acc *acc)
{
    const unsigned char *start = *pp, *p = start;
    uint64_t w = 0;
    int digits = 0, e10 = 0, dropped = 0;
    if (*p == '-')
        p++;
    if (p >= end || !is_digit(*p))
        return problem(pb, VIGIL_EJSON, base, start, "invalid number");
    if (*p == '0') {
        p++;
    } else {
        while (p < end && is_digit(*p)) {
            if (acc) {
                if (digits < 19) {
                    w = w * 10 + (uint64_t)(*p - '0');
                    digits++;
                } else {
                    dropped = 1;
                }
            }
            p++;
        }
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return problem(pb, VIGIL_EJSON, base, start, "invalid number");
        while (p < end && is_digit(*p)) {
            if (acc) {
                if (digits < 19) {
                    w = w * 10 + (uint64_t)(*p - '0');
                    e10--;
                    digits += digits || *p != '0'; /* leading zeros are not significant */
                } else if (*p != '0') {
                    dropped = 1;
                }
            }
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0, ev = 0;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || !is_digit(*p))
            return problem(pb, VIGIL_EJSON, base, start, "invalid number");
        while (p < end && is_digit(*p)) {
            if (acc && ev < 100000)
                ev = ev * 10 + (*p - '0');
            p++;
        }
        e10 += eneg ? -ev : ev;
    }
    if (p < end && (is_digit(*p) || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' || *p == '-'))
        return problem(pb, VIGIL_EJSON, base, start, "invalid number");
    /* cJSON copies at most 63 characters of a number. */
    if (p - start > 63)
        return problem(pb, VIGIL_ELIMIT, base, start, "number longer than 63 characters");
    if (acc) {
        acc->w = w;
        acc->digits = digits;
        acc->e10 = e10;
        acc->dropped = dropped;
    }
    *pp = p;
    return VIGIL_OK;
}

static int check_literal(const unsigned char **pp, const unsigned char *end,
                         const unsigned char *base, vigil__json_problem *pb)
{
    const unsigned char *p = *pp;
    const char *lit = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
    size_t n = strlen(lit);
    if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0)
        return problem(pb, VIGIL_EJSON, base, p, "invalid literal");
    *pp = p + n;
    return VIGIL_OK;
}

/* What the grammar expects next. */
enum {
    S_VALUE,     /* a value (top level, after ':' or after ',' in an array) */
    S_ARR_FIRST, /* a value or ']' */
    S_OBJ_FIRST, /* a key or '}' */
    S_KEY,       /* a key (after ',' in an object) */
    S_COLON,     /* ':' */
    S_AFTER,     /* ',' or the end of the container */
    S_DONE       /* nothing but whitespace */
};

/* Containers are tracked one bit each (1 = object); cJSON stops at 1000. */
#define DEPTH_CAP 1000

static const char *expected(int state, int in_obj)
{
    switch (state) {
    case S_VALUE: return "expected a value";
    case S_ARR_FIRST: return "expected a value or ']'";
    case S_OBJ_FIRST: return "expected a string key or '}'";
    case S_KEY: return "expected a string key";
    case S_COLON: return "expected ':'";
    case S_AFTER: return in_obj ? "expected ',' or '}'" : "expected ',' or ']'";
    default: return "unexpected data after the JSON value";
    }
}

/* ---- building the tree while checking ------------------------------------------ */

/* vigil__json_parse_doc() builds its tree itself, during the same pass as
 * vigil__json_check() (one state machine, so both accept exactly the same
 * texts): a cJSON tree exactly as cJSON_Parse would build it from that text
 * (same types, values, keys and links, the first child's prev pointing at
 * the last one), without cJSON's second pass over the text, its per-value
 * strncmp probes, its locale lookups and a call per allocation. */

typedef struct builder {
    arena_state a;
    cJSON *root;
    char *key;                     /* of the next member of an object */
    const vigil__json_limits *lim; /* NULL: no budget */
    size_t nodes;                  /* built so far */
    size_t nchild[VIGIL__JSON_LIMIT_DEPTHS];
    const char *over; /* the budget exceeded, for the message */
    cJSON *stack[DEPTH_CAP];
} builder;

/* Arena allocation, 8-byte aligned (nodes hold pointers and doubles). */
static inline void *arena_take(arena_state *a, size_t size)
{
    size_t n = (size + 7) & ~(size_t)7;
    if (n >= size && (size_t)(a->end - a->ptr) >= n) {
        void *p = a->ptr;
        a->ptr += n;
        return p;
    }
    return n >= size ? arena_alloc_slow(a, n) : NULL;
}

static size_t put_utf8(unsigned char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Copies the content s[0..e) of a checked string into the arena, decoding
 * its escapes when it has some (the result is never longer than the source).
 * NULL when out of memory. */
static char *copy_string(arena_state *a, const unsigned char *s, const unsigned char *e, int esc)
{
    size_t n = (size_t)(e - s);
    unsigned char *out = arena_take(a, n + 1), *o = out;
    if (!out)
        return NULL;
    if (!esc) {
        if (n >= 8 && n <= 16) { /* two overlapping fixed-size copies, inline */
            memcpy(out, s, 8);
            memcpy(out + n - 8, s + n - 8, 8);
        } else if (n >= 4 && n < 8) {
            memcpy(out, s, 4);
            memcpy(out + n - 4, s + n - 4, 4);
        } else if (n < 4) {
            for (size_t i = 0; i < n; i++)
                out[i] = s[i];
        } else {
            memcpy(out, s, n);
        }
        out[n] = '\0';
        return (char *)out;
    }
    for (const unsigned char *p = s; p < e;) {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        unsigned char c = p[1];
        switch (c) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned long cp = (unsigned long)read_u_escape(p, e);
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* checked: a low surrogate escape follows */
                unsigned long lo = (unsigned long)read_u_escape(p + 6, e);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            o += put_utf8(o, cp);
            p += 4;
            break;
        }
        default: *o++ = c; /* " \\ / */
        }
        p += 2;
    }
    *o = '\0';
    return (char *)out;
}

/* The exact fast path needs double arithmetic evaluated in double (no
 * x87 excess precision). */
#if defined(__FLT_EVAL_METHOD__) && __FLT_EVAL_METHOD__ == 0
#define EXACT_FAST_PATHS 1
#else
#define EXACT_FAST_PATHS 0
#endif

static locale_t g_c_locale;
static pthread_once_t g_locale_once = PTHREAD_ONCE_INIT;

static void init_c_locale(void)
{
    g_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* What cJSON does: strtod on a copy whose '.' is the locale's decimal point
 * (here: strtod in the C locale). n <= 63: checked. */
static double number_slow(const unsigned char *start, size_t n)
{
    char buf[64];
    memcpy(buf, start, n);
    buf[n] = '\0';
    pthread_once(&g_locale_once, init_c_locale);
    if (g_c_locale)
        return strtod_l(buf, NULL, g_c_locale);
    const char *dp = localeconv()->decimal_point;
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '.')
            buf[i] = dp[0];
    return strtod(buf, NULL);
}

#if EXACT_FAST_PATHS
static const double k_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#endif

/* The value of the checked number start[0..stop) whose digits are in
 * `acc`, exactly as strtod reads it (correctly rounded): an exact fast
 * path when the digits fit 53 bits and |exponent| <= 22 (both operands are
 * exact doubles, so one IEEE operation rounds correctly), strtod otherwise. */
static double number_value(const num_acc *acc, const unsigned char *start,
                           const unsigned char *stop)
{
#if EXACT_FAST_PATHS
    int neg = *start == '-', e10 = acc->e10;
    uint64_t w = acc->w;
    double v;
    if (!acc->dropped && w <= (UINT64_C(1) << 53) && e10 >= -22 && e10 <= 22) {
        /* Both operands exact: one IEEE operation rounds correctly. */
        v = e10 < 0 ? (double)w / k_pow10[-e10] : (double)w * k_pow10[e10];
        return neg ? -v : v;
    }
#else
    (void)acc;
#endif
    return number_slow(start, (size_t)(stop - start));
}

/* A new node of the tree, member of the container at depth - 1 (or the
 * root), carrying the pending object key. NULL when out of memory. */
static inline cJSON *add_node(builder *b, size_t depth, int type)
{
    if (b->lim) {
        const vigil__json_limits *l = b->lim;
        if (l->max_nodes && ++b->nodes > l->max_nodes) {
            b->over = "more JSON values than the limit allows";
            return NULL;
        }
        if (depth && depth - 1 < VIGIL__JSON_LIMIT_DEPTHS && l->max_children[depth - 1] &&
            ++b->nchild[depth - 1] > l->max_children[depth - 1]) {
            b->over = "more members or elements than the limit allows";
            return NULL;
        }
        if (depth < VIGIL__JSON_LIMIT_DEPTHS && (type == cJSON_Object || type == cJSON_Array))
            b->nchild[depth] = 0;
    }
    cJSON *n = arena_take(&b->a, sizeof(cJSON));
    if (!n)
        return NULL;
    memset(n, 0, sizeof(*n));
    n->type = type;
    n->string = b->key;
    b->key = NULL;
    if (!depth) {
        b->root = n;
        return n;
    }
    cJSON *parent = b->stack[depth - 1], *head = parent->child;
    if (!head) {
        parent->child = n;
        n->prev = n;
    } else {
        cJSON *tail = head->prev;
        tail->next = n;
        n->prev = tail;
        head->prev = n;
    }
    return n;
}

/* Why add_node() failed: the budget (VIGIL_ELIMIT at `at`) or memory. */
static int node_failed(const builder *b, vigil__json_problem *pb, const unsigned char *base,
                       const unsigned char *at)
{
    return b->over ? problem(pb, VIGIL_ELIMIT, base, at, b->over) : VIGIL_ENOMEM;
}

/* The strict check; with a builder, also builds the tree (VIGIL_ENOMEM when
 * out of memory). */
static ALWAYS_INLINE int scan(const char *text, size_t len, size_t max_depth,
                              vigil__json_problem *pb, builder *bld)
{
    pthread_once(&g_tables_once, init_tables);
    const unsigned char *base = (const unsigned char *)text, *p = base, *end = base + len;
    uint64_t kinds[(DEPTH_CAP + 63) / 64];
    size_t depth = 0;
    int state = S_VALUE, in_obj = 0, rc;
    if (max_depth > DEPTH_CAP)
        max_depth = DEPTH_CAP;
    while (p < end) {
        unsigned cls = k_outer[*p];
        if (cls == C_WS) {
            p++;
            continue;
        }
        switch (cls) {
        case C_OBJ:
        case C_ARR:
            if (state != S_VALUE && state != S_ARR_FIRST)
                goto unexpected;
            if (depth >= max_depth)
                return problem(pb, VIGIL_ELIMIT, base, p, "nesting too deep");
            in_obj = cls == C_OBJ;
            if (bld) {
                cJSON *n = add_node(bld, depth, in_obj ? cJSON_Object : cJSON_Array);
                if (!n)
                    return node_failed(bld, pb, base, p);
                bld->stack[depth] = n;
            }
            if (in_obj)
                kinds[depth / 64] |= (uint64_t)1 << (depth % 64);
            else
                kinds[depth / 64] &= ~((uint64_t)1 << (depth % 64));
            depth++;
            state = in_obj ? S_OBJ_FIRST : S_ARR_FIRST;
            p++;
            if (in_obj && p < end && *p == '"') /* what the next turn would do, directly */
                goto key;
            continue;
        case C_END_OBJ:
        case C_END_ARR:
            if (!(state == S_AFTER || (cls == C_END_OBJ && state == S_OBJ_FIRST) ||
                  (cls == C_END_ARR && state == S_ARR_FIRST)) ||
                depth == 0 || in_obj != (cls == C_END_OBJ))
                goto unexpected;
            depth--;
            in_obj = depth ? (int)((kinds[(depth - 1) / 64] >> ((depth - 1) % 64)) & 1) : 0;
            state = depth ? S_AFTER : S_DONE;
            p++;
            continue;
        case C_COMMA:
            if (state != S_AFTER)
                goto unexpected;
            state = in_obj ? S_KEY : S_VALUE;
            p++;
            continue;
        case C_COLON:
            if (state != S_COLON)
                goto unexpected;
            state = S_VALUE;
            p++;
            continue;
        case C_QUOTE:
            if (state == S_OBJ_FIRST || state == S_KEY)
                goto key;
            if (state != S_VALUE && state != S_ARR_FIRST)
                goto unexpected;
            goto value_string;
        case C_NUM:
        case C_LIT:
            if (state != S_VALUE && state != S_ARR_FIRST)
                goto unexpected;
            goto value_scalar;
        default:
            if (*p == 0)
                return problem(pb, VIGIL_EJSON, base, p, "NUL byte outside a string");
            goto unexpected;
        }

        /* The branches below are reached from the switch and, for the usual
         * sequences (a key after '{' or ',', a value after ':'), directly,
         * exactly as the next turn of the loop would reach them: each has
         * its own, well-predicted jump. */
    key : { /* *p == '"', state S_OBJ_FIRST or S_KEY */
        const unsigned char *s = p;
        int esc = 0;
        if ((rc = scan_string(&p, end, base, pb, &esc)) != VIGIL_OK)
            return rc;
        if (bld && !(bld->key = copy_string(&bld->a, s + 1, p - 1, esc)))
            return VIGIL_ENOMEM;
        state = S_COLON;
        if (p < end && *p == ':') {
            p++;
            state = S_VALUE;
            if (p < end) {
                if (*p == '"')
                    goto value_string;
                cls = k_outer[*p];
                if (cls == C_NUM)
                    goto value_scalar;
            }
        }
        continue;
    }
    value_string : { /* *p == '"', state S_VALUE or S_ARR_FIRST */
        const unsigned char *s = p;
        int esc = 0;
        if ((rc = scan_string(&p, end, base, pb, &esc)) != VIGIL_OK)
            return rc;
        if (bld) {
            cJSON *n = add_node(bld, depth, cJSON_String);
            if (!n)
                return node_failed(bld, pb, base, s);
            if (!(n->valuestring = copy_string(&bld->a, s + 1, p - 1, esc)))
                return VIGIL_ENOMEM;
        }
        goto after_value;
    }
    value_scalar : { /* cls C_NUM or C_LIT at p, state S_VALUE or S_ARR_FIRST */
        const unsigned char *s = p;
        num_acc acc;
        memset(&acc, 0, sizeof(acc));
        rc = cls == C_NUM ? check_number(&p, end, base, pb, bld ? &acc : NULL)
                          : check_literal(&p, end, base, pb);
        if (rc != VIGIL_OK)
            return rc;
        if (bld) {
            int type = cls == C_NUM ? cJSON_Number
                       : *s == 't'  ? cJSON_True
                       : *s == 'f'  ? cJSON_False
                                    : cJSON_NULL;
            cJSON *n = add_node(bld, depth, type);
            if (!n)
                return node_failed(bld, pb, base, s);
            if (type == cJSON_Number) {
                double v = number_value(&acc, s, p);
                n->valuedouble = v;
                n->valueint = v >= INT_MAX ? INT_MAX : v <= (double)INT_MIN ? INT_MIN : (int)v;
            } else if (type == cJSON_True) {
                n->valueint = 1;
            }
        }
    }
    after_value:
        state = depth ? S_AFTER : S_DONE;
        if (depth && p < end && *p == ',') {
            p++;
            state = in_obj ? S_KEY : S_VALUE;
            if (in_obj && p < end && *p == '"')
                goto key;
        }
    }
    if (state != S_DONE)
        return problem(pb, VIGIL_EJSON, base, end,
                       p == base || (depth == 0 && state == S_VALUE) ? "empty input"
                                                                     : "unexpected end of input");
    pb->code = VIGIL_OK;
    pb->offset = len;
    pb->reason = "";
    return VIGIL_OK;
unexpected:
    return problem(pb, VIGIL_EJSON, base, p, expected(state, in_obj));
}

int vigil__json_check(const char *text, size_t len, size_t max_depth, vigil__json_problem *pb)
{
    return scan(text, len, max_depth, pb, NULL);
}

/* ---- paths ------------------------------------------------------------------ */

#define KEY_CLIP 64

void vigil__json_path_init(vigil__json_path *p)
{
    p->len = 0;
    p->s[0] = '\0';
}

/* Appends n bytes, or "..." once the path is full. */
static void path_put(vigil__json_path *p, const char *s, size_t n)
{
    size_t room = sizeof(p->s) - 1 - p->len;
    if (room < 4) /* already clipped */
        return;
    if (n > room - 3) {
        memcpy(p->s + p->len, "...", 3);
        p->len += 3;
        p->s[p->len] = '\0';
        p->len = sizeof(p->s) - 1; /* full: no more appends */
        return;
    }
    memcpy(p->s + p->len, s, n);
    p->len += n;
    p->s[p->len] = '\0';
}

static int ident_key(const char *s, size_t len)
{
    if (len == 0 || len > KEY_CLIP)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (i > 0 && ((c >= '0' && c <= '9') || c == ':' || c == '-'));
        if (!ok)
            return 0;
    }
    return 1;
}

/* Renders s[0..len) quoted into out (cap >= 16), at most KEY_CLIP input
 * bytes; `raw` means s is JSON source text whose escapes are kept as written. */
static size_t render_quoted(char *out, size_t cap, const char *str, size_t len, int raw)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    size_t o = 0, used = 0;
    out[o++] = '"';
    while (s < end) {
        char tmp[8];
        size_t tn, adv = 1;
        unsigned char c = *s;
        if (used >= KEY_CLIP) {
            memcpy(tmp, "...", 3);
            tn = 3;
            adv = (size_t)(end - s);
        } else if ((c == '"' || c == '\\') && !raw) {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            tn = 2;
        } else if (c < 0x20 || c == 0x7F) {
            const char *short_esc = c == '\n'   ? "\\n"
                                    : c == '\t' ? "\\t"
                                    : c == '\r' ? "\\r"
                                                : NULL;
            if (short_esc) {
                memcpy(tmp, short_esc, 2);
                tn = 2;
            } else {
                tn = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            }
        } else if (c < 0x80) {
            tmp[0] = (char)c;
            tn = 1;
        } else {
            size_t n = utf8_seq(s, end);
            if (n) {
                memcpy(tmp, s, n);
                tn = adv = n;
            } else {
                memcpy(tmp, "\xEF\xBF\xBD", 3);
                tn = 3;
            }
        }
        if (o + tn + 2 > cap)
            break;
        memcpy(out + o, tmp, tn);
        o += tn;
        used += adv;
        s += adv;
    }
    out[o++] = '"';
    out[o] = '\0';
    return o;
}

static void path_key_impl(vigil__json_path *p, const char *key, size_t len, int raw)
{
    if (ident_key(key, len)) {
        if (p->len)
            path_put(p, ".", 1);
        path_put(p, key, len);
        return;
    }
    char q[KEY_CLIP * 6 + 16];
    q[0] = '[';
    size_t n = render_quoted(q + 1, sizeof(q) - 2, key, len, raw);
    q[1 + n] = ']';
    path_put(p, q, n + 2);
}

void vigil__json_path_key(vigil__json_path *p, const char *key, size_t len)
{
    path_key_impl(p, key, len, 0);
}

void vigil__json_path_index(vigil__json_path *p, size_t index)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "[%zu]", index);
    path_put(p, tmp, (size_t)n);
}

const char *vigil__json_path_str(const vigil__json_path *p)
{
    return p->len ? p->s : "top level";
}

void vigil__json_quote_clip(char *msg, size_t size, const char *s, size_t len)
{
    size_t used = strlen(msg);
    char q[KEY_CLIP * 6 + 16];
    size_t n = render_quoted(q, sizeof(q), s, len, 0);
    if (used + n + 1 > size)
        return;
    memcpy(msg + used, q, n + 1);
}

/* Index of the closing quote of the string opening at text[i], or len. */
static size_t string_end(const char *text, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (text[i] == '\\')
            i++;
        else if (text[i] == '"')
            return i;
    }
    return len;
}

#define PATH_FRAMES 64

typedef struct {
    unsigned char obj, has_key;
    size_t index, key_off, key_len;
} path_frame;

void vigil__json_path_at(vigil__json_path *p, const char *text, size_t len, size_t offset)
{
    path_frame st[PATH_FRAMES];
    size_t depth = 0, i = 0;
    int key_hit = 0;
    if (offset > len)
        offset = len;
    while (i < offset) {
        path_frame *top = depth && depth <= PATH_FRAMES ? &st[depth - 1] : NULL;
        switch (text[i]) {
        case '{':
        case '[':
            if (depth < PATH_FRAMES) {
                path_frame *f = &st[depth];
                f->obj = text[i] == '{';
                f->has_key = 0;
                f->index = 0;
            }
            depth++;
            i++;
            break;
        case '}':
        case ']':
            if (depth)
                depth--;
            i++;
            break;
        case ',':
            if (top && top->obj)
                top->has_key = 0;
            else if (top)
                top->index++;
            i++;
            break;
        case '"': {
            size_t e = string_end(text, len, i);
            if (top && top->obj && !top->has_key) {
                top->key_off = i + 1;
                top->key_len = e - i - 1;
                top->has_key = 1;
                if (offset <= e)
                    key_hit = 1;
            }
            i = e + 1;
            break;
        }
        default: i++; break;
        }
        if (key_hit)
            break;
    }
    vigil__json_path_init(p);
    size_t n = depth < PATH_FRAMES ? depth : PATH_FRAMES;
    for (size_t k = 0; k < n; k++) {
        if (st[k].obj && st[k].has_key)
            path_key_impl(p, text + st[k].key_off, st[k].key_len, 1);
        else if (!st[k].obj)
            vigil__json_path_index(p, st[k].index);
    }
    if (depth > PATH_FRAMES)
        path_put(p, "...", 3);
}

/* ---- strict parse ------------------------------------------------------------- */

static int report(int code, const char *text, size_t len, size_t offset, const char *reason)
{
    vigil__json_path path;
    size_t line = 1, col = 1;
    if (offset > len)
        offset = len;
    vigil__json_path_at(&path, text, len, offset);
    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return vigil__error_set(code, "%s: %s (line %zu, column %zu)", vigil__json_path_str(&path),
                            reason, line, col);
}

int vigil__json_parse(cJSON **out, const char *text, size_t len, size_t max_depth)
{
    vigil__json_problem pb;
    *out = NULL;
    vigil__json_init();
    if (!text && len)
        return vigil__error_set(VIGIL_EINVAL, "JSON text is NULL");
    int rc = vigil__json_check(text, len, max_depth, &pb);
    if (rc != VIGIL_OK)
        return report(rc, text, len, pb.offset, pb.reason);
    /* The text is valid JSON within cJSON's limits: cJSON fails only when out
     * of memory. */
    t_alloc_failed = 0;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        int oom = t_alloc_failed;
        t_alloc_failed = 0;
        return oom ? vigil__error_oom()
                   : vigil__error_set(VIGIL_EJSON, "top level: the JSON parser refused the text");
    }
    *out = root;
    return VIGIL_OK;
}

int vigil__json_parse_doc(vigil__json_doc *doc, const char *text, size_t len, size_t max_depth)
{
    return vigil__json_parse_doc_limited(doc, text, len, max_depth, NULL);
}

int vigil__json_parse_doc_limited(vigil__json_doc *doc, const char *text, size_t len,
                                  size_t max_depth, const vigil__json_limits *lim)
{
    vigil__json_problem pb;
    doc->root = NULL;
    doc->blocks = NULL;
    vigil__json_init();
    if (!text && len)
        return vigil__error_set(VIGIL_EINVAL, "JSON text is NULL");
    /* A first block sized for typical documents (a node per value, strings). */
    doc->next_block = len > ARENA_MAX / 4 ? ARENA_MAX : len < ARENA_MIN / 4 ? ARENA_MIN : len * 4;
    if (lim && lim->max_nodes && lim->max_nodes < (ARENA_MAX - len) / sizeof(cJSON) &&
        doc->next_block > lim->max_nodes * sizeof(cJSON) + len)
        doc->next_block = lim->max_nodes * sizeof(cJSON) + len; /* never more than the budget */
    if (doc->next_block < ARENA_MIN)
        doc->next_block = ARENA_MIN;
    builder bld; /* its stack is not initialised: scan() writes before it reads */
    bld.a.doc = doc;
    bld.a.ptr = bld.a.end = NULL;
    bld.root = NULL;
    bld.key = NULL;
    bld.lim = lim;
    bld.nodes = 0;
    bld.over = NULL;
    memset(bld.nchild, 0, sizeof(bld.nchild));
    int rc = scan(text, len, max_depth, &pb, &bld);
    cJSON *root = bld.root;
    if (rc != VIGIL_OK) {
        vigil__json_doc_free(doc);
        return rc == VIGIL_ENOMEM ? vigil__error_oom()
                                  : report(rc, text, len, pb.offset, pb.reason);
    }
    doc->root = root;
    return VIGIL_OK;
}

void vigil__json_doc_free(vigil__json_doc *doc)
{
    json_block *b = doc->blocks;
    while (b) {
        json_block *next = b->next;
        vigil__free(b);
        b = next;
    }
    doc->blocks = NULL;
    doc->root = NULL;
}

/* ---- writer -------------------------------------------------------------------- */

int vigil__json_put_string(vigil_buf *b, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len, *run = s;
    int rc;
    pthread_once(&g_tables_once, init_tables);
    if ((rc = vigil__buf_grow(b, len + 2)) != VIGIL_OK)
        return rc;
    b->ptr[b->size++] = '"';
    while (s < end) {
        if (k_plain[*s]) {
            s++;
            continue;
        }
        unsigned char c = *s;
        size_t n = c >= 0x80 ? utf8_seq(s, end) : 0;
        if (n) {
            s += n;
            continue;
        }
        if ((rc = vigil__buf_put(b, (const char *)run, (size_t)(s - run))) != VIGIL_OK)
            return rc;
        char esc[8];
        size_t en = 2;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            if (c < 0x20) {
                en = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
            } else { /* invalid UTF-8 */
                memcpy(esc, "\xEF\xBF\xBD", 3);
                en = 3;
            }
        }
        if ((rc = vigil__buf_put(b, esc, en)) != VIGIL_OK)
            return rc;
        s++;
        run = s;
    }
    if ((rc = vigil__buf_grow(b, (size_t)(s - run) + 1)) != VIGIL_OK)
        return rc;
    memcpy(b->ptr + b->size, run, (size_t)(s - run));
    b->size += (size_t)(s - run);
    b->ptr[b->size++] = '"';
    b->ptr[b->size] = '\0';
    return VIGIL_OK;
}

int vigil__json_put_int64(vigil_buf *b, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return vigil__buf_put(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

int vigil__json_put_double(vigil_buf *b, double v)
{
    if (!isfinite(v))
        return vigil__error_set(VIGIL_EVALUE, "cannot write %s as a JSON number",
                                isnan(v) ? "NaN" : "an infinity");
    if (v == 0)
        return vigil__buf_put(b, signbit(v) ? "-0" : "0", signbit(v) ? 2 : 1);
    if (fabs(v) < 1e15 && v == (double)(int64_t)v)
        return vigil__json_put_int64(b, (int64_t)v);
    char tmp[40], out[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        /* snprintf and strtod share the locale, so the test is exact. */
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    /* Whatever the locale's decimal point, JSON wants '.'. */
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        char c = tmp[i];
        if (is_digit((unsigned char)c) || c == 'e' || c == 'E' || c == '+' || c == '-')
            out[o++] = c;
        else if (o == 0 || out[o - 1] != '.')
            out[o++] = '.';
    }
    return vigil__buf_put(b, out, o);
}
