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

#endif
