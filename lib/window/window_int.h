/*
 * Private to lib/window/: the window layout, shared by window.c and
 * window_set.c. Never installed.
 */
#ifndef VIGIL_WINDOW_INT_H
#define VIGIL_WINDOW_INT_H

#include "internal/common.h"
#include "vigil/window.h"

typedef struct vigil__wsample {
    int64_t ts;
    double v;
} vigil__wsample;

struct vigil_window {
    vigil__wsample *s; /* ring buffer of cap (a power of two) samples */
    size_t cap;
    size_t n;    /* samples held */
    size_t head; /* index of the oldest */
    size_t max_n;
    int64_t max_age;
};

/* Options with defaults applied and checked. */
int vigil__window_resolve(vigil_window_options *out, const vigil_window_options *in);
/* Initialises a window in place (no allocation) / releases its buffer. */
void vigil__window_init(vigil_window *w, const vigil_window_options *o);
void vigil__window_dispose(vigil_window *w);

/* Sets the age bound of a window: samples older than newest - max_age fall
 * out now, and a buffer four times larger than the samples left is shrunk
 * (kept as it is when that allocation fails). */
void vigil__window_set_age(vigil_window *w, int64_t max_age);
/* Swaps the contents of two windows (their addresses stay). */
void vigil__window_swap(vigil_window *a, vigil_window *b);
/* Appends the samples of src newer than dst's newest to dst. */
int vigil__window_merge_newer(vigil_window *dst, const vigil_window *src);
/* The window of a key, created empty with the given age bound when absent:
 * VIGIL_OK, VIGIL_ELIMIT (max_series reached; nothing created, the message
 * names the limit and the series) or VIGIL_ENOMEM. *created tells which. */
int vigil__window_set_open(vigil_window_set *set, const char *key, size_t len, int64_t max_age,
                           vigil_window **out, int *created);
/* The set's bound on windows (max_series) and on samples per window. */
size_t vigil__window_set_max_series(const vigil_window_set *set);
size_t vigil__window_set_max_samples(const vigil_window_set *set);
/* The age bound of the set's options (windows.max_age). */
int64_t vigil__window_set_max_age(const vigil_window_set *set);

#endif
