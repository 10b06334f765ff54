/*
 * Field map and mutations of a saved migration stream (iolab's mutator).
 *
 * A precopy stream saved to a file ends with QEMU's JSON description of
 * every non-iterable section ("vmdesc"): per section its idstr, instance
 * and, field by field in stream order, name, type, array length and the
 * number of bytes written.  From that description and the section
 * headers in the stream, mig_stream_map() finds the byte range of every
 * leaf field of the sections we are asked about, so that a mutation can
 * change exactly one field (or one element of an array) and nothing
 * else.  The format was learnt from QEMU's savevm.c and vmstate.c; the
 * parser is our own.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IOLAB_MIG_STREAM_H
#define IOLAB_MIG_STREAM_H

#include <stdint.h>
#include <stdbool.h>
#include <glib.h>

/* One leaf field (one array element) of a device section */
typedef struct MigField {
    char *path;             /* "idstr:st.sq[3].cqid" */
    char *group;            /* the path without element indices */
    char *type;             /* vmdesc type name: "uint16", "buffer", ... */
    size_t offset;          /* in the stream file */
    size_t size;            /* bytes */
    bool integer;           /* a big-endian integer (1, 2, 4 or 8 bytes) */
} MigField;

typedef struct MigStream {
    uint8_t *data;
    size_t len;
    GPtrArray *fields;      /* MigField * */
    GPtrArray *groups;      /* char *: distinct groups, in stream order */
    GPtrArray *slots;       /* the groups, each as often as it weighs */
} MigStream;

/*
 * Read the stream file @path and map the leaf fields of every section
 * whose idstr ends with one of @suffixes (NULL-terminated, e.g.
 * "/vpri-blk").  Returns NULL with @err set when the file has no vmdesc,
 * a section cannot be found or its size does not add up.
 */
MigStream *mig_stream_map(const char *path, const char * const *suffixes,
                          GError **err);
void mig_stream_free(MigStream *s);

/* Kinds of mutation */
typedef enum MigMutKind {
    MUT_BITFLIP,            /* one bit */
    MUT_ZERO,               /* 0 */
    MUT_ONE,                /* 1 */
    MUT_MAX,                /* all ones */
    MUT_MAX_MINUS_1,        /* all ones but bit 0 */
    MUT_MIN_SIGNED,         /* 0x80.. */
    MUT_MAX_SIGNED,         /* 0x7f.. */
    MUT_SIGN_FLIP,          /* top bit toggled */
    MUT_PLUS_1,             /* value + 1 (off by one) */
    MUT_MINUS_1,            /* value - 1 */
    MUT__COUNT,             /* the kinds above are drawn */
    MUT_SET = MUT__COUNT,   /* a given value (mig_mutation_set) */
} MigMutKind;

/* One field's change: field, kind and where (a bit, or a byte of a buffer) */
typedef struct MigEdit {
    const MigField *field;
    MigMutKind kind;
    size_t byte;            /* buffers: first byte of the word mutated */
    unsigned width;         /* buffers: that word's bits (8..64, LE) */
    unsigned bit;           /* MUT_BITFLIP: the bit of the value/byte */
    uint64_t before, after; /* the value (or byte) before and after */
} MigEdit;

/*
 * The most edits one mutant stacks.  One field at a time reaches a few
 * thousand distinct mutants per device; the bugs that need two fields
 * wrong together (a count and the index it bounds, a queue's size and
 * its head) need stacks.
 */
#define MIG_MUTATION_MAX_EDITS 4

/* One mutant: edit[0] is its primary edit, applied in order */
typedef struct MigMutation {
    MigEdit edit[MIG_MUTATION_MAX_EDITS];
    unsigned nedits;
} MigMutation;

/*
 * Draw the @index-th mutation of seed @seed.  The field group goes round
 * robin over s->slots (so that every distinct field is hit in every
 * round of s->slots->len mutants, not mostly the elements of big
 * arrays); opaque "buffer" fields (a device's own encoding of chains or
 * instances, little-endian inside) have up to 16 slots by their size and
 * are mutated as an aligned 8-, 16-, 32- or 64-bit word.  The element is
 * one with live (non-zero) state half of the time; the kind and position
 * are drawn from (seed, index).  The first round (@index below
 * s->slots->len) edits one field; later rounds stack 1 to
 * MIG_MUTATION_MAX_EDITS edits of distinct fields (1 half of the time),
 * the first still going round robin.  Deterministic: the same (seed,
 * index) and stream give the same mutation.
 */
void mig_mutation_draw(const MigStream *s, uint64_t seed, uint64_t index,
                       MigMutation *m);

/*
 * Apply @m to a copy of the stream and write it to @path.  Returns
 * false with @err set if the file cannot be written.
 */
bool mig_mutation_write(const MigStream *s, MigMutation *m, const char *path,
                        GError **err);

/*
 * The one-edit mutation that sets the integer field whose path ends with
 * @path_suffix (after a ':' or a '.', the first such field in the
 * stream) to @value.  Returns false if the stream has no such field.
 */
bool mig_mutation_set(const MigStream *s, const char *path_suffix,
                      uint64_t value, MigMutation *m);

const char *mig_mut_kind_name(MigMutKind k);

/*
 * "idstr:st.aer_count (uint8, 1 bytes): 0x3 -> 0xff (max)", edits joined
 * by " + "
 */
char *mig_mutation_describe(const MigMutation *m);

#endif
