/*
 * notify.c - kernel cache invalidations, sent from a thread of their own.
 *
 * The kernel caches entries and attributes for the timeouts we give it.
 * When something it cached changes by another path than the operation it
 * is running (a file losing its conflict suffix when the directory of the
 * same name goes away, a chain directory vanishing), we tell it. libfuse
 * warns that a notification sent from inside an operation on a related
 * inode can deadlock, hence the queue: operations only enqueue.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

static void enqueue(struct tfs *fs, struct tfs_inval *iv)
{
    pthread_mutex_lock(&fs->inval_mu);
    if (!fs->inval_running) {
        pthread_mutex_unlock(&fs->inval_mu);
        free(iv->name);
        free(iv);
        return;
    }
    if (fs->inval_tail)
        fs->inval_tail->next = iv;
    else
        fs->inval_head = iv;
    fs->inval_tail = iv;
    pthread_cond_signal(&fs->inval_cv);
    pthread_mutex_unlock(&fs->inval_mu);
}

void tfs_inval_entry(struct tfs *fs, uint64_t parent, const char *name, size_t namelen)
{
    struct tfs_inval *iv = calloc(1, sizeof *iv);
    if (!iv)
        return;
    iv->parent = parent;
    iv->name = strndup(name, namelen);
    iv->namelen = namelen;
    if (!iv->name) {
        free(iv);
        return;
    }
    enqueue(fs, iv);
}

void tfs_inval_inode(struct tfs *fs, uint64_t ino)
{
    struct tfs_inval *iv = calloc(1, sizeof *iv);
    if (!iv)
        return;
    iv->ino = ino;
    enqueue(fs, iv);
}

static void *inval_main(void *arg)
{
    struct tfs *fs = arg;
    pthread_mutex_lock(&fs->inval_mu);
    for (;;) {
        while (!fs->inval_head && !fs->inval_stop)
            pthread_cond_wait(&fs->inval_cv, &fs->inval_mu);
        struct tfs_inval *iv = fs->inval_head;
        if (!iv)
            break; /* stopping, queue drained */
        fs->inval_head = iv->next;
        if (!fs->inval_head)
            fs->inval_tail = NULL;
        bool stop = fs->inval_stop;
        pthread_mutex_unlock(&fs->inval_mu);
        /* Errors (ENOENT: the kernel had nothing cached) do not matter. */
        if (!stop) {
            if (iv->name)
                fuse_lowlevel_notify_inval_entry(fs->se, iv->parent, iv->name, iv->namelen);
            else
                fuse_lowlevel_notify_inval_inode(fs->se, iv->ino, 0, 0);
        }
        free(iv->name);
        free(iv);
        pthread_mutex_lock(&fs->inval_mu);
    }
    pthread_mutex_unlock(&fs->inval_mu);
    return NULL;
}

int tfs_attach_session(struct tfs *fs, struct fuse_session *se)
{
    fs->se = se;
    fs->inval_stop = false;
    fs->inval_running = true;
    int rc = pthread_create(&fs->inval_thread, NULL, inval_main, fs);
    if (rc != 0) {
        fs->inval_running = false;
        return -rc;
    }
    return 0;
}

void tfs_detach_session(struct tfs *fs)
{
    pthread_mutex_lock(&fs->inval_mu);
    bool running = fs->inval_running;
    fs->inval_stop = true;
    fs->inval_running = false;
    pthread_cond_signal(&fs->inval_cv);
    pthread_mutex_unlock(&fs->inval_mu);
    if (running)
        pthread_join(fs->inval_thread, NULL);
}
