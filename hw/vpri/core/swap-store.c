/*
 * VPRI core: swap store for evicted guest pages
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "hw/vpri/core/swap-store.h"

/*
 * The file I/O runs under the lock.  Dropping the lock around it would
 * let a slot be freed and handed to another pfn while a read of it is
 * still going on; a per-slot scheme could fix that, but evictions are
 * far rarer than DMAs, so the simple rule wins for now.
 */
struct SwapStore {
    int fd;
    uint64_t npfns;
    pthread_mutex_t lock;
    uint32_t *slot_of;          /* per pfn: slot + 1, or 0 if none */
    uint32_t *free_slots;       /* stack of freed slots */
    uint32_t nfree;
    uint32_t free_cap;
    uint32_t nslots;            /* slots ever used: the file size */
    SwapStoreStats stats;
};

static int vpri_swap_store_open_tmp(const char *dir)
{
    static const char name[] = "/iolab-swap-XXXXXX";
    size_t len = strlen(dir);
    char *tmpl;
    int fd, err;

    tmpl = malloc(len + sizeof(name));
    if (!tmpl) {
        return -ENOMEM;
    }
    memcpy(tmpl, dir, len);
    memcpy(tmpl + len, name, sizeof(name));
    fd = mkstemp(tmpl);
    if (fd < 0) {
        err = -errno;
        free(tmpl);
        return err;
    }
    /* mkostemp() would need _GNU_SOURCE; keep the fd from children */
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    /* Unlinked at once: nothing is left behind if we crash. */
    if (unlink(tmpl) < 0) {
        err = -errno;
        close(fd);
        free(tmpl);
        return err;
    }
    free(tmpl);
    return fd;
}

int vpri_swap_store_open(const char *path, const char *tmpdir, uint64_t npfns,
                    SwapStore **out)
{
    SwapStore *ss;
    int fd, err;

    if (!out || !path == !tmpdir || npfns == 0 ||
        npfns > SWAP_STORE_MAX_PFNS) {
        return -EINVAL;
    }
    ss = calloc(1, sizeof(*ss));
    if (!ss) {
        return -ENOMEM;
    }
    ss->slot_of = calloc(npfns, sizeof(*ss->slot_of));
    if (!ss->slot_of) {
        free(ss);
        return -ENOMEM;
    }
    err = pthread_mutex_init(&ss->lock, NULL);
    if (err) {
        free(ss->slot_of);
        free(ss);
        return -err;
    }
    if (path) {
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            fd = -errno;
        }
    } else {
        fd = vpri_swap_store_open_tmp(tmpdir);
    }
    if (fd < 0) {
        pthread_mutex_destroy(&ss->lock);
        free(ss->slot_of);
        free(ss);
        return fd;
    }
    ss->fd = fd;
    ss->npfns = npfns;
    ss->stats.npfns = npfns;
    *out = ss;
    return 0;
}

void vpri_swap_store_close(SwapStore *ss)
{
    if (!ss) {
        return;
    }
    close(ss->fd);
    pthread_mutex_destroy(&ss->lock);
    free(ss->free_slots);
    free(ss->slot_of);
    free(ss);
}

static off_t vpri_swap_store_offset(uint32_t slot)
{
    return (off_t)slot * SWAP_STORE_PAGE_SIZE;
}

/* Full-page transfers; a short count is retried, EOF is -EIO. */
static int vpri_swap_store_transfer(int fd, void *buf, off_t off, bool write)
{
    char *p = buf;
    size_t done = 0;
    ssize_t n;

    while (done < SWAP_STORE_PAGE_SIZE) {
        n = write ? pwrite(fd, p + done, SWAP_STORE_PAGE_SIZE - done,
                           off + (off_t)done)
                  : pread(fd, p + done, SWAP_STORE_PAGE_SIZE - done,
                          off + (off_t)done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return -EIO;
        }
        done += (size_t)n;
    }
    return 0;
}

/* Called with the lock held */
static int vpri_swap_store_free_slot(SwapStore *ss, uint32_t slot)
{
    uint32_t *p;
    uint32_t cap;

    if (ss->nfree == ss->free_cap) {
        cap = ss->free_cap ? ss->free_cap * 2 : 64;
        p = realloc(ss->free_slots, (size_t)cap * sizeof(*p));
        if (!p) {
            return -ENOMEM;
        }
        ss->free_slots = p;
        ss->free_cap = cap;
    }
    ss->free_slots[ss->nfree++] = slot;
    return 0;
}

/*
 * Called with the lock held.  A slot that cannot be put on the free
 * list (out of memory) is leaked: a few KiB of file, not a wrong page.
 */
static void vpri_swap_store_unmap(SwapStore *ss, uint64_t pfn)
{
    uint32_t slot = ss->slot_of[pfn] - 1;

    ss->slot_of[pfn] = 0;
    ss->stats.stored--;
    vpri_swap_store_free_slot(ss, slot);
}

int vpri_swap_store_put(SwapStore *ss, uint64_t pfn, const void *data)
{
    uint32_t slot;
    bool fresh = false;
    int ret;

    if (pfn >= ss->npfns || !data) {
        return -EINVAL;
    }
    pthread_mutex_lock(&ss->lock);
    if (ss->slot_of[pfn]) {
        slot = ss->slot_of[pfn] - 1;
    } else if (ss->nfree) {
        slot = ss->free_slots[--ss->nfree];
        fresh = true;
    } else {
        /* At most one slot per pfn, so nslots < npfns fits in 32 bits */
        slot = ss->nslots++;
        fresh = true;
    }
    if (fresh) {
        ss->slot_of[pfn] = slot + 1;
        ss->stats.stored++;
    }
    ret = vpri_swap_store_transfer(ss->fd, (void *)data,
                                   vpri_swap_store_offset(slot), true);
    if (ret < 0) {
        vpri_swap_store_unmap(ss, pfn);
        ss->stats.io_errors++;
    } else {
        ss->stats.puts++;
    }
    pthread_mutex_unlock(&ss->lock);
    return ret;
}

int vpri_swap_store_get(SwapStore *ss, uint64_t pfn, void *buf)
{
    int ret;

    if (pfn >= ss->npfns || !buf) {
        return -EINVAL;
    }
    pthread_mutex_lock(&ss->lock);
    if (!ss->slot_of[pfn]) {
        ret = -ENOENT;
    } else {
        ret = vpri_swap_store_transfer(ss->fd, buf,
                                       vpri_swap_store_offset(
                                           ss->slot_of[pfn] - 1),
                                       false);
        if (ret < 0) {
            ss->stats.io_errors++;
        } else {
            ss->stats.gets++;
        }
    }
    pthread_mutex_unlock(&ss->lock);
    return ret;
}

int vpri_swap_store_drop(SwapStore *ss, uint64_t pfn)
{
    int ret = 0;

    if (pfn >= ss->npfns) {
        return -EINVAL;
    }
    pthread_mutex_lock(&ss->lock);
    if (!ss->slot_of[pfn]) {
        ret = -ENOENT;
    } else {
        vpri_swap_store_unmap(ss, pfn);
        ss->stats.drops++;
    }
    pthread_mutex_unlock(&ss->lock);
    return ret;
}

bool vpri_swap_store_contains(SwapStore *ss, uint64_t pfn)
{
    bool ret;

    if (pfn >= ss->npfns) {
        return false;
    }
    pthread_mutex_lock(&ss->lock);
    ret = ss->slot_of[pfn] != 0;
    pthread_mutex_unlock(&ss->lock);
    return ret;
}

int64_t vpri_swap_store_slot(SwapStore *ss, uint64_t pfn)
{
    int64_t ret;

    if (pfn >= ss->npfns) {
        return -EINVAL;
    }
    pthread_mutex_lock(&ss->lock);
    ret = ss->slot_of[pfn] ? (int64_t)ss->slot_of[pfn] - 1 : -ENOENT;
    pthread_mutex_unlock(&ss->lock);
    return ret;
}

void vpri_swap_store_get_stats(SwapStore *ss, SwapStoreStats *stats)
{
    pthread_mutex_lock(&ss->lock);
    *stats = ss->stats;
    stats->slots = ss->nslots;
    pthread_mutex_unlock(&ss->lock);
}
