/*
 * model_ops.c - the operations of model_test, each checked against the
 * model: single writes and atomic batches over several trees (with a random
 * durability), point reads at the latest state, at in-memory snapshots and
 * at pinned seqnos, first/last key, snapshots taken and released, seqnos
 * pinned and unpinned, reads the engine must refuse, a seqno generator that
 * goes backwards, flushes and range compactions.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_run.h"

static uint32_t value_len(struct mr_run *r)
{
    uint64_t p = mt_below(&r->rng, 100);
    if (p < 55)
        return (uint32_t)mt_below(&r->rng, 33);
    if (p < 90)
        return 33 + (uint32_t)mt_below(&r->rng, 268);
    return 301 + (uint32_t)mt_below(&r->rng, MR_MAX_VALUE - 300);
}

static void model_apply(struct mr_run *r, const struct mr_wop *w)
{
    mt_val *v = &mr_tree_state(r, r->state, w->tree)[w->key];
    *v = w->kind == MR_PUT ? (mt_val){w->seed, w->len, 1} : (mt_val){0, 0, 0};
}

/* A random write: the value bytes are left in r->vbuf. */
static void random_wop(struct mr_run *r, struct mr_wop *w, int tree, size_t key, unsigned put_pct,
                       unsigned del_pct)
{
    uint64_t p = mt_below(&r->rng, 100);
    w->tree = (uint16_t)tree;
    w->key = (uint32_t)key;
    w->kind = p < put_pct ? MR_PUT : p < put_pct + del_pct ? MR_DEL : MR_WEAK;
    w->seed = mt_rand(&r->rng);
    w->len = w->kind == MR_PUT ? value_len(r) : 0;
    w->hash = 0;
    if (w->kind == MR_PUT) {
        mt_value_fill(w->seed, w->len, r->vbuf);
        w->hash = mt_hash(r->vbuf, w->len);
    }
}

static const char *kind_name(int kind)
{
    return kind == MR_PUT ? "put" : kind == MR_DEL ? "delete" : "weak delete";
}

void mr_do_write(struct mr_run *r, enum mr_wkind kind)
{
    struct mr_hist h;
    memset(&h, 0, sizeof h);
    int t = mr_pick_tree(r);
    size_t k = mr_pick_key(r);
    struct mr_wop *w = &h.op[0];
    random_wop(r, w, t, k, 100, 0);
    w->kind = (uint8_t)kind;
    if (kind != MR_PUT)
        w->len = 0;
    r->opname = kind_name(kind);
    r->n_write++;
    uint64_t before = talus_seqno(r->db);
    const uint8_t *key = r->ks.key[k];
    size_t kn = r->ks.len[k];
    int rc = kind == MR_PUT   ? talus_put(r->t[t], key, kn, r->vbuf, w->len)
             : kind == MR_DEL ? talus_delete(r->t[t], key, kn)
                              : talus_weak_delete(r->t[t], key, kn);
    if (rc != 0)
        mr_fail(r, "tree %d key %s: returned %d (%s): %s", t, mt_hex(key, kn), rc,
                talus_strerror(rc), talus_errmsg());
    uint64_t now = talus_seqno(r->db);
    if (now <= before)
        mr_fail(r, "seqno did not advance after a write: %" PRIu64 " -> %" PRIu64, before, now);
    r->last_seqno = now;
    model_apply(r, w);
    h.seq = now;
    h.durability = r->opts.durability;
    h.tree_mask = 1u << t;
    h.nops = 1;
    mr_hist_add(r, &h);
}

void mr_random_write(struct mr_run *r)
{
    uint64_t p = mt_below(&r->rng, 10);
    mr_do_write(r, p < 7 ? MR_PUT : p < 9 ? MR_DEL : MR_WEAK);
}

static int random_durability(struct mr_run *r, int *recorded)
{
    uint64_t p = mt_below(&r->rng, 100);
    int d = p < 10   ? -1
            : p < 45 ? TALUS_DURABILITY_NONE
            : p < 90 ? TALUS_DURABILITY_BUFFERED
                     : TALUS_DURABILITY_SYNC;
    *recorded = d < 0 ? r->opts.durability : d;
    return d;
}

/* A batch of 1..8 writes over random trees; a (tree, key) may appear twice
 * and the last write wins. */
void mr_do_batch(struct mr_run *r)
{
    r->opname = "batch";
    r->n_write++;
    r->n_batch++;
    talus_batch_clear(r->batch);
    struct mr_hist h;
    memset(&h, 0, sizeof h);
    size_t n = 1 + mt_below(&r->rng, MR_MAX_BATCH);
    struct mr_wop prev = {0};
    for (size_t i = 0; i < n; i++) {
        int t;
        size_t k;
        if (i > 0 && mt_chance(&r->rng, 15)) {
            t = prev.tree; /* the same (tree, key) again */
            k = prev.key;
        } else {
            t = mr_pick_tree(r);
            k = mt_chance(&r->rng, 10) && i > 0 ? prev.key : mr_pick_key(r);
        }
        struct mr_wop w;
        random_wop(r, &w, t, k, 60, 20);
        const uint8_t *key = r->ks.key[k];
        size_t kn = r->ks.len[k];
        int rc = w.kind == MR_PUT   ? talus_batch_put(r->batch, r->t[t], key, kn, r->vbuf, w.len)
                 : w.kind == MR_DEL ? talus_batch_delete(r->batch, r->t[t], key, kn)
                                    : talus_batch_weak_delete(r->batch, r->t[t], key, kn);
        mr_check_rc(r, rc, "talus_batch_put/delete");
        unsigned j = 0;
        while (j < h.nops && (h.op[j].tree != w.tree || h.op[j].key != w.key))
            j++;
        h.op[j] = w;
        if (j == h.nops)
            h.nops++;
        h.tree_mask |= 1u << t;
        prev = w;
    }
    if (talus_batch_count(r->batch) != n)
        mr_fail(r, "talus_batch_count = %zu, expected %zu", talus_batch_count(r->batch), n);
    int d = random_durability(r, &h.durability);
    uint64_t before = talus_seqno(r->db), seq = 0;
    int rc = talus_batch_commit(r->db, r->batch, d, &seq);
    if (rc != 0)
        mr_fail(r, "talus_batch_commit of %zu ops (durability %s) returned %d (%s): %s", n,
                mr_dur_name(h.durability), rc, talus_strerror(rc), talus_errmsg());
    if (seq <= before)
        mr_fail(r, "batch seqno %" PRIu64 " not above previous %" PRIu64, seq, before);
    if (talus_seqno(r->db) != seq)
        mr_fail(r, "talus_seqno %" PRIu64 " after a batch given seqno %" PRIu64 " (one writer)",
                talus_seqno(r->db), seq);
    r->last_seqno = seq;
    for (unsigned i = 0; i < h.nops; i++)
        model_apply(r, &h.op[i]);
    h.seq = seq;
    mr_hist_add(r, &h);
}

/* Compare one point read with the model value v. rc/val/vn are the
 * engine's answer; for contains, val is NULL and rc is 1 or 0. */
static void check_read(struct mr_run *r, int t, const uint8_t *key, size_t kn, const mt_val *v,
                       int rc, const void *val, size_t vn, int is_contains)
{
    r->n_read++;
    if (is_contains) {
        if (rc < 0 || rc != (v->present ? 1 : 0))
            mr_fail(r, "tree %d key %s: expected %s, contains returned %d (%s)", t, mt_hex(key, kn),
                    v->present ? "1 (present)" : "0 (absent)", rc, rc < 0 ? talus_errmsg() : "");
        return;
    }
    if (!v->present) {
        if (rc != TALUS_ENOTFOUND)
            mr_fail(r, "tree %d key %s: expected absent, got rc %d%s%s (value %zu bytes)", t,
                    mt_hex(key, kn), rc, rc < 0 ? ": " : "", rc < 0 ? talus_errmsg() : "",
                    rc == 0 ? vn : 0);
        return;
    }
    if (rc != 0)
        mr_fail(r, "tree %d key %s: expected a value of %u bytes, got rc %d (%s): %s", t,
                mt_hex(key, kn), v->len, rc, talus_strerror(rc), talus_errmsg());
    if (!mt_value_eq(v, val, vn)) {
        uint8_t exp[16];
        mt_value_fill(v->seed, v->len < 16 ? v->len : 16, exp);
        char e[80];
        snprintf(e, sizeof e, "%s", mt_hex(exp, v->len < 16 ? v->len : 16));
        mr_fail(r, "tree %d key %s: expected value %u bytes [%s...], got %zu bytes [%s...]", t,
                mt_hex(key, kn), v->len, e, vn, mt_hex(val, vn < 16 ? vn : 16));
    }
}

void mr_do_read(struct mr_run *r, int where)
{
    uint8_t kb[80];
    size_t kn;
    const uint8_t *key;
    int t = mr_pick_tree(r);
    if (mt_chance(&r->rng, 85)) {
        size_t k = mr_pick_key(r);
        key = r->ks.key[k];
        kn = r->ks.len[k];
    } else {
        mr_target(r, kb, sizeof kb, &kn);
        key = kb;
    }
    size_t idx = mt_lower(&r->ks, key, kn);
    static const mt_val absent = {0, 0, 0};
    mt_val *state = r->state;
    int snap = -1, pin = -1;
    if (where == 1 && r->nsnaps > 0) {
        snap = (int)mt_below(&r->rng, r->nsnaps);
        state = r->snaps[snap].state;
    } else if (where == 2 && r->npins > 0) {
        pin = (int)mt_below(&r->rng, r->npins);
        state = r->pins[pin].state;
        r->n_pinned_read++;
    }
    const mt_val *v = idx < r->ks.n && mt_cmp(r->ks.key[idx], r->ks.len[idx], key, kn) == 0
                          ? &mr_tree_state(r, state, t)[idx]
                          : &absent;
    /* The snapshot handle and seqno to read at. */
    talus_snapshot *own = NULL;
    const talus_snapshot *s = NULL;
    uint64_t seq = talus_seqno(r->db);
    if (snap >= 0) {
        s = r->snaps[snap].s;
        seq = r->snaps[snap].seq;
    } else if (pin >= 0) {
        seq = r->pins[pin].seq;
    }
    void *val = NULL;
    size_t vn = 0;
    int rc;
    unsigned how = (unsigned)mt_below(&r->rng, 4);
    /* A pinned seqno is read through talus_get_at or a handle from
     * talus_snapshot_at; so is the current seqno now and then. */
    if ((pin >= 0 && how != 1) || (snap < 0 && pin < 0 && how >= 2 && mt_chance(&r->rng, 20))) {
        own = talus_snapshot_at(r->db, seq);
        if (own == NULL)
            mr_fail(r, "talus_snapshot_at(%s seqno %" PRIu64 ") returned NULL: %s",
                    pin >= 0 ? "pinned" : "current", seq, talus_errmsg());
        if (talus_snapshot_seqno(own) != seq)
            mr_fail(r, "talus_snapshot_at(%" PRIu64 ") has seqno %" PRIu64, seq,
                    talus_snapshot_seqno(own));
        s = own;
    }
    const char *at = snap >= 0 ? "snapshot" : pin >= 0 ? "pinned seqno" : "latest";
    static char name[64];
    switch (how) {
    case 0:
        snprintf(name, sizeof name, "contains at %s", at);
        r->opname = name;
        rc = talus_contains(r->t[t], s, key, kn);
        check_read(r, t, key, kn, v, rc, NULL, 0, 1);
        break;
    case 1:
        snprintf(name, sizeof name, "get_at %s %" PRIu64, at, seq);
        r->opname = name;
        rc = talus_get_at(r->t[t], seq, key, kn, &val, &vn);
        check_read(r, t, key, kn, v, rc, val, vn, 0);
        break;
    default:
        snprintf(name, sizeof name, "get at %s", at);
        r->opname = name;
        rc = talus_get(r->t[t], s, key, kn, &val, &vn);
        check_read(r, t, key, kn, v, rc, val, vn, 0);
        break;
    }
    talus_free(val);
    talus_snapshot_release(r->db, own);
}

void mr_do_first_last(struct mr_run *r)
{
    int last = mt_chance(&r->rng, 50), t = mr_pick_tree(r);
    r->opname = last ? "last_key" : "first_key";
    mt_view v;
    mt_view_init(&v, &r->ks, mr_tree_state(r, r->state, t), NULL, 0, NULL, 0, NULL, 0);
    long pos = last ? mt_view_last(&v) : mt_view_first(&v);
    void *k = NULL;
    size_t kn = 0;
    int rc = last ? talus_last_key(r->t[t], &k, &kn) : talus_first_key(r->t[t], &k, &kn);
    if (pos < 0 && rc != TALUS_ENOTFOUND)
        mr_fail(r, "tree %d is empty, expected ENOTFOUND, got rc %d", t, rc);
    if (pos >= 0) {
        mr_check_rc(r, rc, r->opname);
        if (mt_cmp(k, kn, r->ks.key[pos], r->ks.len[pos]) != 0) {
            char got[160];
            snprintf(got, sizeof got, "%s", mt_hex(k, kn));
            mr_fail(r, "tree %d: expected %s, got %s", t, mt_hex(r->ks.key[pos], r->ks.len[pos]),
                    got);
        }
    }
    talus_free(k);
}

static mt_val *copy_state(struct mr_run *r, const mt_val *from)
{
    mt_val *s = malloc(r->nstate * sizeof *s);
    if (s == NULL)
        mr_fail(r, "out of memory");
    memcpy(s, from, r->nstate * sizeof *s);
    return s;
}

void mr_snap_take(struct mr_run *r)
{
    r->opname = "snapshot take";
    if (r->nsnaps == MR_MAX_SNAPS)
        return;
    struct mr_snap *s = &r->snaps[r->nsnaps];
    uint64_t now = talus_seqno(r->db);
    s->s = talus_snapshot_take(r->db);
    if (s->s == NULL)
        mr_fail(r, "talus_snapshot_take returned NULL: %s", talus_errmsg());
    s->seq = talus_snapshot_seqno(s->s);
    if (s->seq != now)
        mr_fail(r, "snapshot seqno %" PRIu64 ", talus_seqno %" PRIu64 " (no writer running)",
                s->seq, now);
    s->state = copy_state(r, r->state);
    r->nsnaps++;
}

void mr_snap_release(struct mr_run *r, int i)
{
    r->opname = "snapshot release";
    talus_snapshot_release(r->db, r->snaps[i].s);
    free(r->snaps[i].state);
    r->snaps[i] = r->snaps[--r->nsnaps];
}

void mr_check_pin_list(struct mr_run *r)
{
    const char *op = r->opname;
    r->opname = "talus_snapshot_list";
    talus_pinned_snapshot *l = NULL;
    size_t n = 0;
    mr_check_rc(r, talus_snapshot_list(r->db, &l, &n), "talus_snapshot_list");
    int ok = n == (size_t)r->npins;
    for (size_t i = 0; ok && i < n; i++)
        ok = l[i].seqno == r->pins[i].seq;
    if (!ok) {
        char got[200] = "", exp[200] = "";
        for (size_t i = 0; i < n && strlen(got) < 150; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), " %" PRIu64, l[i].seqno);
        for (int i = 0; i < r->npins; i++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), " %" PRIu64, r->pins[i].seq);
        mr_fail(r, "pinned snapshots are [%s ], expected [%s ]", got, exp);
    }
    talus_free(l);
    r->opname = op;
}

static int find_pin(const struct mr_run *r, uint64_t seq)
{
    for (int i = 0; i < r->npins; i++)
        if (r->pins[i].seq == seq)
            return i;
    return -1;
}

static void unpin_at(struct mr_run *r, int i)
{
    int rc = talus_snapshot_unpin(r->db, r->pins[i].seq);
    if (rc != 0)
        mr_fail(r, "talus_snapshot_unpin(%" PRIu64 ") returned %d (%s): %s", r->pins[i].seq, rc,
                talus_strerror(rc), talus_errmsg());
    free(r->pins[i].state);
    memmove(&r->pins[i], &r->pins[i + 1], (size_t)(r->npins - i - 1) * sizeof r->pins[0]);
    r->npins--;
}

/* Pin the current seqno, or the seqno of a live in-memory snapshot (which
 * must be allowed: the snapshot holds its versions). */
void mr_do_pin(struct mr_run *r)
{
    int from_snap =
        r->nsnaps > 0 && mt_chance(&r->rng, 35) ? (int)mt_below(&r->rng, r->nsnaps) : -1;
    if (r->pin_durable_only && (from_snap >= 0 || !mr_hist_newest_certain(r)))
        return;
    uint64_t seq = from_snap >= 0 ? r->snaps[from_snap].seq : talus_seqno(r->db);
    const mt_val *state = from_snap >= 0 ? r->snaps[from_snap].state : r->state;
    r->opname = from_snap >= 0 ? "pin an in-memory snapshot's seqno" : "pin the current seqno";
    r->n_pin++;
    if (find_pin(r, seq) < 0 && r->npins == MR_MAX_PINS)
        unpin_at(r, (int)mt_below(&r->rng, r->npins));
    int rc = talus_snapshot_pin(r->db, seq);
    if (rc != 0)
        mr_fail(r, "talus_snapshot_pin(%" PRIu64 ") returned %d (%s): %s", seq, rc,
                talus_strerror(rc), talus_errmsg());
    if (find_pin(r, seq) < 0) {
        int i = r->npins;
        while (i > 0 && r->pins[i - 1].seq > seq) {
            r->pins[i] = r->pins[i - 1];
            i--;
        }
        r->pins[i].seq = seq;
        r->pins[i].state = copy_state(r, state);
        r->npins++;
    }
    if (mt_chance(&r->rng, 25))
        mr_check_pin_list(r);
}

void mr_do_unpin(struct mr_run *r)
{
    r->opname = "unpin";
    if (r->npins == 0 || mt_chance(&r->rng, 15)) {
        uint64_t seq = talus_seqno(r->db) + 1 + mt_below(&r->rng, 1000);
        if (find_pin(r, seq) >= 0)
            return;
        r->opname = "unpin a seqno that is not pinned";
        int rc = talus_snapshot_unpin(r->db, seq);
        if (rc != TALUS_ENOTFOUND)
            mr_fail(r,
                    "talus_snapshot_unpin(%" PRIu64 ") of a seqno not pinned returned %d, "
                    "expected TALUS_ENOTFOUND",
                    seq, rc);
        return;
    }
    unpin_at(r, (int)mt_below(&r->rng, r->npins));
    if (mt_chance(&r->rng, 25))
        mr_check_pin_list(r);
}

static int held(const struct mr_run *r, uint64_t seq)
{
    for (int i = 0; i < r->nsnaps; i++)
        if (r->snaps[i].seq == seq)
            return 1;
    return find_pin(r, seq) >= 0;
}

static void expect_refused(struct mr_run *r, uint64_t seq, const char *why, int also_pin)
{
    int t = mr_pick_tree(r);
    size_t k = mr_pick_key(r);
    void *val = NULL;
    size_t vn = 0;
    int rc = talus_get_at(r->t[t], seq, r->ks.key[k], r->ks.len[k], &val, &vn);
    talus_free(val);
    if (rc != TALUS_ESNAPSHOT)
        mr_fail(r,
                "talus_get_at(%" PRIu64 ") of a seqno %s returned %d, expected "
                "TALUS_ESNAPSHOT (current seqno %" PRIu64 ")",
                seq, why, rc, talus_seqno(r->db));
    talus_snapshot *s = talus_snapshot_at(r->db, seq);
    if (s != NULL) {
        talus_snapshot_release(r->db, s);
        mr_fail(r, "talus_snapshot_at(%" PRIu64 ") of a seqno %s did not fail", seq, why);
    }
    if (!also_pin)
        return;
    rc = talus_snapshot_pin(r->db, seq);
    if (rc != TALUS_ESNAPSHOT)
        mr_fail(r,
                "talus_snapshot_pin(%" PRIu64 ") of a seqno %s returned %d, expected "
                "TALUS_ESNAPSHOT",
                seq, why, rc);
}

/* A future seqno is never readable. Right after an open, nothing older than
 * the recovered seqno is retained unless pinned. */
void mr_check_refusals(struct mr_run *r, int just_opened)
{
    const char *op = r->opname;
    r->opname = "read at a seqno that is not retained";
    uint64_t cur = talus_seqno(r->db);
    expect_refused(r, cur + 1 + mt_below(&r->rng, 3), "in the future", 0);
    if (just_opened && cur >= 2) {
        uint64_t seq = 1 + mt_below(&r->rng, cur - 1);
        if (!held(r, seq))
            expect_refused(r, seq, "older than the open, not pinned", 1);
    }
    r->opname = op;
}

static uint64_t key_state_fingerprint(struct mr_run *r, int t, size_t k)
{
    void *val = NULL;
    size_t vn = 0;
    int rc = talus_get(r->t[t], NULL, r->ks.key[k], r->ks.len[k], &val, &vn);
    uint64_t f = rc == 0 ? mt_hash(val, vn) ^ vn : (uint64_t)rc;
    talus_free(val);
    return f;
}

/* The generator returns a seqno that is not above the last one: the write
 * must fail with TALUS_ESEQNO and change nothing. */
void mr_do_seqno_failure(struct mr_run *r)
{
    if (r->opts.seqno_generator == NULL)
        return;
    r->opname = "write with a seqno generator going backwards";
    int t = mr_pick_tree(r);
    size_t k = mr_pick_key(r);
    uint64_t before = talus_seqno(r->db), f = key_state_fingerprint(r, t, k);
    r->gen_fail_next = 1;
    int rc;
    if (mt_chance(&r->rng, 50)) {
        rc = talus_put(r->t[t], r->ks.key[k], r->ks.len[k], "x", 1);
    } else {
        talus_batch_clear(r->batch);
        mr_check_rc(r, talus_batch_put(r->batch, r->t[t], r->ks.key[k], r->ks.len[k], "y", 1),
                    "talus_batch_put");
        rc = talus_batch_commit(r->db, r->batch, -1, NULL);
    }
    if (rc != TALUS_ESEQNO)
        mr_fail(r, "returned %d, expected TALUS_ESEQNO", rc);
    if (r->gen_fail_next)
        mr_fail(r, "the seqno generator was not called");
    if (talus_seqno(r->db) != before)
        mr_fail(r, "seqno moved from %" PRIu64 " to %" PRIu64 " on a failed write", before,
                talus_seqno(r->db));
    if (key_state_fingerprint(r, t, k) != f)
        mr_fail(r, "tree %d key %s changed by a failed write", t,
                mt_hex(r->ks.key[k], r->ks.len[k]));
}

void mr_do_flush(struct mr_run *r)
{
    r->n_flush++;
    int all = mt_chance(&r->rng, 20), one = mr_pick_tree(r);
    r->opname = all ? "flush every tree" : "flush";
    for (int t = 0; t < r->ntrees; t++) {
        if (!all && t != one)
            continue;
        uint64_t seq = talus_seqno(r->db);
        mr_check_rc(r, talus_flush(r->t[t]), "talus_flush");
        mr_hist_flushed(r, t, seq);
    }
}

void mr_do_compact(struct mr_run *r)
{
    r->opname = "compact_range";
    r->n_compact++;
    int t = mr_pick_tree(r);
    uint8_t lo[80], hi[80];
    size_t lon = 0, hin = 0;
    int has_lo = mt_chance(&r->rng, 50), has_hi = mt_chance(&r->rng, 50);
    if (has_lo)
        mr_target(r, lo, sizeof lo, &lon);
    if (has_hi)
        mr_target(r, hi, sizeof hi, &hin);
    if (has_lo && has_hi && mt_cmp(lo, lon, hi, hin) > 0)
        has_lo = 0;
    uint64_t seq = talus_seqno(r->db);
    mr_check_rc(r, talus_compact_range(r->t[t], has_lo ? lo : NULL, lon, has_hi ? hi : NULL, hin),
                "talus_compact_range");
    mr_hist_flushed(r, t, seq); /* compact_range flushes first */
}
