/*
 * Unit tests for the VPRI swap store
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "hw/vpri/core/swap-store.h"

#define PS SWAP_STORE_PAGE_SIZE

typedef struct Fixture {
    char dir[64];
    SwapStore *ss;
} Fixture;

/* Every byte depends on both the pfn and a version number */
static void fill(uint8_t *buf, uint64_t pfn, unsigned int version)
{
    size_t i;

    for (i = 0; i < PS; i++) {
        buf[i] = (uint8_t)(pfn * 31 + i * 7 + version * 13 + (i >> 8));
    }
}

static int setup(void **state)
{
    Fixture *f = calloc(1, sizeof(*f));

    strcpy(f->dir, "/tmp/test-swap-store-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    if (vpri_swap_store_open(NULL, f->dir, 1024, &f->ss) < 0) {
        rmdir(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;

    vpri_swap_store_close(f->ss);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void test_open_args(void **state)
{
    Fixture *f = *state;
    SwapStore *ss = NULL;
    char path[128];
    struct stat st;
    uint8_t in[PS], out[PS];

    assert_int_equal(vpri_swap_store_open(NULL, NULL, 10, &ss), -EINVAL);
    assert_int_equal(vpri_swap_store_open("/x", f->dir, 10, &ss), -EINVAL);
    assert_int_equal(vpri_swap_store_open(NULL, f->dir, 0, &ss), -EINVAL);
    assert_int_equal(vpri_swap_store_open(NULL, f->dir,
                                     (uint64_t)SWAP_STORE_MAX_PFNS + 1, &ss),
                     -EINVAL);
    assert_int_equal(vpri_swap_store_open(NULL, "/nonexistent/dir", 10, &ss),
                     -ENOENT);
    assert_null(ss);

    /* A named file is created and really holds the pages */
    snprintf(path, sizeof(path), "%s/named", f->dir);
    assert_int_equal(vpri_swap_store_open(path, NULL, 10, &ss), 0);
    fill(in, 3, 0);
    assert_int_equal(vpri_swap_store_put(ss, 3, in), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, PS);
    assert_int_equal(vpri_swap_store_get(ss, 3, out), 0);
    assert_memory_equal(in, out, PS);
    vpri_swap_store_close(ss);
    assert_int_equal(unlink(path), 0);
}

static void test_tmp_file_is_unlinked(void **state)
{
    Fixture *f = *state;
    char cmd[128];
    FILE *p;
    int n;

    /* The fixture's store lives in f->dir, which must look empty */
    snprintf(cmd, sizeof(cmd), "ls -A %s | wc -l", f->dir);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    assert_int_equal(n, 0);
}

static void test_round_trip(void **state)
{
    Fixture *f = *state;
    uint8_t in[PS], out[PS];
    SwapStoreStats st;

    fill(in, 42, 0);
    assert_false(vpri_swap_store_contains(f->ss, 42));
    assert_int_equal(vpri_swap_store_get(f->ss, 42, out), -ENOENT);
    assert_int_equal(vpri_swap_store_put(f->ss, 42, in), 0);
    assert_true(vpri_swap_store_contains(f->ss, 42));
    memset(out, 0, PS);
    assert_int_equal(vpri_swap_store_get(f->ss, 42, out), 0);
    assert_memory_equal(in, out, PS);
    vpri_swap_store_get_stats(f->ss, &st);
    assert_int_equal(st.stored, 1);
    assert_int_equal(st.puts, 1);
    assert_int_equal(st.gets, 1);
    assert_int_equal(st.slots, 1);
}

static void test_overwrite_keeps_slot(void **state)
{
    Fixture *f = *state;
    uint8_t in[PS], out[PS];
    SwapStoreStats st;
    int64_t slot;

    fill(in, 7, 0);
    assert_int_equal(vpri_swap_store_put(f->ss, 7, in), 0);
    slot = vpri_swap_store_slot(f->ss, 7);
    assert_true(slot >= 0);
    fill(in, 7, 1);
    assert_int_equal(vpri_swap_store_put(f->ss, 7, in), 0);
    assert_int_equal(vpri_swap_store_slot(f->ss, 7), slot);
    assert_int_equal(vpri_swap_store_get(f->ss, 7, out), 0);
    assert_memory_equal(in, out, PS);
    vpri_swap_store_get_stats(f->ss, &st);
    assert_int_equal(st.stored, 1);
    assert_int_equal(st.slots, 1);
}

static void test_drop_and_reuse(void **state)
{
    Fixture *f = *state;
    uint8_t in[PS], out[PS];
    SwapStoreStats st;
    int64_t s1, s2, s3;

    fill(in, 1, 0);
    assert_int_equal(vpri_swap_store_put(f->ss, 1, in), 0);
    fill(in, 2, 0);
    assert_int_equal(vpri_swap_store_put(f->ss, 2, in), 0);
    s1 = vpri_swap_store_slot(f->ss, 1);
    s2 = vpri_swap_store_slot(f->ss, 2);
    assert_true(s1 != s2);

    assert_int_equal(vpri_swap_store_drop(f->ss, 1), 0);
    assert_false(vpri_swap_store_contains(f->ss, 1));
    assert_int_equal(vpri_swap_store_get(f->ss, 1, out), -ENOENT);
    assert_int_equal(vpri_swap_store_drop(f->ss, 1), -ENOENT);
    assert_int_equal(vpri_swap_store_slot(f->ss, 1), -ENOENT);

    /* The freed slot is reused before the file grows */
    fill(in, 3, 0);
    assert_int_equal(vpri_swap_store_put(f->ss, 3, in), 0);
    s3 = vpri_swap_store_slot(f->ss, 3);
    assert_int_equal(s3, s1);
    assert_int_equal(vpri_swap_store_get(f->ss, 3, out), 0);
    assert_memory_equal(in, out, PS);
    /* ...without disturbing the page next to it */
    fill(in, 2, 0);
    assert_int_equal(vpri_swap_store_get(f->ss, 2, out), 0);
    assert_memory_equal(in, out, PS);

    vpri_swap_store_get_stats(f->ss, &st);
    assert_int_equal(st.slots, 2);
    assert_int_equal(st.stored, 2);
    assert_int_equal(st.drops, 1);
}

static void test_many_pages(void **state)
{
    Fixture *f = *state;
    uint8_t in[PS], out[PS];
    SwapStoreStats st;
    uint64_t pfn;

    for (pfn = 0; pfn < 1024; pfn++) {
        fill(in, pfn, 0);
        assert_int_equal(vpri_swap_store_put(f->ss, pfn, in), 0);
    }
    /* Drop every third page, rewrite every fifth */
    for (pfn = 0; pfn < 1024; pfn += 3) {
        assert_int_equal(vpri_swap_store_drop(f->ss, pfn), 0);
    }
    for (pfn = 0; pfn < 1024; pfn += 5) {
        fill(in, pfn, 2);
        assert_int_equal(vpri_swap_store_put(f->ss, pfn, in), 0);
    }
    for (pfn = 0; pfn < 1024; pfn++) {
        if (pfn % 5 == 0) {
            fill(in, pfn, 2);
        } else if (pfn % 3 == 0) {
            assert_int_equal(vpri_swap_store_get(f->ss, pfn, out), -ENOENT);
            continue;
        } else {
            fill(in, pfn, 0);
        }
        assert_int_equal(vpri_swap_store_get(f->ss, pfn, out), 0);
        assert_memory_equal(in, out, PS);
    }
    vpri_swap_store_get_stats(f->ss, &st);
    /* Re-stored dropped pages took freed slots: no growth */
    assert_int_equal(st.slots, 1024);
    assert_int_equal(st.stored, 1024 - 342 + 69);
}

static void test_bad_pfn(void **state)
{
    Fixture *f = *state;
    uint8_t buf[PS] = { 0 };

    assert_int_equal(vpri_swap_store_put(f->ss, 1024, buf), -EINVAL);
    assert_int_equal(vpri_swap_store_put(f->ss, UINT64_MAX, buf), -EINVAL);
    assert_int_equal(vpri_swap_store_get(f->ss, 1024, buf), -EINVAL);
    assert_int_equal(vpri_swap_store_drop(f->ss, 1024), -EINVAL);
    assert_int_equal(vpri_swap_store_slot(f->ss, 5000), -EINVAL);
    assert_false(vpri_swap_store_contains(f->ss, 1024));
    assert_int_equal(vpri_swap_store_put(f->ss, 0, NULL), -EINVAL);
    assert_int_equal(vpri_swap_store_get(f->ss, 0, NULL), -EINVAL);
}

static void test_io_error(void **state)
{
    Fixture *f = *state;
    SwapStore *ss;
    uint8_t in[PS], out[PS];
    char path[128];
    SwapStoreStats st;
    int ret;

    /* Every write to /dev/full fails with ENOSPC */
    (void)f;
    snprintf(path, sizeof(path), "/dev/full");
    if (access(path, W_OK) != 0) {
        skip();
    }
    assert_int_equal(vpri_swap_store_open(path, NULL, 4, &ss), 0);
    fill(in, 1, 0);
    ret = vpri_swap_store_put(ss, 1, in);
    assert_int_equal(ret, -ENOSPC);
    /* A failed put leaves no copy behind */
    assert_false(vpri_swap_store_contains(ss, 1));
    assert_int_equal(vpri_swap_store_get(ss, 1, out), -ENOENT);
    vpri_swap_store_get_stats(ss, &st);
    assert_int_equal(st.io_errors, 1);
    assert_int_equal(st.stored, 0);
    vpri_swap_store_close(ss);
}

#define MT_THREADS 4
#define MT_PAGES_PER 64
#define MT_ROUNDS 20

typedef struct MtArg {
    SwapStore *ss;
    int id;
    int errors;
} MtArg;

/* Threads own disjoint pfns but share slots through the free list */
static void *mt_thread(void *opaque)
{
    MtArg *arg = opaque;
    uint8_t in[PS], out[PS];
    uint64_t pfn;
    int r, i;

    for (r = 0; r < MT_ROUNDS; r++) {
        for (i = 0; i < MT_PAGES_PER; i++) {
            pfn = (uint64_t)(arg->id * MT_PAGES_PER + i);
            fill(in, pfn, (unsigned int)r);
            if (vpri_swap_store_put(arg->ss, pfn, in) != 0) {
                arg->errors++;
            }
        }
        for (i = 0; i < MT_PAGES_PER; i++) {
            pfn = (uint64_t)(arg->id * MT_PAGES_PER + i);
            fill(in, pfn, (unsigned int)r);
            if (vpri_swap_store_get(arg->ss, pfn, out) != 0 ||
                memcmp(in, out, PS) != 0) {
                arg->errors++;
            }
            if ((i + r) % 2 && vpri_swap_store_drop(arg->ss, pfn) != 0) {
                arg->errors++;
            }
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    Fixture *f = *state;
    pthread_t t[MT_THREADS];
    MtArg args[MT_THREADS];
    SwapStoreStats st;
    int i;

    for (i = 0; i < MT_THREADS; i++) {
        args[i].ss = f->ss;
        args[i].id = i;
        args[i].errors = 0;
        assert_int_equal(pthread_create(&t[i], NULL, mt_thread, &args[i]),
                         0);
    }
    for (i = 0; i < MT_THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].errors, 0);
    }
    vpri_swap_store_get_stats(f->ss, &st);
    assert_true(st.slots <= MT_THREADS * MT_PAGES_PER);
    assert_int_equal(st.puts, MT_THREADS * MT_PAGES_PER * MT_ROUNDS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmp_file_is_unlinked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overwrite_keeps_slot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_drop_and_reuse, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_many_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_pfn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
