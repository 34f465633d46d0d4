/*
 * block_builder.c - builds one prefix-compressed block (format in block.h
 * and FORMAT.md §2) and validates a block's restart array for readers.
 */
#include <stdlib.h>

#include "table/block.h"
#include "util/coding.h"
#include "util/err.h"

void tbl_bb_init(tbl_block_builder *bb, int restart_interval)
{
    memset(bb, 0, sizeof *bb);
    bb->interval = restart_interval < 1 ? 1 : restart_interval;
}

void tbl_bb_free(tbl_block_builder *bb)
{
    tl_buf_free(&bb->buf);
    tl_buf_free(&bb->last_key);
    free(bb->restarts);
    bb->restarts = NULL;
}

void tbl_bb_reset(tbl_block_builder *bb)
{
    tl_buf_clear(&bb->buf);
    tl_buf_clear(&bb->last_key);
    bb->nrestarts = 0;
    bb->counter = 0;
    bb->entries = 0;
    bb->finished = false;
}

static int push_restart(tbl_block_builder *bb)
{
    if (bb->buf.len > UINT32_MAX)
        return tl_err(TALUS_ETOOBIG, "block grew past 4 GiB");
    if (bb->nrestarts == bb->restarts_cap) {
        size_t cap = bb->restarts_cap ? 2 * bb->restarts_cap : 64;
        uint32_t *p = realloc(bb->restarts, cap * sizeof *p);
        if (!p)
            return tl_err(TALUS_ENOMEM, "out of memory in block builder");
        bb->restarts = p;
        bb->restarts_cap = cap;
    }
    bb->restarts[bb->nrestarts++] = (uint32_t)bb->buf.len;
    bb->counter = 0;
    return 0;
}

int tbl_bb_add(tbl_block_builder *bb, tl_slice key, tl_slice value)
{
    if (key.len > UINT32_MAX || value.len > UINT32_MAX)
        return tl_err(TALUS_ETOOBIG, "block entry too large");
    size_t shared = 0;
    if (bb->entries > 0 && bb->counter < bb->interval) {
        size_t n = key.len < bb->last_key.len ? key.len : bb->last_key.len;
        const uint8_t *a = bb->last_key.data, *b = key.data;
        while (shared < n && a[shared] == b[shared])
            shared++;
    } else {
        TRY(push_restart(bb));
    }
    size_t nonshared = key.len - shared;
    TRY(tl_buf_reserve(&bb->buf, 3 * TL_MAX_VARINT32 + nonshared + value.len));
    uint8_t *p = bb->buf.data + bb->buf.len;
    p += tl_put_varint32(p, (uint32_t)shared);
    p += tl_put_varint32(p, (uint32_t)nonshared);
    p += tl_put_varint32(p, (uint32_t)value.len);
    if (nonshared)
        memcpy(p, key.data + shared, nonshared);
    p += nonshared;
    if (value.len)
        memcpy(p, value.data, value.len);
    p += value.len;
    bb->buf.len = (size_t)(p - bb->buf.data);
    /* Only the suffix changed since the previous key. */
    bb->last_key.len = shared;
    TRY(tl_buf_append(&bb->last_key, key.data + shared, nonshared));
    bb->counter++;
    bb->entries++;
    return 0;
}

int tbl_bb_finish(tbl_block_builder *bb, tl_slice *out)
{
    if (!bb->finished) {
        TRY(tl_buf_reserve(&bb->buf, 4 * (bb->nrestarts + 1)));
        for (size_t i = 0; i < bb->nrestarts; i++)
            TRY(tl_buf_put_fixed32(&bb->buf, bb->restarts[i]));
        TRY(tl_buf_put_fixed32(&bb->buf, (uint32_t)bb->nrestarts));
        bb->finished = true;
    }
    *out = tl_buf_slice(&bb->buf);
    return 0;
}

/* Restart array rules of FORMAT.md §4, on a block whose count fits. */
static bool restarts_ok(const tbl_block *b)
{
    if (b->num_restarts == 0)
        return b->restarts == 0;
    if (tbl_block_restart(b, 0) != 0)
        return false;
    uint32_t prev = 0;
    for (uint32_t i = 1; i < b->num_restarts; i++) {
        uint32_t r = tbl_block_restart(b, i);
        if (r <= prev)
            return false;
        prev = r;
    }
    /* An entry takes at least 3 bytes. */
    return (size_t)prev + 3 <= b->restarts;
}

int tbl_block_init(tbl_block *b, tl_slice data, const char *name, uint64_t off)
{
    memset(b, 0, sizeof *b);
    if (data.len < 4)
        return tl_err(TALUS_ECORRUPT, "table %s: block at offset %llu too short (%zu bytes)", name,
                      (unsigned long long)off, data.len);
    uint32_t n = tl_get_fixed32(data.data + data.len - 4);
    if (n > (data.len - 4) / 4)
        return tl_err(TALUS_ECORRUPT,
                      "table %s: block at offset %llu: restart count %u does not fit in %zu bytes",
                      name, (unsigned long long)off, n, data.len);
    b->data = data.data;
    b->size = data.len;
    b->restarts = data.len - 4 - 4 * (size_t)n;
    b->num_restarts = n;
    if (!restarts_ok(b)) {
        memset(b, 0, sizeof *b);
        return tl_err(TALUS_ECORRUPT, "table %s: block at offset %llu: bad restart array", name,
                      (unsigned long long)off);
    }
    return 0;
}
