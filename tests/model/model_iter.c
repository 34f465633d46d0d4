/*
 * model_iter.c - iterator checks of model_test: random walks (seek,
 * seek_for_prev, first/last, next/prev with direction switches) over random
 * bounds and prefixes of one tree, at the latest state, at an in-memory
 * snapshot or at a pinned seqno (through talus_snapshot_at), with writes
 * interleaved (an iterator sees the state of its creation), and full scans
 * in both directions. Every position is compared with the model.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "model_run.h"

/* Compare the iterator's position with the model's. */
static void check_pos(struct mr_run *r, int t, talus_iter *it, const mt_view *v, long pos,
                      const char *step)
{
    int valid = talus_iter_valid(it);
    r->n_iter_steps++;
    if (!valid) {
        int st = talus_iter_status(it);
        if (st != 0)
            mr_fail(r, "tree %d iterator %s: status %d (%s): %s", t, step, st, talus_strerror(st),
                    talus_errmsg());
        if (pos >= 0)
            mr_fail(r, "tree %d iterator %s: not valid, expected key %s", t, step,
                    mt_hex(r->ks.key[pos], r->ks.len[pos]));
        return;
    }
    size_t kn = 0, vn = 0;
    const void *k = talus_iter_key(it, &kn);
    const void *val = talus_iter_value(it, &vn);
    if (pos < 0) {
        mr_fail(r, "tree %d iterator %s: expected end, got key %s", t, step, mt_hex(k, kn));
    }
    if (mt_cmp(k, kn, r->ks.key[pos], r->ks.len[pos]) != 0) {
        char got[160];
        snprintf(got, sizeof got, "%s", mt_hex(k, kn));
        mr_fail(r, "tree %d iterator %s: expected key %s, got key %s", t, step,
                mt_hex(r->ks.key[pos], r->ks.len[pos]), got);
    }
    if (!mt_value_eq(&v->state[pos], val, vn))
        mr_fail(r, "tree %d iterator %s at key %s: value differs (expected %u bytes, got %zu)", t,
                step, mt_hex(k, kn), v->state[pos].len, vn);
}

/* Random bounds and prefix for an iterator. lower <= upper when both set. */
struct bounds {
    uint8_t lo[80], hi[80], pre[8];
    size_t lon, hin, pren;
    int has_lo, has_hi;
};

static void random_bounds(struct mr_run *r, struct bounds *b)
{
    memset(b, 0, sizeof *b);
    b->has_lo = mt_chance(&r->rng, 40);
    b->has_hi = mt_chance(&r->rng, 40);
    if (b->has_lo)
        mr_target(r, b->lo, sizeof b->lo, &b->lon);
    if (b->has_hi)
        mr_target(r, b->hi, sizeof b->hi, &b->hin);
    if (b->has_lo && b->has_hi && mt_cmp(b->lo, b->lon, b->hi, b->hin) > 0) {
        struct bounds t = *b;
        memcpy(b->lo, t.hi, t.hin);
        b->lon = t.hin;
        memcpy(b->hi, t.lo, t.lon);
        b->hin = t.lon;
    }
    if (mt_chance(&r->rng, 35)) {
        /* Mostly the start of an existing key, so the prefix selects some. */
        size_t i = mt_below(&r->rng, r->ks.n);
        size_t max = r->ks.len[i] < 3 ? r->ks.len[i] : 3;
        b->pren = 1 + mt_below(&r->rng, max);
        memcpy(b->pre, r->ks.key[i], b->pren);
        if (mt_chance(&r->rng, 10))
            b->pre[b->pren - 1] ^= 0xff;
    }
}

static talus_iter *iter_open(struct mr_run *r, int t, const struct bounds *b,
                             const talus_snapshot *s)
{
    talus_iter_options io;
    talus_iter_options_init(&io);
    io.snapshot = s;
    if (b->has_lo) {
        io.lower = b->lo;
        io.lower_len = b->lon;
    }
    if (b->has_hi) {
        io.upper = b->hi;
        io.upper_len = b->hin;
    }
    if (b->pren > 0) {
        io.prefix = b->pre;
        io.prefix_len = b->pren;
    }
    talus_iter *it = NULL;
    mr_check_rc(r, talus_iter_new(r->t[t], &io, &it), "talus_iter_new");
    return it;
}

/* Where an iterator reads: the latest state (a copy: the iterator must not
 * see writes made after its creation), an in-memory snapshot, or a pinned
 * seqno through a snapshot handle from talus_snapshot_at (*own, released by
 * the caller). */
static const mt_val *iter_state(struct mr_run *r, int t, int snap, int pin,
                                const talus_snapshot **s, talus_snapshot **own)
{
    *s = NULL;
    *own = NULL;
    if (snap >= 0) {
        *s = r->snaps[snap].s;
        return mr_tree_state(r, r->snaps[snap].state, t);
    }
    if (pin >= 0) {
        *own = talus_snapshot_at(r->db, r->pins[pin].seq);
        if (*own == NULL)
            mr_fail(r, "talus_snapshot_at(pinned seqno %" PRIu64 ") returned NULL: %s",
                    r->pins[pin].seq, talus_errmsg());
        *s = *own;
        return mr_tree_state(r, r->pins[pin].state, t);
    }
    memcpy(r->scratch_state, mr_tree_state(r, r->state, t), r->ks.n * sizeof *r->state);
    return r->scratch_state;
}

void mr_iter_walk(struct mr_run *r)
{
    int t = mr_pick_tree(r), snap = -1, pin = -1;
    if (r->nsnaps > 0 && mt_chance(&r->rng, 25))
        snap = (int)mt_below(&r->rng, r->nsnaps);
    else if (r->npins > 0 && mt_chance(&r->rng, 20))
        pin = (int)mt_below(&r->rng, r->npins);
    r->opname = snap >= 0  ? "iterator walk at a snapshot"
                : pin >= 0 ? "iterator walk at a pinned seqno"
                           : "iterator walk";
    struct bounds b;
    random_bounds(r, &b);
    mt_view v;
    const talus_snapshot *snapshot;
    talus_snapshot *own;
    mt_view_init(&v, &r->ks, iter_state(r, t, snap, pin, &snapshot, &own), b.has_lo ? b.lo : NULL,
                 b.lon, b.has_hi ? b.hi : NULL, b.hin, b.pren ? b.pre : NULL, b.pren);
    talus_iter *it = iter_open(r, t, &b, snapshot);
    long pos = -1;
    int positioned = 0, forward = 1;
    unsigned steps = 1 + (unsigned)mt_below(&r->rng, 40);
    char what[200];
    for (unsigned s = 0; s < steps; s++) {
        if (!positioned || pos < 0 || mt_chance(&r->rng, 12)) {
            uint8_t tg[80];
            size_t tn;
            switch (mt_below(&r->rng, 4)) {
            case 0:
                talus_iter_seek_first(it);
                pos = mt_view_first(&v);
                snprintf(what, sizeof what, "seek_first");
                forward = 1;
                break;
            case 1:
                talus_iter_seek_last(it);
                pos = mt_view_last(&v);
                snprintf(what, sizeof what, "seek_last");
                forward = 0;
                break;
            case 2:
                mr_target(r, tg, sizeof tg, &tn);
                talus_iter_seek(it, tg, tn);
                pos = mt_view_seek(&v, tg, tn);
                snprintf(what, sizeof what, "seek(%s)", mt_hex(tg, tn));
                forward = 1;
                break;
            default:
                mr_target(r, tg, sizeof tg, &tn);
                talus_iter_seek_for_prev(it, tg, tn);
                pos = mt_view_seek_for_prev(&v, tg, tn);
                snprintf(what, sizeof what, "seek_for_prev(%s)", mt_hex(tg, tn));
                forward = 0;
                break;
            }
            positioned = 1;
        } else {
            /* Switch direction now and then: the classic merging-iterator
             * bug is in the switch. */
            if (mt_chance(&r->rng, 25))
                forward = !forward;
            if (forward) {
                talus_iter_next(it);
                pos = mt_view_next(&v, pos);
                snprintf(what, sizeof what, "next (step %u)", s);
            } else {
                talus_iter_prev(it);
                pos = mt_view_prev(&v, pos);
                snprintf(what, sizeof what, "prev (step %u)", s);
            }
        }
        check_pos(r, t, it, &v, pos, what);
        /* Writes while the iterator lives must stay invisible to it. */
        if (mt_chance(&r->rng, 8)) {
            const char *op = r->opname;
            mr_random_write(r);
            r->opname = op;
        }
    }
    talus_iter_free(it);
    talus_snapshot_release(r->db, own);
}

void mr_full_scan(struct mr_run *r, int t, int snap, int pin)
{
    mt_view v;
    const talus_snapshot *s;
    talus_snapshot *own;
    mt_view_init(&v, &r->ks, iter_state(r, t, snap, pin, &s, &own), NULL, 0, NULL, 0, NULL, 0);
    struct bounds none;
    memset(&none, 0, sizeof none);
    for (int dir = 0; dir < 2; dir++) {
        talus_iter *it = iter_open(r, t, &none, s);
        long pos;
        if (dir == 0) {
            talus_iter_seek_first(it);
            pos = mt_view_first(&v);
        } else {
            talus_iter_seek_last(it);
            pos = mt_view_last(&v);
        }
        check_pos(r, t, it, &v, pos, dir == 0 ? "full scan seek_first" : "full scan seek_last");
        while (pos >= 0) {
            if (dir == 0) {
                talus_iter_next(it);
                pos = mt_view_next(&v, pos);
            } else {
                talus_iter_prev(it);
                pos = mt_view_prev(&v, pos);
            }
            check_pos(r, t, it, &v, pos, dir == 0 ? "full scan next" : "full scan prev");
        }
        talus_iter_free(it);
    }
    talus_snapshot_release(r->db, own);
}

void mr_full_scan_all(struct mr_run *r)
{
    const char *op = r->opname;
    for (int t = 0; t < r->ntrees; t++) {
        r->opname = "full scan (all trees)";
        mr_full_scan(r, t, -1, -1);
        r->opname = "full scan at every pinned seqno";
        for (int p = 0; p < r->npins; p++)
            mr_full_scan(r, t, -1, p);
    }
    r->opname = op;
}
