/*
 * version_set.c - the version set of one tree: recovery from CURRENT and
 * the manifest, applying edits (append + fsync, then install), manifest
 * rotation, file numbers, and the list of live versions.
 *
 * Invariants:
 *  - CURRENT names a manifest whose header and first record (a snapshot of
 *    the whole state) were synced before CURRENT was switched to it.
 *  - Every record appended to the manifest carries next_file, and next_file
 *    is above every number ver_set_new_file_number has handed out, so a
 *    number used by an applied edit is never handed out again after reopen.
 *  - last_seq, flushed_seq and format_version only grow (max'ed).
 *  - The in-memory current version equals the replay of the manifest,
 *    except after a failed write: then the set is in a sticky error state
 *    (the record may or may not be on disk) and refuses every later apply.
 *
 * Locks: `write_mu` serialises appliers for the whole apply, including the
 * manifest I/O; `mu` guards the state below for short sections and is never
 * held across I/O or callbacks, so readers taking ver_set_current() do not
 * wait for an fsync. Lock order: write_mu, then mu.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/err.h"
#include "util/log.h"
#include "version/version_int.h"

/* Start a new manifest once the current one passes this size. */
#define VER_MANIFEST_ROTATE (4u << 20)

struct ver_set {
    tl_env *env;
    char *dir;
    bool read_only;
    uint32_t max_format;
    ver_obsolete_fn on_obsolete;
    void *on_obsolete_ctx;
    int num_levels;

    pthread_mutex_t write_mu;
    /* Guarded by write_mu. */
    tl_file *manifest; /* open for appending; NULL when read-only */
    uint64_t manifest_size;
    bool need_rotate; /* the manifest has a torn tail: start a new one */
    int sticky_rc;
    char sticky_msg[512];

    pthread_mutex_t mu;
    /* Guarded by mu. */
    ver_version *current;
    ver_version *live; /* every version not yet destroyed (linked list) */
    uint64_t next_file;
    uint64_t last_seq;
    uint64_t flushed_seq;
    uint32_t format_version;
    uint64_t manifest_number;
    bool closing;
};

static uint64_t max64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Copies the thread's message so it can be re-wrapped by tl_err (whose
 * buffer it lives in). */
static int rewrap(int rc, const char *prefix)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", tl_errmsg());
    return tl_err(rc, "%s: %s", prefix, msg);
}

/* ---- Hooks used by versions (version.c / builder.c) --------------------- */

void ver_set_link_version(ver_set *vs, ver_version *v)
{
    pthread_mutex_lock(&vs->mu);
    v->prev = NULL;
    v->next = vs->live;
    if (vs->live)
        vs->live->prev = v;
    vs->live = v;
    pthread_mutex_unlock(&vs->mu);
}

bool ver_set_unlink_version(ver_set *vs, ver_version *v)
{
    pthread_mutex_lock(&vs->mu);
    if (v->prev)
        v->prev->next = v->next;
    else
        vs->live = v->next;
    if (v->next)
        v->next->prev = v->prev;
    bool report = v->installed && !vs->closing;
    pthread_mutex_unlock(&vs->mu);
    return report;
}

void ver_set_report_obsolete(ver_set *vs, uint64_t number, bool blob)
{
    if (vs->on_obsolete)
        vs->on_obsolete(vs->on_obsolete_ctx, number, blob);
}

/* ---- Writing manifests --------------------------------------------------- */

static int manifest_path(const ver_set *vs, uint64_t number, char *path, size_t cap)
{
    char name[VER_NAME_MAX];
    ver_manifest_name(name, number);
    if (snprintf(path, cap, "%s/%s", vs->dir, name) >= (int)cap)
        return tl_err(TALUS_EINVAL, "%s: directory name too long", vs->dir);
    return 0;
}

/* The state a snapshot records besides the files. */
typedef struct ver_state {
    uint64_t last_seq, flushed_seq;
    uint32_t format_version;
} ver_state;

/* Encodes a full snapshot of v with the given state into out. */
static int encode_snapshot(const ver_set *vs, const ver_version *v, const ver_state *st,
                           uint64_t next_file, tl_buf *out)
{
    int rc = 0;
    ver_edit e;
    ver_edit_init(&e);
    e.has_format_version = e.has_num_levels = e.has_next_file = true;
    e.has_last_seq = e.has_flushed_seq = true;
    e.format_version = st->format_version;
    e.num_levels = (uint32_t)vs->num_levels;
    e.next_file = next_file;
    e.last_seq = st->last_seq;
    e.flushed_seq = st->flushed_seq;
    for (int l = 0; l < v->num_levels; l++)
        for (size_t i = 0; i < v->nfiles[l]; i++)
            TRY_OUT(ver_edit_add_file(&e, l, v->files[l][i]));
    for (size_t i = 0; i < v->nfiles[VER_BLOB_LEVEL]; i++)
        TRY_OUT(ver_edit_add_file(&e, VER_BLOB_LEVEL, v->files[VER_BLOB_LEVEL][i]));
    TRY_OUT(ver_edit_encode(&e, out));
out:
    ver_edit_free(&e);
    return rc;
}

/*
 * Starts a new manifest holding a snapshot of v and st, switches CURRENT to
 * it, and removes the previous manifest. REQUIRES: write_mu held (or open).
 * A failure before CURRENT is touched removes the new file; after, the new
 * file stays (CURRENT may name it) and the caller must treat the outcome as
 * unknown (sticky error).
 */
static int write_manifest(ver_set *vs, const ver_version *v, const ver_state *st)
{
    int rc = 0;
    tl_buf buf = {0}, payload = {0};
    tl_file *f = NULL;
    bool created = false, current_tried = false;
    char path[4096];

    pthread_mutex_lock(&vs->mu);
    uint64_t number = vs->next_file++;
    uint64_t next_file = vs->next_file;
    uint64_t old_number = vs->manifest_number;
    pthread_mutex_unlock(&vs->mu);

    TRY_OUT(manifest_path(vs, number, path, sizeof path));
    TRY_OUT(encode_snapshot(vs, v, st, next_file, &payload));
    TRY_OUT(tl_buf_append(&buf, VER_MANIFEST_MAGIC, 8));
    TRY_OUT(tl_buf_put_fixed32(&buf, VER_MANIFEST_FRAMING));
    TRY_OUT(ver_record_frame(&buf, tl_buf_slice(&payload)));
    TRY_OUT(tl_env_open_write(vs->env, path, &f));
    created = true;
    TRY_OUT(tl_file_append(f, buf.data, buf.len));
    TRY_OUT(tl_file_sync(f));
    current_tried = true;
    TRY_OUT(ver_current_write(vs->env, vs->dir, number));

    tl_file_close(vs->manifest);
    vs->manifest = f;
    f = NULL;
    vs->manifest_size = buf.len;
    vs->need_rotate = false;
    pthread_mutex_lock(&vs->mu);
    vs->manifest_number = number;
    pthread_mutex_unlock(&vs->mu);
    if (old_number) {
        char old[4096];
        /* Best effort: a leftover manifest is not live (ver_set_live_files
         * names only the current one), so orphan removal takes it later. */
        if (manifest_path(vs, old_number, old, sizeof old) == 0 && tl_env_remove(vs->env, old) < 0)
            TL_LOG_WARN("version: could not remove old manifest: %s", tl_errmsg());
    }
out:
    if (rc < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", tl_errmsg());
        tl_file_close(f);
        if (created && !current_tried)
            tl_env_remove(vs->env, path);
        rc = tl_err(rc, "%s", msg);
    }
    tl_buf_free(&buf);
    tl_buf_free(&payload);
    return rc;
}

/* ---- Opening ------------------------------------------------------------ */

/* Refuses to create a database over manifests that CURRENT lost: that is a
 * damaged database, and an empty one would make its tables look orphaned.
 * MANIFEST-000001 alone is what an interrupted creation leaves behind. */
static int check_no_manifests(ver_set *vs)
{
    char **names = NULL;
    size_t count = 0;
    int rc = tl_env_list_dir(vs->env, vs->dir, &names, &count);
    if (rc == TALUS_ENOTFOUND)
        return 0;
    TRY(rc);
    for (size_t i = 0; i < count && rc == 0; i++) {
        char first[VER_NAME_MAX];
        ver_manifest_name(first, 1);
        if (strncmp(names[i], "MANIFEST-", 9) == 0 && strcmp(names[i], first) != 0 &&
            !strstr(names[i], ".tmp"))
            rc = tl_err(TALUS_ECORRUPT,
                        "%s: CURRENT is missing but %s exists; refusing to create a new "
                        "database over it",
                        vs->dir, names[i]);
    }
    tl_env_free_names(names, count);
    return rc;
}

static int create_new(ver_set *vs, const ver_set_options *o)
{
    if (o->num_levels < 1 || o->num_levels > VER_MAX_LEVELS)
        return tl_err(TALUS_EINVAL, "%s: num_levels %d out of range 1..%d", vs->dir, o->num_levels,
                      VER_MAX_LEVELS);
    TRY(tl_env_mkdir(vs->env, vs->dir));
    TRY(check_no_manifests(vs));
    vs->num_levels = o->num_levels;
    vs->format_version = VER_FORMAT_BASE;
    vs->next_file = 1; /* the manifest takes 1 */

    ver_builder b;
    ver_builder_init(&b, vs->num_levels, TALUS_EINVAL, "new version set");
    int rc = ver_builder_finish(&b, vs, &vs->current);
    ver_builder_free(&b);
    TRY(rc);
    vs->current->installed = true;
    ver_state st = {0, 0, vs->format_version};
    return write_manifest(vs, vs->current, &st);
}

/* Checks a record's format version against what this build reads. */
static int check_format(const ver_set *vs, const char *path, uint32_t v)
{
    if (v > vs->max_format)
        return tl_err(TALUS_EVERSION,
                      "manifest %s: database uses format V%u%s; this build reads up to V%u", path,
                      v, v == VER_FORMAT_V4 ? " features (range tombstones or merge operands)" : "",
                      vs->max_format);
    if (v < VER_FORMAT_BASE)
        return tl_err(TALUS_ECORRUPT, "manifest %s: format version %u is below the base V%d", path,
                      v, VER_FORMAT_BASE);
    return 0;
}

/* Folds one decoded record into the builder and the state. */
static int replay_edit(ver_set *vs, ver_builder *b, const ver_edit *e, bool first, const char *what)
{
    if (first) {
        if (!e->has_num_levels || !e->has_format_version)
            return tl_err(TALUS_ECORRUPT, "%s: first record is not a snapshot", what);
        vs->num_levels = (int)e->num_levels;
        b->num_levels = vs->num_levels;
    }
    TRY(ver_builder_apply(b, e));
    if (e->has_next_file)
        vs->next_file = max64(vs->next_file, e->next_file);
    if (e->has_last_seq)
        vs->last_seq = max64(vs->last_seq, e->last_seq);
    if (e->has_flushed_seq)
        vs->flushed_seq = max64(vs->flushed_seq, e->flushed_seq);
    if (e->has_format_version && e->format_version > vs->format_version)
        vs->format_version = e->format_version;
    return 0;
}

static int recover(ver_set *vs, uint64_t number)
{
    int rc = 0;
    char path[4096], what[4200];
    uint8_t *data = NULL;
    size_t size = 0, nrec = 0;
    ver_builder b;
    ver_edit e;
    ver_edit_init(&e);
    ver_builder_init(&b, 1, TALUS_ECORRUPT, what);
    snprintf(what, sizeof what, "manifest");

    TRY_OUT(manifest_path(vs, number, path, sizeof path));
    rc = tl_env_read_file(vs->env, path, &data, &size);
    if (rc == TALUS_ENOTFOUND)
        TRY_OUT(tl_err(TALUS_ECORRUPT, "%s/CURRENT names %s, which does not exist", vs->dir, path));
    TRY_OUT(rc);
    ver_manifest_reader r;
    TRY_OUT(ver_manifest_reader_init(&r, path, data, size));
    for (;;) {
        tl_slice payload;
        size_t off;
        TRY_OUT(ver_manifest_next(&r, &payload, &off));
        if (rc == 0)
            break;
        snprintf(what, sizeof what, "manifest %s: record at offset %zu", path, off);
        rc = ver_edit_decode(&e, payload);
        /* The format version is the first field, so a newer database is
         * reported as such even when its records carry tags we lack. */
        if (e.has_format_version && (rc == 0 || e.format_version > vs->max_format))
            TRY_OUT(check_format(vs, path, e.format_version));
        if (rc < 0)
            TRY_OUT(rewrap(rc, what));
        TRY_OUT(replay_edit(vs, &b, &e, nrec == 0, what));
        ver_edit_free(&e);
        nrec++;
    }
    if (nrec == 0)
        TRY_OUT(tl_err(TALUS_ECORRUPT, "manifest %s: no complete record", path));
    if (r.torn) {
        TL_LOG_WARN("version: manifest %s: ignoring torn record at offset %zu (%zu bytes)", path,
                    r.torn_at, size - r.torn_at);
        vs->need_rotate = true;
    }
    snprintf(what, sizeof what, "manifest %s", path);
    TRY_OUT(ver_builder_finish(&b, vs, &vs->current));
    vs->current->installed = true;
    vs->manifest_number = number;
    /* Never hand out a number already in use, whatever next_file says. */
    vs->next_file = max64(vs->next_file, max64(b.max_number, number) + 1);
out:
    ver_edit_free(&e);
    ver_builder_free(&b);
    free(data);
    return rc;
}

static void set_free(ver_set *vs)
{
    tl_file_close(vs->manifest);
    pthread_mutex_destroy(&vs->mu);
    pthread_mutex_destroy(&vs->write_mu);
    free(vs->dir);
    free(vs);
}

int ver_set_open(const ver_set_options *o, ver_set **out)
{
    int rc = 0;
    uint64_t number = 0;
    *out = NULL;
    if (!o || !o->env || !o->dir)
        return tl_err(TALUS_EINVAL, "version set: env and dir are required");
    ver_set *vs = calloc(1, sizeof *vs);
    if (!vs || !(vs->dir = strdup(o->dir))) {
        free(vs);
        return tl_err(TALUS_ENOMEM, "version set: out of memory");
    }
    vs->env = o->env;
    vs->read_only = o->read_only;
    vs->max_format = o->max_format_version ? o->max_format_version : VER_FORMAT_BASE;
    vs->on_obsolete = o->on_obsolete;
    vs->on_obsolete_ctx = o->on_obsolete_ctx;
    pthread_mutex_init(&vs->mu, NULL);
    pthread_mutex_init(&vs->write_mu, NULL);

    rc = ver_current_read(vs->env, vs->dir, &number);
    if (rc == TALUS_ENOTFOUND && o->create_if_missing && !o->read_only) {
        TRY_OUT(create_new(vs, o));
    } else {
        TRY_OUT(rc);
        TRY_OUT(recover(vs, number));
        /* Always continue in a fresh manifest: it drops a torn tail and
         * history, and proves we can write before anything else happens. */
        if (!vs->read_only) {
            ver_state st = {vs->last_seq, vs->flushed_seq, vs->format_version};
            TRY_OUT(write_manifest(vs, vs->current, &st));
        }
    }
    *out = vs;
out:
    if (rc < 0) {
        if (vs->current) {
            vs->closing = true; /* nothing it holds is obsolete */
            ver_version_unref(vs->current);
        }
        set_free(vs);
    }
    return rc;
}

void ver_set_close(ver_set *vs)
{
    if (!vs)
        return;
    pthread_mutex_lock(&vs->mu);
    vs->closing = true;
    ver_version *cur = vs->current;
    vs->current = NULL;
    pthread_mutex_unlock(&vs->mu);
    ver_version_unref(cur);
    pthread_mutex_lock(&vs->mu);
    if (vs->live) {
        /* A caller bug; detach the stragglers so releasing them later does
         * not touch freed memory. */
        TL_LOG_ERROR("version: ver_set_close with versions still referenced");
        for (ver_version *v = vs->live; v; v = v->next)
            v->vset = NULL;
    }
    pthread_mutex_unlock(&vs->mu);
    set_free(vs);
}

/* ---- Applying edits ----------------------------------------------------- */

/* Appends one framed record and syncs. REQUIRES: write_mu. */
static int append_record(ver_set *vs, tl_slice payload)
{
    int rc = 0;
    tl_buf rec = {0};
    TRY_OUT(ver_record_frame(&rec, payload));
    TRY_OUT(tl_file_append(vs->manifest, rec.data, rec.len));
    TRY_OUT(tl_file_sync(vs->manifest));
    vs->manifest_size += rec.len;
out:
    tl_buf_free(&rec);
    return rc;
}

/* Prepares e (fills next_file, last_seq, max'es format) and checks it
 * against the set's fixed parameters. REQUIRES: write_mu. */
static int prepare_edit(ver_set *vs, ver_edit *e, ver_state *st, ver_version **base)
{
    if (e->has_num_levels && (int)e->num_levels != vs->num_levels)
        return tl_err(TALUS_EINVAL, "version edit: num_levels %u differs from the tree's %d",
                      e->num_levels, vs->num_levels);
    if (e->has_format_version && e->format_version > vs->max_format)
        return tl_err(TALUS_EINVAL, "version edit: format V%u; this build writes up to V%u",
                      e->format_version, vs->max_format);
    pthread_mutex_lock(&vs->mu);
    *base = vs->current;
    ver_version_ref(*base);
    uint64_t next_file = vs->next_file;
    st->last_seq = vs->last_seq;
    st->flushed_seq = vs->flushed_seq;
    st->format_version = vs->format_version;
    pthread_mutex_unlock(&vs->mu);

    /* next_file is recorded by every apply: it is above every number
     * handed out so far, including those the edit's files use. A number the
     * set did not hand out (or a larger next_file from the caller) pushes
     * the counter up so it is never handed out later. */
    uint64_t want = e->has_next_file ? e->next_file : 0;
    for (size_t i = 0; i < e->nadds; i++)
        if (e->adds[i].file->number < UINT64_MAX)
            want = max64(want, e->adds[i].file->number + 1);
    if (want > next_file) {
        pthread_mutex_lock(&vs->mu);
        vs->next_file = max64(vs->next_file, want);
        pthread_mutex_unlock(&vs->mu);
        next_file = want;
    }
    e->next_file = next_file;
    e->has_next_file = true;
    if (!e->has_last_seq) {
        e->last_seq = st->last_seq;
        e->has_last_seq = true;
    }
    if (e->has_format_version && e->format_version < st->format_version)
        e->format_version = st->format_version;
    st->last_seq = max64(st->last_seq, e->last_seq);
    if (e->has_flushed_seq)
        st->flushed_seq = max64(st->flushed_seq, e->flushed_seq);
    if (e->has_format_version)
        st->format_version = e->format_version;
    return 0;
}

int ver_set_apply(ver_set *vs, ver_edit *e)
{
    int rc = 0;
    ver_version *base = NULL, *nv = NULL, *old = NULL;
    ver_state st;
    ver_builder b;
    tl_buf payload = {0};
    if (vs->read_only)
        return tl_err(TALUS_EREADONLY, "%s: version set opened read-only", vs->dir);

    pthread_mutex_lock(&vs->write_mu);
    if (vs->sticky_rc < 0)
        TRY_OUT(tl_err(vs->sticky_rc, "%s: manifest is in an error state after: %s", vs->dir,
                       vs->sticky_msg));
    TRY_OUT(prepare_edit(vs, e, &st, &base));

    /* Build and check the new version before writing anything: a bad edit
     * is the caller's error and leaves the set usable. */
    ver_builder_init(&b, vs->num_levels, TALUS_EINVAL, "version edit");
    rc = ver_builder_add_version(&b, base);
    if (rc == 0)
        rc = ver_builder_apply(&b, e);
    if (rc == 0)
        rc = ver_builder_finish(&b, vs, &nv);
    ver_builder_free(&b);
    TRY_OUT(rc);
    TRY_OUT(ver_edit_encode(e, &payload));

    if (vs->need_rotate || vs->manifest_size >= VER_MANIFEST_ROTATE)
        rc = write_manifest(vs, nv, &st);
    else
        rc = append_record(vs, tl_buf_slice(&payload));
    if (rc < 0) {
        /* The record may or may not be on disk: stop writing until reopen,
         * which decides from what the disk holds. */
        vs->sticky_rc = rc;
        snprintf(vs->sticky_msg, sizeof vs->sticky_msg, "%s", tl_errmsg());
        goto out;
    }

    pthread_mutex_lock(&vs->mu);
    old = vs->current;
    nv->installed = true;
    vs->current = nv;
    nv = NULL;
    vs->next_file = max64(vs->next_file, e->next_file);
    vs->last_seq = st.last_seq;
    vs->flushed_seq = st.flushed_seq;
    vs->format_version = st.format_version;
    pthread_mutex_unlock(&vs->mu);
out:
    pthread_mutex_unlock(&vs->write_mu);
    tl_buf_free(&payload);
    /* Outside the locks: these may run the obsolete callback. nv was never
     * installed, so releasing it reports nothing. */
    ver_version_unref(nv);
    ver_version_unref(old);
    ver_version_unref(base);
    return rc;
}

/* ---- Accessors ---------------------------------------------------------- */

ver_version *ver_set_current(ver_set *vs)
{
    pthread_mutex_lock(&vs->mu);
    ver_version *v = vs->current;
    ver_version_ref(v);
    pthread_mutex_unlock(&vs->mu);
    return v;
}

void ver_set_mark_file_number(ver_set *vs, uint64_t number)
{
    pthread_mutex_lock(&vs->mu);
    if (vs->next_file <= number)
        vs->next_file = number + 1;
    pthread_mutex_unlock(&vs->mu);
}

uint64_t ver_set_new_file_number(ver_set *vs)
{
    pthread_mutex_lock(&vs->mu);
    uint64_t n = vs->next_file++;
    pthread_mutex_unlock(&vs->mu);
    return n;
}

#define GETTER(type, name, field)                                                                  \
    type name(ver_set *vs)                                                                         \
    {                                                                                              \
        pthread_mutex_lock(&vs->mu);                                                               \
        type v = (type)vs->field;                                                                  \
        pthread_mutex_unlock(&vs->mu);                                                             \
        return v;                                                                                  \
    }

GETTER(uint64_t, ver_set_last_seq, last_seq)
GETTER(uint64_t, ver_set_flushed_seq, flushed_seq)
GETTER(uint32_t, ver_set_format_version, format_version)
GETTER(uint64_t, ver_set_manifest_number, manifest_number)

int ver_set_num_levels(ver_set *vs)
{
    return vs->num_levels; /* fixed after open */
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

int ver_set_live_files(ver_set *vs, uint64_t **numbers, size_t *n)
{
    *numbers = NULL;
    *n = 0;
    pthread_mutex_lock(&vs->mu);
    size_t count = 1;
    for (ver_version *v = vs->live; v; v = v->next)
        for (int l = 0; l <= VER_BLOB_LEVEL; l++)
            count += v->nfiles[l];
    uint64_t *arr = malloc(count * sizeof *arr);
    if (!arr) {
        pthread_mutex_unlock(&vs->mu);
        return tl_err(TALUS_ENOMEM, "%s: out of memory listing live files", vs->dir);
    }
    size_t k = 0;
    arr[k++] = vs->manifest_number;
    for (ver_version *v = vs->live; v; v = v->next)
        for (int l = 0; l <= VER_BLOB_LEVEL; l++)
            for (size_t i = 0; i < v->nfiles[l]; i++)
                arr[k++] = v->files[l][i]->number;
    pthread_mutex_unlock(&vs->mu);
    qsort(arr, k, sizeof *arr, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || arr[u - 1] != arr[i])
            arr[u++] = arr[i];
    *numbers = arr;
    *n = u;
    return 0;
}
