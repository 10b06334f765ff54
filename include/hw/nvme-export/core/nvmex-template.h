/*
 * nvme-export: the exported-subsystem template
 *
 * A template is everything the guest may learn about the controller and
 * its namespaces: identity, capabilities, LBA formats and identifiers.
 * The controller builds every Identify structure and log page from a
 * template plus state the template defines, never from the host, so the
 * same template gives the same bytes on any backing (docs/nvme-export.rst).
 *
 * QEMU-free: the device glue feeds fields in by name (from qdev properties
 * or from the JSON template file) and binds namespaces to their backing.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NVME_EXPORT_NVMEX_TEMPLATE_H
#define HW_NVME_EXPORT_NVMEX_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NVMEX_MAX_NS    16
#define NVMEX_MAX_LBAF  16
#define NVMEX_MAX_IOQS  64

typedef struct NvmexLbaf {
    uint8_t lbads;              /* log2 of the block size */
    uint16_t ms;                /* metadata bytes; only 0 is implemented */
} NvmexLbaf;

typedef struct NvmexNsTemplate {
    uint32_t nsid;
    uint64_t size;              /* bytes; 0: the whole backing */
    uint8_t nlbaf;              /* number of formats (1-based) */
    NvmexLbaf lbaf[NVMEX_MAX_LBAF];
    uint8_t flbas;              /* format in use */
    uint8_t nguid[16];
    uint8_t eui64[8];
    uint8_t uuid[16];
    uint32_t tlbaag;            /* TP4165 granularity, in blocks */
} NvmexNsTemplate;

typedef struct NvmexTemplate {
    char id[64];
    uint16_t vid, did, ssvid, ssid;
    char sn[21], mn[41], fr[9];
    char subnqn[224];
    uint32_t oui;               /* IEEE OUI, 24 bits */
    uint16_t cntlid;
    uint8_t mdts;               /* log2 of max transfer in 4 KiB pages */
    uint16_t max_ioqs;          /* I/O SQ and CQ count offered */
    uint32_t mqes;              /* entries per queue (1-based) */
    uint16_t oncs;
    bool vwc;
    bool sgl;
    bool ralbas;                /* TP4165 tracked allocation reporting */
    bool rate_limit;            /* TP4176 feature 28h */
    uint32_t nn;                /* highest namespace id */
    uint16_t temperature;       /* composite temperature reported, K */
    uint16_t wctemp, cctemp;
    uint8_t nns;
    NvmexNsTemplate ns[NVMEX_MAX_NS];
} NvmexTemplate;

/* What a namespace's backing offers, and what the binding yields */
typedef struct NvmexBacking {
    uint64_t bytes;
    uint32_t min_block;         /* smallest I/O the backing accepts */
} NvmexBacking;

typedef struct NvmexNsGeometry {
    uint32_t nsid;
    uint32_t lba_size;
    uint8_t lbads;
    uint64_t nsze;              /* blocks */
} NvmexNsGeometry;

void nvmex_template_default(NvmexTemplate *t);
void nvmex_ns_template_default(NvmexNsTemplate *n, uint32_t nsid);

/*
 * Set one field by name from its text form.  Returns 0, or -1 with a
 * message naming the field in @err.
 */
int nvmex_template_set(NvmexTemplate *t, const char *field,
                       const char *value, char *err, size_t errlen);
int nvmex_ns_template_set(NvmexNsTemplate *n, const char *field,
                          const char *value, char *err, size_t errlen);

/* Find or add the namespace entry for @nsid; NULL when the table is full */
NvmexNsTemplate *nvmex_template_ns(NvmexTemplate *t, uint32_t nsid,
                                   bool create);

/* Whole-template consistency; -1 with the offending field in @err */
int nvmex_template_check(const NvmexTemplate *t, char *err, size_t errlen);

/*
 * Can @b honour namespace template @n?  Fills @g on success; on failure
 * -1 and a message naming the field (size, lba-formats, flbas).
 */
int nvmex_ns_bind(const NvmexNsTemplate *n, const NvmexBacking *b,
                  NvmexNsGeometry *g, char *err, size_t errlen);

/* The list of field names nvmex_template_set() accepts, for docs/tests */
extern const char *const nvmex_template_fields[];
extern const char *const nvmex_ns_template_fields[];

#endif
