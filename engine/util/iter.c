/* iter.c - the always-empty iterator (carries a status, e.g. an open error). */
#include <stdlib.h>

#include "util/iter.h"

typedef struct empty_iter {
    tl_iter base;
    int rc;
} empty_iter;

static void e_seek_first(tl_iter *it) {}

static void e_seek(tl_iter *it, tl_slice t) {}

static void e_move(tl_iter *it) {}

static bool e_valid(const tl_iter *it)
{
    return false;
}

static tl_slice e_slice(const tl_iter *it)
{
    return tl_slice_make(NULL, 0);
}

static int e_status(const tl_iter *it)
{
    return ((const empty_iter *)it)->rc;
}

static void e_destroy(tl_iter *it)
{
    free(it);
}

static const tl_iter_ops empty_ops = {
    .seek_first = e_seek_first,
    .seek_last = e_seek_first,
    .seek = e_seek,
    .seek_for_prev = e_seek,
    .next = e_move,
    .prev = e_move,
    .valid = e_valid,
    .key = e_slice,
    .value = e_slice,
    .status = e_status,
    .destroy = e_destroy,
};

tl_iter *tl_iter_empty(int rc)
{
    empty_iter *it = malloc(sizeof *it);
    if (!it)
        return NULL;
    it->base.ops = &empty_ops;
    it->rc = rc;
    return &it->base;
}
