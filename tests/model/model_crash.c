/*
 * model_crash.c - opening the database, clean close+reopen, and simulated
 * crashes (db_crash_close: nothing flushed or synced, the OS keeps what was
 * written) with the history of writes that decides what a crash may lose.
 *
 * What a crash may lose: a batch committed with durability `none` whose
 * trees were not all flushed after it. Everything else (buffered and sync
 * batches, flushed data) must survive. A batch is never lost in part.
 *
 * After a crash the database is read in full at every point that is still
 * readable: the latest state and every pinned seqno. Then the history is
 * walked from the newest batch to the oldest, with, for each point and
 * (tree, key), whether a newer surviving batch already explains what was
 * read there. A batch whose every unexplained write matches what was read
 * is kept (if it was in fact lost, keeping it changes nothing anyone can
 * read); a batch with a write that does not match is lost, which is a
 * failure if the batch was certain to survive. What no batch explains must
 * equal the state before the history; a value of a batch found lost is
 * then a torn batch. Values are random, so a value identifies its write.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"
#include "model_run.h"

static const char *const tree_names[MR_MAX_TREES] = {"default", "t1", "t2", "t3"};

static void check_tree_list(struct mr_run *r)
{
    char **names = NULL;
    size_t n = 0;
    mr_check_rc(r, talus_tree_list(r->db, &names, &n), "talus_tree_list");
    int ok = n == (size_t)r->ntrees && names[n] == NULL;
    for (int i = 0; ok && i < r->ntrees; i++) {
        int found = 0;
        for (size_t j = 0; j < n; j++)
            found |= strcmp(names[j], tree_names[i]) == 0;
        ok = found;
    }
    if (!ok) {
        char got[300] = "";
        for (size_t j = 0; j < n && strlen(got) < 200; j++)
            snprintf(got + strlen(got), sizeof got - strlen(got), " %s", names[j]);
        mr_fail(r, "talus_tree_list gave [%s ] (%zu names), expected the %d trees default..t%d",
                got, n, r->ntrees, r->ntrees - 1);
    }
    talus_free_names(names);
}

void mr_db_open(struct mr_run *r)
{
    int first = r->db == NULL && r->n_reopen == 0 && r->n_crash == 0;
    mr_check_rc(r, db_open_env(r->dbdir, &r->opts, r->env, &r->db), "talus_open");
    r->t[0] = talus_default_tree(r->db);
    if (r->t[0] == NULL)
        mr_fail(r, "talus_default_tree returned NULL");
    for (int i = 1; i < r->ntrees; i++) {
        int rc = talus_tree_open(r->db, tree_names[i], first, &r->topts[i], &r->t[i]);
        if (rc != 0)
            mr_fail(r, "talus_tree_open(%s, create=%d) returned %d (%s): %s", tree_names[i], first,
                    rc, talus_strerror(rc), talus_errmsg());
        if (strcmp(talus_tree_name(r->t[i]), tree_names[i]) != 0)
            mr_fail(r, "talus_tree_name gave %s, expected %s", talus_tree_name(r->t[i]),
                    tree_names[i]);
    }
    check_tree_list(r);
}

void mr_add_engine_counters(struct mr_run *r)
{
    for (int t = 0; t < r->ntrees; t++) {
        talus_tree_stats st;
        memset(&st, 0, sizeof st);
        mr_check_rc(r, talus_tree_stats_get(r->t[t], &st), "talus_tree_stats_get");
        r->eng_flushes += st.flushes;
        r->eng_compactions += st.compactions;
    }
}

/* ---- History ---------------------------------------------------------- */

static int hist_certain(const struct mr_run *r, const struct mr_hist *h)
{
    if (h->durability != TALUS_DURABILITY_NONE)
        return 1;
    for (int t = 0; t < r->ntrees; t++)
        if ((h->tree_mask & (1u << t)) && r->flushed_seq[t] < h->seq)
            return 0;
    return 1;
}

static void apply_hist(const struct mr_run *r, mt_val *state, const struct mr_hist *h)
{
    for (unsigned i = 0; i < h->nops; i++) {
        const struct mr_wop *w = &h->op[i];
        mt_val *v = &mr_tree_state(r, state, w->tree)[w->key];
        *v = w->kind == MR_PUT ? (mt_val){w->seed, w->len, 1} : (mt_val){0, 0, 0};
    }
}

int mr_hist_newest_certain(const struct mr_run *r)
{
    return r->hist_len == r->hist_head || hist_certain(r, &r->hist[r->hist_len - 1]);
}

/* Fold the oldest batches into base_state while they are certain. */
static void hist_fold(struct mr_run *r)
{
    while (r->hist_head < r->hist_len && hist_certain(r, &r->hist[r->hist_head])) {
        apply_hist(r, r->base_state, &r->hist[r->hist_head]);
        r->base_seq = r->hist[r->hist_head].seq;
        r->hist_head++;
    }
    if (r->hist_head == r->hist_len) {
        r->hist_head = r->hist_len = 0;
    } else if (r->hist_head > 1024 && r->hist_head * 2 > r->hist_len) {
        memmove(r->hist, r->hist + r->hist_head, (r->hist_len - r->hist_head) * sizeof *r->hist);
        r->hist_len -= r->hist_head;
        r->hist_head = 0;
    }
}

void mr_hist_add(struct mr_run *r, const struct mr_hist *h)
{
    if (r->hist_len == r->hist_head && hist_certain(r, h)) {
        apply_hist(r, r->base_state, h); /* nothing uncertain before it */
        r->base_seq = h->seq;
        return;
    }
    if (r->hist_len == r->hist_cap) {
        size_t cap = r->hist_cap ? r->hist_cap * 2 : 1024;
        struct mr_hist *n = realloc(r->hist, cap * sizeof *n);
        if (n == NULL)
            mr_fail(r, "out of memory");
        r->hist = n;
        r->hist_cap = cap;
    }
    r->hist[r->hist_len] = *h;
    r->hist[r->hist_len++].present = -1; /* not known until a crash */
}

void mr_hist_flushed(struct mr_run *r, int t, uint64_t seq)
{
    if (seq > r->flushed_seq[t])
        r->flushed_seq[t] = seq;
    hist_fold(r);
}

/* Everything written so far is durable (a clean close, or a crash whose
 * outcome has been resolved): start a new history at the current state. */
static void hist_reset(struct mr_run *r)
{
    memcpy(r->base_state, r->state, r->nstate * sizeof *r->state);
    r->base_seq = talus_seqno(r->db);
    r->hist_head = r->hist_len = 0;
    memset(r->flushed_seq, 0, sizeof r->flushed_seq);
}

/* ---- Clean close and reopen --------------------------------------------- */

static void release_snapshots(struct mr_run *r)
{
    while (r->nsnaps > 0)
        mr_snap_release(r, r->nsnaps - 1);
}

/* Checks right after an open: pins, refusals, and seqno not below a pin. */
static void after_open(struct mr_run *r)
{
    uint64_t cur = talus_seqno(r->db);
    if (r->npins > 0 && cur < r->pins[r->npins - 1].seq)
        mr_fail(r,
                "the recovered seqno %" PRIu64 " is below the pinned seqno %" PRIu64
                ": reads at the pin are refused as 'in the future', and new batches "
                "would reuse seqnos <= the pin",
                cur, r->pins[r->npins - 1].seq);
    mr_check_pin_list(r);
    mr_check_refusals(r, 1);
}

void mr_do_reopen(struct mr_run *r)
{
    r->opname = "close+reopen";
    r->n_reopen++;
    release_snapshots(r);
    uint64_t before = talus_seqno(r->db);
    mr_add_engine_counters(r);
    mr_check_rc(r, talus_close(r->db), "talus_close");
    r->db = NULL;
    mr_db_open(r);
    r->opname = "close+reopen";
    if (talus_seqno(r->db) < before)
        mr_fail(r, "seqno went backwards over a clean reopen: %" PRIu64 " -> %" PRIu64, before,
                talus_seqno(r->db));
    hist_reset(r); /* a clean close makes everything durable */
    after_open(r);
    mr_full_scan_all(r);
}

/* ---- Crash ---------------------------------------------------------------- */

static const char *point_name(const struct mr_run *r, int p)
{
    static char buf[64];
    if (p == 0)
        return "latest";
    snprintf(buf, sizeof buf, "pinned seqno %" PRIu64, r->pins[p - 1].seq);
    return buf;
}

static struct mr_obs *obs_at(struct mr_run *r, int p, int t, size_t k)
{
    return &r->obs[(size_t)p * r->nstate + (size_t)t * r->ks.n + k];
}

/* Read tree t at point p (0 = latest, else pin p-1) into r->obs. */
static void observe(struct mr_run *r, int p, int t)
{
    talus_snapshot *s = NULL;
    if (p > 0) {
        s = talus_snapshot_at(r->db, r->pins[p - 1].seq);
        if (s == NULL)
            mr_fail(r, "talus_snapshot_at(%s) after the crash returned NULL: %s", point_name(r, p),
                    talus_errmsg());
    }
    for (size_t k = 0; k < r->ks.n; k++)
        *obs_at(r, p, t, k) = (struct mr_obs){0, 0, 0};
    talus_iter_options io;
    talus_iter_options_init(&io);
    io.snapshot = s;
    talus_iter *it = NULL;
    mr_check_rc(r, talus_iter_new(r->t[t], &io, &it), "talus_iter_new");
    size_t k = 0;
    for (talus_iter_seek_first(it); talus_iter_valid(it); talus_iter_next(it)) {
        size_t kn, vn;
        const void *key = talus_iter_key(it, &kn), *val = talus_iter_value(it, &vn);
        while (k < r->ks.n && mt_cmp(r->ks.key[k], r->ks.len[k], key, kn) < 0)
            k++;
        if (k == r->ks.n || mt_cmp(r->ks.key[k], r->ks.len[k], key, kn) != 0)
            mr_fail(r,
                    "after the crash, tree %d at %s lists key %s, which was never written "
                    "(or is out of order)",
                    t, point_name(r, p), mt_hex(key, kn));
        *obs_at(r, p, t, k) = (struct mr_obs){mt_hash(val, vn), (uint32_t)vn, 1};
        k++;
    }
    int st = talus_iter_status(it);
    if (st != 0)
        mr_fail(r, "after the crash, scan of tree %d at %s: status %d (%s): %s", t,
                point_name(r, p), st, talus_strerror(st), talus_errmsg());
    talus_iter_free(it);
    talus_snapshot_release(r->db, s);
}

static int obs_is_write(const struct mr_obs *o, const struct mr_wop *w)
{
    if (w->kind != MR_PUT)
        return !o->present;
    return o->present && o->len == w->len && o->hash == w->hash;
}

static int obs_is_val(const struct mr_obs *o, const mt_val *v)
{
    if (!v->present)
        return !o->present;
    return o->present && o->len == v->len && o->hash == mt_value_hash(v->seed, v->len);
}

/* Describe what was read and which batch of the history wrote it. */
static void describe_obs(const struct mr_run *r, const struct mr_obs *o, int t, size_t k, char *buf,
                         size_t cap)
{
    if (!o->present) {
        snprintf(buf, cap, "absent");
        return;
    }
    size_t n = (size_t)snprintf(buf, cap, "a value of %u bytes", o->len);
    for (size_t b = r->hist_head; b < r->hist_len && n < cap; b++)
        for (unsigned i = 0; i < r->hist[b].nops; i++) {
            const struct mr_wop *w = &r->hist[b].op[i];
            if (w->tree == t && w->key == k && obs_is_write(o, w)) {
                snprintf(buf + n, cap - n, " written by batch %" PRIu64 " (durability %s%s)",
                         r->hist[b].seq, mr_dur_name(r->hist[b].durability),
                         r->hist[b].present == 0 ? ", otherwise found lost: a torn batch" : "");
                return;
            }
        }
    snprintf(buf + n, cap - n, " that no write since seqno %" PRIu64 " explains", r->base_seq);
}

static void describe_wop(const struct mr_wop *w, char *buf, size_t cap)
{
    if (w->kind == MR_PUT)
        snprintf(buf, cap, "its value of %u bytes", w->len);
    else
        snprintf(buf, cap, "absent (%s)", w->kind == MR_DEL ? "delete" : "weak delete");
}

/* Decide, newest first, which batches of the history survived. */
static void resolve_history(struct mr_run *r, int npoints, const uint64_t *pseq)
{
    memset(r->explained, 0, (size_t)npoints * r->nstate);
    for (size_t b = r->hist_len; b-- > r->hist_head;) {
        struct mr_hist *h = &r->hist[b];
        int bad_p = -1;
        unsigned bad_i = 0;
        for (int p = 0; p < npoints && bad_p < 0; p++) {
            if (pseq[p] < h->seq)
                continue;
            for (unsigned i = 0; i < h->nops && bad_p < 0; i++) {
                const struct mr_wop *w = &h->op[i];
                size_t idx = (size_t)p * r->nstate + (size_t)w->tree * r->ks.n + w->key;
                if (!r->explained[idx] && !obs_is_write(&r->obs[idx], w)) {
                    bad_p = p;
                    bad_i = i;
                }
            }
        }
        int certain = hist_certain(r, h);
        if (bad_p >= 0 && certain) {
            const struct mr_wop *w = &h->op[bad_i];
            char got[200], exp[64];
            describe_obs(r, obs_at(r, bad_p, w->tree, w->key), w->tree, w->key, got, sizeof got);
            describe_wop(w, exp, sizeof exp);
            mr_fail(r,
                    "after the crash, batch %" PRIu64 " (durability %s, %u writes%s) must have "
                    "survived, but tree %d key %s at %s is %s, expected %s",
                    h->seq, mr_dur_name(h->durability), h->nops,
                    h->durability == TALUS_DURABILITY_NONE ? ", its trees flushed after it" : "",
                    w->tree, mt_hex(r->ks.key[w->key], r->ks.len[w->key]), point_name(r, bad_p),
                    got, exp);
        }
        h->present = bad_p < 0;
        if (!certain) {
            if (h->present)
                r->n_kept++;
            else
                r->n_lost++;
        }
        if (!h->present)
            continue;
        for (int p = 0; p < npoints; p++) {
            if (pseq[p] < h->seq)
                continue;
            for (unsigned i = 0; i < h->nops; i++)
                r->explained[(size_t)p * r->nstate + (size_t)h->op[i].tree * r->ks.n +
                             h->op[i].key] = 1;
        }
    }
}

/* The state at point p before the history: a pin older than the history
 * has its own state, everything else starts from base_state. */
static const mt_val *point_base(const struct mr_run *r, int p)
{
    return p > 0 && r->pins[p - 1].seq <= r->base_seq ? r->pins[p - 1].state : r->base_state;
}

static void check_unexplained(struct mr_run *r, int npoints)
{
    for (int p = 0; p < npoints; p++) {
        const mt_val *base = point_base(r, p);
        for (int t = 0; t < r->ntrees; t++)
            for (size_t k = 0; k < r->ks.n; k++) {
                size_t idx = (size_t)p * r->nstate + (size_t)t * r->ks.n + k;
                const mt_val *v = &mr_tree_cstate(r, base, t)[k];
                if (r->explained[idx] || obs_is_val(&r->obs[idx], v))
                    continue;
                char got[200];
                describe_obs(r, &r->obs[idx], t, k, got, sizeof got);
                mr_fail(r,
                        "after the crash, tree %d key %s at %s is %s, expected %s (its "
                        "value as of seqno %" PRIu64 ")",
                        t, mt_hex(r->ks.key[k], r->ks.len[k]), point_name(r, p), got,
                        v->present ? "a value" : "absent",
                        p > 0 && base != r->base_state ? r->pins[p - 1].seq : r->base_seq);
            }
    }
}

/* Rebuild the latest state and the pins younger than base_state from the
 * batches found present, then check the result against every read. */
static void rebuild(struct mr_run *r, int npoints)
{
    memcpy(r->state, r->base_state, r->nstate * sizeof *r->state);
    for (size_t b = r->hist_head; b < r->hist_len; b++)
        if (r->hist[b].present)
            apply_hist(r, r->state, &r->hist[b]);
    for (int i = 0; i < r->npins; i++) {
        struct mr_pin *pin = &r->pins[i];
        if (pin->seq <= r->base_seq)
            continue;
        memcpy(pin->state, r->base_state, r->nstate * sizeof *r->state);
        for (size_t b = r->hist_head; b < r->hist_len && r->hist[b].seq <= pin->seq; b++)
            if (r->hist[b].present)
                apply_hist(r, pin->state, &r->hist[b]);
    }
    for (int p = 0; p < npoints; p++) {
        const mt_val *state = p == 0 ? r->state : r->pins[p - 1].state;
        for (int t = 0; t < r->ntrees; t++)
            for (size_t k = 0; k < r->ks.n; k++)
                if (!obs_is_val(obs_at(r, p, t, k), &mr_tree_cstate(r, state, t)[k]))
                    mr_fail(r,
                            "model_test bug: the rebuilt model disagrees with the database "
                            "at tree %d key %s at %s",
                            t, mt_hex(r->ks.key[k], r->ks.len[k]), point_name(r, p));
    }
}

void mr_do_crash(struct mr_run *r)
{
    r->opname = "crash+reopen";
    r->n_crash++;
    release_snapshots(r);
    mr_add_engine_counters(r);
    uint64_t max_certain = r->base_seq;
    for (size_t b = r->hist_head; b < r->hist_len; b++)
        if (hist_certain(r, &r->hist[b]) && r->hist[b].seq > max_certain)
            max_certain = r->hist[b].seq;
    db_crash_close(r->db);
    r->db = NULL;
    mr_db_open(r);
    r->opname = "crash+reopen";
    uint64_t cur = talus_seqno(r->db);
    if (cur < max_certain)
        mr_fail(r,
                "the seqno after the crash is %" PRIu64 ", below %" PRIu64
                ", the seqno of a batch that must have survived",
                cur, max_certain);
    after_open(r);
    r->opname = "crash+reopen";
    int npoints = 1 + r->npins;
    uint64_t pseq[MR_POINTS];
    pseq[0] = UINT64_MAX;
    for (int p = 1; p < npoints; p++)
        pseq[p] = r->pins[p - 1].seq;
    for (int p = 0; p < npoints; p++)
        for (int t = 0; t < r->ntrees; t++)
            observe(r, p, t);
    resolve_history(r, npoints, pseq);
    check_unexplained(r, npoints);
    rebuild(r, npoints);
    hist_reset(r);
    if (mt_chance(&r->rng, 25))
        mr_full_scan_all(r);
}
