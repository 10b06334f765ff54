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
    /*
     * Not a template field: set by the nvme-export-mgmt device, whose
     * controller is a TP4159 migration-management controller (OACS bit
     * 11, the TP4159 Identify fields and commands).
     */
    bool hmlms;
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

/*
 * The template's fields, one row each; the parser, the nvme-export and
 * nvme-export-ns device properties and the field lists below are all
 * generated from these rows, so they cannot drift apart.
 *
 * Controller: X(field, property, kind, member, max)
 *   field     name in the template file and for nvmex_template_set()
 *   property  the nvme-export property that sets it (a string property,
 *             parsed like the file's value)
 *   kind      NUM (an integer in 0..max), BOOL or STR (printable ASCII)
 */
#define NVMEX_TEMPLATE_FIELDS(X) \
    X("id", "template-id", STR, id, 0) \
    X("vid", "vid", NUM, vid, 0xffff) \
    X("did", "did", NUM, did, 0xffff) \
    X("ssvid", "ssvid", NUM, ssvid, 0xffff) \
    X("ssid", "ssid", NUM, ssid, 0xffff) \
    X("sn", "sn", STR, sn, 0) \
    X("mn", "mn", STR, mn, 0) \
    X("fr", "fr", STR, fr, 0) \
    X("subnqn", "subnqn", STR, subnqn, 0) \
    X("oui", "oui", NUM, oui, 0xffffff) \
    X("cntlid", "cntlid", NUM, cntlid, 0xffef) \
    X("mdts", "mdts", NUM, mdts, 0xff) \
    X("max-ioqs", "max-ioqs", NUM, max_ioqs, 0xffff) \
    X("mqes", "mqes", NUM, mqes, 65536) \
    X("oncs", "oncs", NUM, oncs, 0xffff) \
    X("vwc", "vwc", BOOL, vwc, 0) \
    X("sgl", "sgl", BOOL, sgl, 0) \
    X("ralbas", "ralbas", BOOL, ralbas, 0) \
    X("rate-limit", "rate-limit", BOOL, rate_limit, 0) \
    X("nn", "nn", NUM, nn, 0xffffffff) \
    X("temperature", "temperature", NUM, temperature, 0xffff) \
    X("wctemp", "wctemp", NUM, wctemp, 0xffff) \
    X("cctemp", "cctemp", NUM, cctemp, 0xffff)

/*
 * Namespace: X(field, property, kind, member, arg)
 *   property  STRING: an nvme-export-ns string property of that name;
 *             OWN: the device has its own typed property (nsid)
 *   kind      U32 / U64 (integers), FLBAS (below NVMEX_MAX_LBAF),
 *             LBAFS (a list of block sizes), HEX (arg bytes in hex)
 */
#define NVMEX_NS_TEMPLATE_FIELDS(X) \
    X("nsid", OWN, U32, nsid, 0) \
    X("size", STRING, U64, size, 0) \
    X("lba-formats", STRING, LBAFS, lbaf, 0) \
    X("flbas", STRING, FLBAS, flbas, 0) \
    X("nguid", STRING, HEX, nguid, 16) \
    X("eui64", STRING, HEX, eui64, 8) \
    X("uuid", STRING, HEX, uuid, 16) \
    X("tlbaag", STRING, U32, tlbaag, 0)

/* Field indexes: NVMEX_TMPL_FIELD_<member>, NVMEX_NS_FIELD_<member> */
#define NVMEX_TMPL_FIELD_ENUM(field, prop, kind, member, arg) \
    NVMEX_TMPL_FIELD_##member,
enum {
    NVMEX_TEMPLATE_FIELDS(NVMEX_TMPL_FIELD_ENUM)
    NVMEX_TMPL_NFIELDS
};
#undef NVMEX_TMPL_FIELD_ENUM
#define NVMEX_NS_FIELD_ENUM(field, prop, kind, member, arg) \
    NVMEX_NS_FIELD_##member,
enum {
    NVMEX_NS_TEMPLATE_FIELDS(NVMEX_NS_FIELD_ENUM)
    NVMEX_NS_NFIELDS
};
#undef NVMEX_NS_FIELD_ENUM

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

/*
 * The field names nvmex_template_set() / nvmex_ns_template_set() accept,
 * NULL-terminated, in row order (index NVMEX_TMPL_FIELD_<member>)
 */
extern const char *const nvmex_template_fields[];
extern const char *const nvmex_ns_template_fields[];

#endif
