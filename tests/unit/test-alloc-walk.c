/*
 * Unit tests of the allocation walk (migration/core/alloc-walk.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "migration/iolab/core/alloc-walk.h"

typedef struct FakeDisk {
    const uint8_t *map;         /* 1 = allocated */
    uint64_t nblocks;
    uint64_t max_answer;        /* answer at most this many blocks (0: all) */
    int fail_at_call;           /* status call that fails, or -1 */
    int calls;
    bool answer_zero;           /* misbehave: count 0 */
    bool answer_past_end;       /* misbehave: count past the end */
} FakeDisk;

static int fake_status(void *opaque, uint64_t block, uint64_t max,
                       bool *allocated, uint64_t *count)
{
    FakeDisk *d = opaque;
    uint64_t n = 1;

    assert_true(block < d->nblocks);
    assert_true(max == d->nblocks - block);
    if (d->calls++ == d->fail_at_call) {
        return -EIO;
    }
    *allocated = d->map[block];
    if (d->answer_zero) {
        *count = 0;
        return 0;
    }
    if (d->answer_past_end) {
        *count = UINT64_MAX;
        return 0;
    }
    while (block + n < d->nblocks && d->map[block + n] == d->map[block] &&
           (!d->max_answer || n < d->max_answer)) {
        n++;
    }
    *count = n;
    return 0;
}

/* Walks @d to the end with chunks of at most @chunk; checks the result. */
static void walk_and_check(FakeDisk *d, uint64_t chunk)
{
    IolabAllocWalk w;
    uint8_t *got = calloc(d->nblocks, 1);
    uint64_t start, count, next_min = 0, allocated = 0;
    int ret;

    iolab_alloc_walk_init(&w, d->nblocks, fake_status, d);
    while ((ret = iolab_alloc_walk_next(&w, chunk, &start, &count)) == 1) {
        assert_true(count >= 1 && count <= chunk);
        assert_true(start >= next_min);         /* in order, no overlap */
        assert_true(start + count <= d->nblocks);
        for (uint64_t b = start; b < start + count; b++) {
            got[b] = 1;
        }
        next_min = start + count;
    }
    assert_int_equal(ret, 0);
    assert_true(iolab_alloc_walk_done(&w));
    assert_int_equal(iolab_alloc_walk_remaining(&w), 0);
    for (uint64_t b = 0; b < d->nblocks; b++) {
        allocated += d->map[b];
    }
    assert_memory_equal(got, d->map, d->nblocks);
    assert_int_equal(w.allocated_blocks, allocated);
    assert_int_equal(w.allocated_blocks + w.hole_blocks, d->nblocks);
    free(got);
}

static void test_skips_holes_and_chunks_runs(void **state)
{
    /* hole 0-9, data 10-34, hole 35-39, data 40-41, hole to the end */
    uint8_t map[64] = { 0 };
    FakeDisk d = { .map = map, .nblocks = 64, .fail_at_call = -1 };
    IolabAllocWalk w;
    uint64_t start, count;

    (void)state;
    memset(map + 10, 1, 25);
    memset(map + 40, 1, 2);
    iolab_alloc_walk_init(&w, 64, fake_status, &d);
    assert_int_equal(iolab_alloc_walk_next(&w, 10, &start, &count), 1);
    assert_int_equal(start, 10);
    assert_int_equal(count, 10);
    assert_int_equal(iolab_alloc_walk_next(&w, 10, &start, &count), 1);
    assert_int_equal(start, 20);
    assert_int_equal(count, 10);
    assert_int_equal(iolab_alloc_walk_next(&w, 10, &start, &count), 1);
    assert_int_equal(start, 30);
    assert_int_equal(count, 5);
    /* The 25-block run took one status call, not three. */
    assert_int_equal(w.status_calls, 2);
    assert_int_equal(iolab_alloc_walk_next(&w, 10, &start, &count), 1);
    assert_int_equal(start, 40);
    assert_int_equal(count, 2);
    assert_int_equal(iolab_alloc_walk_next(&w, 10, &start, &count), 0);
    assert_int_equal(w.hole_blocks, 10 + 5 + 22);
    assert_int_equal(iolab_alloc_walk_next(&w, 10, &start, &count), 0);
}

static void test_empty_and_full_devices(void **state)
{
    uint8_t map[100];
    FakeDisk d = { .map = map, .nblocks = 100, .fail_at_call = -1 };

    (void)state;
    memset(map, 0, sizeof(map));
    walk_and_check(&d, 7);
    memset(map, 1, sizeof(map));
    d.calls = 0;
    walk_and_check(&d, 7);
    walk_and_check(&d, UINT64_MAX);
}

static void test_error_leaves_the_cursor(void **state)
{
    uint8_t map[16] = { 0, 0, 1, 1, 0, 1 };
    FakeDisk d = { .map = map, .nblocks = 16, .fail_at_call = 1 };
    IolabAllocWalk w;
    uint64_t start, count;

    (void)state;
    iolab_alloc_walk_init(&w, 16, fake_status, &d);
    /* Call 0 finds the hole, call 1 fails. */
    assert_int_equal(iolab_alloc_walk_next(&w, 8, &start, &count), -EIO);
    assert_int_equal(w.cursor, 2);
    /* Retried, the walk goes on where it was. */
    assert_int_equal(iolab_alloc_walk_next(&w, 8, &start, &count), 1);
    assert_int_equal(start, 2);
    assert_int_equal(count, 2);
    assert_int_equal(iolab_alloc_walk_next(&w, 0, &start, &count), -EINVAL);
}

static void test_misbehaving_status_is_clamped(void **state)
{
    uint8_t map[10] = { 1, 1, 0, 0, 1 };
    FakeDisk d = { .map = map, .nblocks = 10, .fail_at_call = -1,
                   .answer_zero = true };
    IolabAllocWalk w;
    uint64_t start, count;
    int n = 0;

    (void)state;
    /* Count 0 every time: the walk still advances a block a call. */
    iolab_alloc_walk_init(&w, 10, fake_status, &d);
    while (iolab_alloc_walk_next(&w, 100, &start, &count) == 1) {
        assert_int_equal(count, 1);
        n++;
    }
    assert_int_equal(n, 3);
    assert_int_equal(d.calls, 10);

    /* A count past the end stops at the end. */
    d.answer_zero = false;
    d.answer_past_end = true;
    iolab_alloc_walk_init(&w, 10, fake_status, &d);
    assert_int_equal(iolab_alloc_walk_next(&w, 100, &start, &count), 1);
    assert_int_equal(start, 0);
    assert_int_equal(count, 10);
    assert_int_equal(iolab_alloc_walk_next(&w, 100, &start, &count), 0);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void test_random_maps(void **state)
{
    uint64_t s = 42;

    (void)state;
    for (int i = 0; i < 200; i++) {
        uint64_t n = 1 + rnd(&s) % 3000;
        uint8_t *map = malloc(n);
        FakeDisk d = { .map = map, .nblocks = n, .fail_at_call = -1,
                       .max_answer = rnd(&s) % 40 };
        uint8_t v = rnd(&s) & 1;

        for (uint64_t b = 0; b < n; b++) {
            if (rnd(&s) % 23 == 0) {
                v ^= 1;
            }
            map[b] = v;
        }
        walk_and_check(&d, 1 + rnd(&s) % 64);
        free(map);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skips_holes_and_chunks_runs),
        cmocka_unit_test(test_empty_and_full_devices),
        cmocka_unit_test(test_error_leaves_the_cursor),
        cmocka_unit_test(test_misbehaving_status_is_clamped),
        cmocka_unit_test(test_random_maps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
