/*
 * nvme-export: template fields, defaults, checks and namespace binding
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hw/nvme-export/core/nvmex-spec.h"
#include "hw/nvme-export/core/nvmex-template.h"

#define NVMEX_FIELD_NAME(field, prop, kind, member, arg) field,

const char *const nvmex_template_fields[] = {
    NVMEX_TEMPLATE_FIELDS(NVMEX_FIELD_NAME) NULL
};

const char *const nvmex_ns_template_fields[] = {
    NVMEX_NS_TEMPLATE_FIELDS(NVMEX_FIELD_NAME) NULL
};

#undef NVMEX_FIELD_NAME

static int nvmex_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int nvmex_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void nvmex_ns_template_default(NvmexNsTemplate *n, uint32_t nsid)
{
    memset(n, 0, sizeof(*n));
    n->nsid = nsid;
    /*
     * One 4 KiB format: every backing honours it, including O_DIRECT
     * files on 4K-sector disks, where 512-byte blocks would need
     * read-modify-write and lose single-block write atomicity.
     */
    n->nlbaf = 1;
    n->lbaf[0].lbads = 12;
    n->flbas = 0;
    /* 1 MiB: what a migration pass copies at a time */
    n->tlbaag = 256;
}

void nvmex_template_default(NvmexTemplate *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "iolab-default-1");
    t->vid = 0x1b36;
    t->did = 0x0115;
    t->ssvid = 0x1af4;
    t->ssid = 0x1100;
    snprintf(t->sn, sizeof(t->sn), "IOLAB0000000001");
    snprintf(t->mn, sizeof(t->mn), "iolab exported NVMe controller");
    snprintf(t->fr, sizeof(t->fr), "1.0");
    snprintf(t->subnqn, sizeof(t->subnqn),
             "nqn.2026-01.org.iolab:nvme-export:default");
    t->oui = 0x525400;
    t->cntlid = 1;
    t->mdts = 7;
    t->max_ioqs = 16;
    t->mqes = 1024;
    t->oncs = NVMEX_ONCS_SUPPORTED;
    t->vwc = true;
    t->sgl = true;
    t->ralbas = true;
    t->rate_limit = true;
    t->nn = 16;
    t->temperature = 303;
    t->wctemp = 343;
    t->cctemp = 358;
}

static int nvmex_parse_u64(const char *field, const char *value, uint64_t max,
                           uint64_t *out, char *err, size_t errlen)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(value, &end, 0);
    if (errno || end == value || *end || value[0] == '-' || v > max) {
        return nvmex_fail(err, errlen, "%s: '%s' is not a number in 0..%llu",
                          field, value, (unsigned long long)max);
    }
    *out = v;
    return 0;
}

static int nvmex_parse_bool(const char *field, const char *value, bool *out,
                            char *err, size_t errlen)
{
    static const char *const yes[] = { "on", "true", "yes", "1", NULL };
    static const char *const no[] = { "off", "false", "no", "0", NULL };

    for (int i = 0; yes[i]; i++) {
        if (!strcasecmp(value, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(value, no[i])) {
            *out = false;
            return 0;
        }
    }
    return nvmex_fail(err, errlen, "%s: '%s' is not a boolean", field, value);
}

/* Identify strings are printable ASCII, space padded, never terminated */
static int nvmex_parse_ascii(const char *field, const char *value, char *out,
                             size_t size, char *err, size_t errlen)
{
    size_t len = strlen(value);

    if (len == 0 || len >= size) {
        return nvmex_fail(err, errlen, "%s: length %zu not in 1..%zu", field,
                          len, size - 1);
    }
    for (size_t i = 0; i < len; i++) {
        if (value[i] < 0x20 || value[i] > 0x7e) {
            return nvmex_fail(err, errlen,
                              "%s: byte %zu is not printable ASCII",
                              field, i);
        }
    }
    memcpy(out, value, len + 1);
    return 0;
}

/* Hex identifiers; '-' and ':' separators are ignored (UUID form) */
static int nvmex_parse_hex(const char *field, const char *value, uint8_t *out,
                           size_t n, char *err, size_t errlen)
{
    size_t got = 0;
    int half = -1;

    for (const char *p = value; *p; p++) {
        int d;

        if (*p == '-' || *p == ':') {
            continue;
        }
        if (*p >= '0' && *p <= '9') {
            d = *p - '0';
        } else if ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f') {
            d = (*p | 0x20) - 'a' + 10;
        } else {
            return nvmex_fail(err, errlen, "%s: '%c' is not a hex digit",
                              field, *p);
        }
        if (half < 0) {
            half = d;
        } else {
            if (got == n) {
                break;
            }
            out[got++] = half << 4 | d;
            half = -1;
        }
    }
    if (got != n || half >= 0) {
        return nvmex_fail(err, errlen, "%s: need exactly %zu hex bytes", field,
                          n);
    }
    return 0;
}

int nvmex_template_set(NvmexTemplate *t, const char *f, const char *v,
                       char *err, size_t errlen)
{
    uint64_t x;

#define NVMEX_SET_NUM(name, member, max)                                \
    if (nvmex_parse_u64(f, v, max, &x, err, errlen)) {                  \
        return -1;                                                      \
    }                                                                   \
    t->member = x;                                                      \
    return 0;
#define NVMEX_SET_BOOL(name, member, max)                               \
    return nvmex_parse_bool(f, v, &t->member, err, errlen);
#define NVMEX_SET_STR(name, member, max)                                \
    return nvmex_parse_ascii(f, v, t->member, sizeof(t->member), err, errlen);
#define NVMEX_SET(field, prop, kind, member, max)                       \
    if (!strcmp(f, field)) {                                            \
        NVMEX_SET_##kind(field, member, max)                            \
    }
    NVMEX_TEMPLATE_FIELDS(NVMEX_SET)
#undef NVMEX_SET
#undef NVMEX_SET_NUM
#undef NVMEX_SET_BOOL
#undef NVMEX_SET_STR
    return nvmex_fail(err, errlen, "%s: unknown template field", f);
}

static int nvmex_parse_lbafs(NvmexNsTemplate *n, const char *v, char *err,
                             size_t errlen)
{
    const char *p = v;
    uint8_t count = 0;

    while (*p) {
        char *end;
        unsigned long long bs;

        errno = 0;
        bs = strtoull(p, &end, 0);
        if (errno || end == p || (*end && *end != ',')) {
            return nvmex_fail(err, errlen, "lba-formats: '%s' is not a list of "
                              "block sizes", v);
        }
        if (bs < 512 || bs > 65536 || (bs & (bs - 1))) {
            return nvmex_fail(err, errlen,
                              "lba-formats[%u]: %llu is not a power "
                              "of two in 512..65536", count, bs);
        }
        if (count == NVMEX_MAX_LBAF) {
            return nvmex_fail(err, errlen, "lba-formats: more than %d formats",
                              NVMEX_MAX_LBAF);
        }
        n->lbaf[count].lbads = __builtin_ctzll(bs);
        n->lbaf[count].ms = 0;
        count++;
        p = *end ? end + 1 : end;
    }
    if (!count) {
        return nvmex_fail(err, errlen, "lba-formats: empty");
    }
    n->nlbaf = count;
    return 0;
}

int nvmex_ns_template_set(NvmexNsTemplate *n, const char *f, const char *v,
                          char *err, size_t errlen)
{
    uint64_t x;

#define NVMEX_NS_SET_U32(member, arg)                                   \
    if (nvmex_parse_u64(f, v, 0xffffffff, &x, err, errlen)) {           \
        return -1;                                                      \
    }                                                                   \
    n->member = x;                                                      \
    return 0;
#define NVMEX_NS_SET_U64(member, arg)                                   \
    return nvmex_parse_u64(f, v, UINT64_MAX, &n->member, err, errlen);
#define NVMEX_NS_SET_FLBAS(member, arg)                                 \
    if (nvmex_parse_u64(f, v, 0xffffffff, &x, err, errlen)) {           \
        return -1;                                                      \
    }                                                                   \
    if (x >= NVMEX_MAX_LBAF) {                                          \
        return nvmex_fail(err, errlen, "flbas: %llu is not below %d",   \
                          (unsigned long long)x, NVMEX_MAX_LBAF);       \
    }                                                                   \
    n->member = x;                                                      \
    return 0;
#define NVMEX_NS_SET_LBAFS(member, arg)                                 \
    return nvmex_parse_lbafs(n, v, err, errlen);
#define NVMEX_NS_SET_HEX(member, arg)                                   \
    return nvmex_parse_hex(f, v, n->member, arg, err, errlen);
#define NVMEX_NS_SET(field, prop, kind, member, arg)                    \
    if (!strcmp(f, field)) {                                            \
        NVMEX_NS_SET_##kind(member, arg)                                \
    }
    NVMEX_NS_TEMPLATE_FIELDS(NVMEX_NS_SET)
#undef NVMEX_NS_SET
#undef NVMEX_NS_SET_U32
#undef NVMEX_NS_SET_U64
#undef NVMEX_NS_SET_FLBAS
#undef NVMEX_NS_SET_LBAFS
#undef NVMEX_NS_SET_HEX
    return nvmex_fail(err, errlen, "%s: unknown namespace template field", f);
}

NvmexNsTemplate *nvmex_template_ns(NvmexTemplate *t, uint32_t nsid,
                                   bool create)
{
    for (int i = 0; i < t->nns; i++) {
        if (t->ns[i].nsid == nsid) {
            return &t->ns[i];
        }
    }
    if (!create || t->nns == NVMEX_MAX_NS) {
        return NULL;
    }
    nvmex_ns_template_default(&t->ns[t->nns], nsid);
    return &t->ns[t->nns++];
}

static bool nvmex_all_zero(const uint8_t *p, size_t n)
{
    while (n--) {
        if (*p++) {
            return false;
        }
    }
    return true;
}

int nvmex_template_check(const NvmexTemplate *t, char *err, size_t errlen)
{
    if (t->vid == 0 || t->vid == 0xffff) {
        return nvmex_fail(err, errlen, "vid: 0x%04x is not a PCI vendor id",
                          t->vid);
    }
    if (strncmp(t->subnqn, "nqn.", 4)) {
        return nvmex_fail(err, errlen, "subnqn: must start with 'nqn.'");
    }
    if (t->mdts < 1 || t->mdts > 10) {
        return nvmex_fail(err, errlen, "mdts: %u not in 1..10 (4 KiB to 4 MiB)",
                          t->mdts);
    }
    if (t->max_ioqs < 1 || t->max_ioqs > NVMEX_MAX_IOQS) {
        return nvmex_fail(err, errlen, "max-ioqs: %u not in 1..%d", t->max_ioqs,
                          NVMEX_MAX_IOQS);
    }
    if (t->mqes < 2 || t->mqes > 4096) {
        return nvmex_fail(err, errlen, "mqes: %u not in 2..4096", t->mqes);
    }
    if (t->oncs & ~NVMEX_ONCS_SUPPORTED) {
        return nvmex_fail(err, errlen, "oncs: bits 0x%x are not implemented "
                          "(supported: 0x%x)", t->oncs & ~NVMEX_ONCS_SUPPORTED,
                          NVMEX_ONCS_SUPPORTED);
    }
    if (t->nn < 1 || t->nn > 1024) {
        return nvmex_fail(err, errlen, "nn: %u not in 1..1024", t->nn);
    }
    if (t->temperature == 0 || t->wctemp == 0 || t->cctemp < t->wctemp) {
        return nvmex_fail(err, errlen, "wctemp: temperature, wctemp and cctemp "
                          "must be non-zero with cctemp >= wctemp");
    }
    for (int i = 0; i < t->nns; i++) {
        const NvmexNsTemplate *n = &t->ns[i];

        if (n->nsid < 1 || n->nsid > t->nn) {
            return nvmex_fail(err, errlen,
                              "namespaces[%d].nsid: %u not in 1..nn "
                              "(%u)", i, n->nsid, t->nn);
        }
        for (int j = 0; j < i; j++) {
            if (t->ns[j].nsid == n->nsid) {
                return nvmex_fail(err, errlen,
                                  "namespaces[%d].nsid: %u used twice",
                                  i, n->nsid);
            }
            if (!nvmex_all_zero(n->nguid, 16) &&
                                !memcmp(n->nguid, t->ns[j].nguid, 16)) {
                return nvmex_fail(err, errlen,
                                  "namespaces[%d].nguid: not unique",
                                  i);
            }
        }
        if (n->nlbaf < 1 || n->flbas >= n->nlbaf) {
            return nvmex_fail(err, errlen,
                              "namespaces[%d].flbas: %u not below the "
                              "%u lba-formats", i, n->flbas, n->nlbaf);
        }
        if (t->ralbas && n->tlbaag == 0) {
            return nvmex_fail(err, errlen,
                              "namespaces[%d].tlbaag: must be non-zero "
                              "when ralbas is on", i);
        }
    }
    return 0;
}

int nvmex_ns_bind(const NvmexNsTemplate *n, const NvmexBacking *b,
                  NvmexNsGeometry *g, char *err, size_t errlen)
{
    uint32_t lba_size;
    uint64_t size;

    if (n->flbas >= n->nlbaf) {
        return nvmex_fail(err, errlen, "flbas: %u not below the %u lba-formats",
                          n->flbas, n->nlbaf);
    }
    for (int i = 0; i < n->nlbaf; i++) {
        if (n->lbaf[i].ms) {
            return nvmex_fail(err, errlen, "lba-formats[%d]: metadata is not "
                              "supported", i);
        }
        if ((1u << n->lbaf[i].lbads) < b->min_block) {
            return nvmex_fail(err, errlen,
                              "lba-formats[%d]: %u-byte blocks are "
                              "smaller than the backing's %u-byte minimum "
                              "I/O", i, 1u << n->lbaf[i].lbads,
                              b->min_block);
        }
    }
    lba_size = 1u << n->lbaf[n->flbas].lbads;
    size = n->size ? n->size : b->bytes - b->bytes % lba_size;
    if (size % lba_size) {
        return nvmex_fail(err, errlen, "size: %llu is not a multiple of the "
                          "%u-byte LBA format", (unsigned long long)size,
                          lba_size);
    }
    if (size > b->bytes) {
        return nvmex_fail(err, errlen,
                          "size: %llu bytes exceed the backing's %llu",
                          (unsigned long long)size,
                          (unsigned long long)b->bytes);
    }
    if (size == 0) {
        return nvmex_fail(err, errlen,
                          "size: the backing holds no whole %u-byte "
                          "block", lba_size);
    }
    g->nsid = n->nsid;
    g->lba_size = lba_size;
    g->lbads = n->lbaf[n->flbas].lbads;
    g->nsze = size / lba_size;
    return 0;
}
