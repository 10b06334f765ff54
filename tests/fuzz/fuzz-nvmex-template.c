/*
 * libFuzzer harness: the nvme-export template fields
 * (hw/nvme-export/core/nvmex-template.c)
 *
 * The glue turns the JSON template file (parsed by QEMU's own JSON parser)
 * and the qdev properties into "field = text" pairs and feeds them to
 * nvmex_template_set() / nvmex_ns_template_set(); this harness feeds the
 * same pairs straight from the input, one per line ("field=value" for the
 * controller, "nsN.field=value" for namespace N), then checks the template
 * and binds every namespace to a fuzzed backing.  Checked:
 *
 * - a refused field returns -1 with a NUL-terminated message that names
 *   the field, written only inside the caller's buffer (of fuzzed size,
 *   including 0), and leaves a controller template unchanged;
 * - an accepted text field holds exactly the text, still terminated;
 * - nvmex_template_check() passes only templates within the documented
 *   ranges (docs/nvme-export.rst), and nvmex_ns_bind() only geometries
 *   the backing can hold.
 *
 * The template core allocates nothing; LeakSanitizer, on in every run,
 * would report it if that changed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "hw/nvme-export/core/nvmex-spec.h"
#include "hw/nvme-export/core/nvmex-template.h"

#define FUZZ_LINE_MAX 512

/* The message names the field it is about (when the field fits) */
static void fuzz_check_err(const char *field, const char *err, size_t errlen)
{
    size_t n;

    if (!errlen) {
        return;
    }
    n = strnlen(err, errlen);
    FUZZ_ASSERT(n < errlen);                  /* terminated inside */
    if (strlen(field) + 1 < errlen) {
        FUZZ_ASSERT(!strncmp(err, field, strlen(field)));
    } else {
        FUZZ_ASSERT(n == errlen - 1);         /* truncated, not empty */
    }
}

static void fuzz_check_strings(const NvmexTemplate *t)
{
    FUZZ_ASSERT(strnlen(t->id, sizeof(t->id)) < sizeof(t->id));
    FUZZ_ASSERT(strnlen(t->sn, sizeof(t->sn)) < sizeof(t->sn));
    FUZZ_ASSERT(strnlen(t->mn, sizeof(t->mn)) < sizeof(t->mn));
    FUZZ_ASSERT(strnlen(t->fr, sizeof(t->fr)) < sizeof(t->fr));
    FUZZ_ASSERT(strnlen(t->subnqn, sizeof(t->subnqn)) < sizeof(t->subnqn));
}

static const char *fuzz_text_member(const NvmexTemplate *t, const char *f)
{
    if (!strcmp(f, "id")) {
        return t->id;
    } else if (!strcmp(f, "sn")) {
        return t->sn;
    } else if (!strcmp(f, "mn")) {
        return t->mn;
    } else if (!strcmp(f, "fr")) {
        return t->fr;
    } else if (!strcmp(f, "subnqn")) {
        return t->subnqn;
    }
    return NULL;
}

static void fuzz_check_valid(const NvmexTemplate *t)
{
    FUZZ_ASSERT(t->vid != 0 && t->vid != 0xffff);
    FUZZ_ASSERT(!strncmp(t->subnqn, "nqn.", 4));
    FUZZ_ASSERT(t->mdts >= 1 && t->mdts <= 10);
    FUZZ_ASSERT(t->max_ioqs >= 1 && t->max_ioqs <= NVMEX_MAX_IOQS);
    FUZZ_ASSERT(t->mqes >= 2 && t->mqes <= 4096);
    FUZZ_ASSERT(!(t->oncs & ~NVMEX_ONCS_SUPPORTED));
    FUZZ_ASSERT(t->nn >= 1 && t->nn <= 1024);
    FUZZ_ASSERT(t->cctemp >= t->wctemp && t->wctemp && t->temperature);
    FUZZ_ASSERT(t->nns <= NVMEX_MAX_NS);
    for (int i = 0; i < t->nns; i++) {
        const NvmexNsTemplate *n = &t->ns[i];

        FUZZ_ASSERT(n->nsid >= 1 && n->nsid <= t->nn);
        FUZZ_ASSERT(n->nlbaf >= 1 && n->nlbaf <= NVMEX_MAX_LBAF);
        FUZZ_ASSERT(n->flbas < n->nlbaf);
        FUZZ_ASSERT(!t->ralbas || n->tlbaag);
        for (int j = 0; j < i; j++) {
            FUZZ_ASSERT(t->ns[j].nsid != n->nsid);
        }
    }
}

static void fuzz_check_bind(const NvmexNsTemplate *n, const NvmexBacking *b)
{
    NvmexNsGeometry g;
    char err[128];

    if (nvmex_ns_bind(n, b, &g, err, sizeof(err))) {
        FUZZ_ASSERT(strnlen(err, sizeof(err)) < sizeof(err) && err[0]);
        return;
    }
    FUZZ_ASSERT(g.nsid == n->nsid);
    FUZZ_ASSERT(g.lba_size == 1u << g.lbads);
    FUZZ_ASSERT(g.lbads == n->lbaf[n->flbas].lbads);
    FUZZ_ASSERT(g.lba_size >= b->min_block);
    FUZZ_ASSERT(g.nsze >= 1);
    FUZZ_ASSERT(g.nsze <= b->bytes / g.lba_size);
    if (n->size) {
        FUZZ_ASSERT(g.nsze * g.lba_size == n->size);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: 12 header bytes (le16 error buffer size, le64 backing bytes,
 * le16 backing minimum block), then the lines.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    NvmexTemplate t, before;
    NvmexBacking b;
    size_t errlen, pos;
    char line[FUZZ_LINE_MAX + 1];
    char *err;

    if (size < 12) {
        return 0;
    }
    errlen = fuzz_ld16(data) % 300;
    b.bytes = fuzz_ld64(data + 2);
    b.min_block = fuzz_ld16(data + 10);
    /* Exactly errlen bytes: any write past them is a sanitizer report */
    err = malloc(errlen ? errlen : 1);
    nvmex_template_default(&t);
    FUZZ_ASSERT(nvmex_template_check(&t, NULL, 0) == 0);

    for (pos = 12; pos < size;) {
        size_t n = 0;
        char *eq, *field, *value;
        int r;

        while (pos < size && data[pos] != '\n' && n < FUZZ_LINE_MAX) {
            line[n++] = (char)data[pos++];
        }
        pos++;                          /* the newline, or a cut-off byte */
        line[n] = '\0';
        eq = strchr(line, '=');
        if (!eq) {
            continue;
        }
        *eq = '\0';
        field = line;
        value = eq + 1;
        if (!strncmp(field, "ns", 2) && field[2] >= '0' && field[2] <= '9' &&
            field[3] == '.') {
            NvmexNsTemplate *ns = nvmex_template_ns(&t, field[2] - '0' + 1,
                                                    true);

            if (!ns) {
                FUZZ_ASSERT(t.nns == NVMEX_MAX_NS);
                continue;
            }
            r = nvmex_ns_template_set(ns, field + 4, value, err, errlen);
            if (r) {
                FUZZ_ASSERT(r == -1);
                fuzz_check_err(field + 4, err, errlen);
            }
            FUZZ_ASSERT(ns->nlbaf >= 1 && ns->nlbaf <= NVMEX_MAX_LBAF);
            FUZZ_ASSERT(ns->flbas < NVMEX_MAX_LBAF);
            continue;
        }
        before = t;
        r = nvmex_template_set(&t, field, value, err, errlen);
        if (r) {
            FUZZ_ASSERT(r == -1);
            fuzz_check_err(field, err, errlen);
            FUZZ_ASSERT(!memcmp(&before, &t, sizeof(t)));
        } else if (fuzz_text_member(&t, field)) {
            FUZZ_ASSERT(!strcmp(fuzz_text_member(&t, field), value));
        }
        fuzz_check_strings(&t);
    }

    if (nvmex_template_check(&t, err, errlen) == 0) {
        fuzz_check_valid(&t);
    } else if (errlen) {
        FUZZ_ASSERT(strnlen(err, errlen) < errlen);
    }
    for (int i = 0; i < t.nns; i++) {
        fuzz_check_bind(&t.ns[i], &b);
    }
    free(err);
    return 0;
}
