/*
 * Field map and mutations of a saved migration stream (iolab's mutator).
 *
 * Stream facts relied on (QEMU 10.0 savevm.c / vmstate.c):
 * - a non-iterable section is: 0x04 (SECTION_FULL), be32 section id,
 *   u8 idstr length, idstr, be32 instance id, be32 version id, the
 *   fields, then 0x7e (SECTION_FOOTER) and the section id again;
 * - after the last section: 0x00 (EOF), 0x06 (VMDESCRIPTION), be32
 *   length and that many bytes of JSON: { "page_size", "devices": [
 *   { "name": idstr, "instance_id", "vmsd_name", "version", "fields":
 *   [...], "subsections": [...] } ] };
 * - a field entry has "name", "type", "size" (bytes written for it; for
 *   an "array_len" entry, the bytes of its first element, all elements
 *   having that size), "index" for arrays described element by element,
 *   and "struct" (a nested description) for structures;
 * - a subsection is written after the fields as 0x05, u8 name length,
 *   name, be32 version, then its own fields;
 * - integers are big-endian.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qjson.h"
#include "qapi/error.h"
#include "mig-stream.h"

#define SECTION_FULL        0x04
#define SECTION_FOOTER      0x7e
#define VMDESCRIPTION       0x06

typedef struct MapCtx {
    MigStream *s;
    size_t limit;           /* no field may reach beyond this offset */
    GHashTable *groups;     /* set of group names already listed */
} MapCtx;

static void mig_field_free(gpointer p)
{
    MigField *f = p;

    g_free(f->path);
    g_free(f->group);
    g_free(f->type);
    g_free(f);
}

/* "a.b[3].c[12]" -> "a.b.c": the field without element indices */
static char *mig_group_of(const char *path)
{
    GString *g = g_string_new(NULL);

    for (const char *p = path; *p; p++) {
        if (*p == '[') {
            while (*p && *p != ']') {
                p++;
            }
            if (!*p) {
                break;
            }
            continue;
        }
        g_string_append_c(g, *p);
    }
    return g_string_free(g, false);
}

static void mig_add_leaf(MapCtx *c, const char *path, const char *type,
                         size_t offset, size_t size)
{
    MigField *f = g_new0(MigField, 1);

    f->path = g_strdup(path);
    f->group = mig_group_of(path);
    f->type = g_strdup(type);
    f->offset = offset;
    f->size = size;
    f->integer = size == 1 || size == 2 || size == 4 || size == 8;
    g_ptr_array_add(c->s->fields, f);
    if (!g_hash_table_contains(c->groups, f->group)) {
        g_hash_table_add(c->groups, g_strdup(f->group));
        g_ptr_array_add(c->s->groups, g_strdup(f->group));
    }
}

/*
 * Lay out the fields and subsections of description @desc from *@off,
 * naming leaves @prefix + field name.  Advances *@off past them.
 */
static bool mig_walk(MapCtx *c, QDict *desc, const char *prefix, size_t *off,
                     GError **err)
{
    QList *fields = qdict_haskey(desc, "fields") ?
                    qdict_get_qlist(desc, "fields") : NULL;
    QList *subs = qdict_haskey(desc, "subsections") ?
                  qdict_get_qlist(desc, "subsections") : NULL;
    QListEntry *e;

    if (fields) {
        QLIST_FOREACH_ENTRY(fields, e) {
            QDict *f = qobject_to(QDict, qlist_entry_obj(e));
            const char *name, *type;
            int64_t size, n = 1;
            bool array;
            g_autofree char *base = NULL;

            if (!f || !qdict_haskey(f, "name") || !qdict_haskey(f, "size")) {
                g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                            "vmdesc: a field of %s has no name or size",
                            prefix);
                return false;
            }
            name = qdict_get_str(f, "name");
            type = qdict_get_try_str(f, "type") ?: "?";
            size = qdict_get_int(f, "size");
            array = qdict_haskey(f, "array_len");
            if (array) {
                n = qdict_get_int(f, "array_len");
            }
            if (qdict_haskey(f, "index")) {
                base = g_strdup_printf("%s%s[%" PRId64 "]", prefix, name,
                                       qdict_get_int(f, "index"));
            } else {
                base = g_strdup_printf("%s%s", prefix, name);
            }
            if (size < 0 || n < 0 || *off + size * n > c->limit) {
                g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                            "vmdesc: %s (%" PRId64 " x %" PRId64 " bytes) "
                            "runs past its section", base, n, size);
                return false;
            }
            for (int64_t i = 0; i < n; i++) {
                g_autofree char *path = array ?
                    g_strdup_printf("%s[%" PRId64 "]", base, i) :
                    g_strdup(base);
                size_t at = *off + i * size;

                if (qdict_haskey(f, "struct")) {
                    g_autofree char *sp = g_strdup_printf("%s.", path);
                    size_t end = at;

                    if (!mig_walk(c, qdict_get_qdict(f, "struct"), sp, &end,
                                  err)) {
                        return false;
                    }
                    if (end != at + size) {
                        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                                    "vmdesc: struct %s adds up to %zu "
                                    "bytes, not %" PRId64, path, end - at,
                                    size);
                        return false;
                    }
                } else if (size > 0) {
                    mig_add_leaf(c, path, type, at, size);
                }
            }
            *off += size * n;
        }
    }
    if (subs) {
        QLIST_FOREACH_ENTRY(subs, e) {
            QDict *sub = qobject_to(QDict, qlist_entry_obj(e));
            const char *vname = sub ? qdict_get_try_str(sub, "vmsd_name")
                                    : NULL;
            g_autofree char *sp = NULL;

            if (!vname) {
                g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                            "vmdesc: a subsection of %s has no name", prefix);
                return false;
            }
            /* 0x05, name length, name, be32 version */
            *off += 2 + strlen(vname) + 4;
            sp = g_strdup_printf("%s%s/", prefix, vname);
            if (!mig_walk(c, sub, sp, off, err)) {
                return false;
            }
        }
    }
    return true;
}

static uint32_t mig_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
}

/* Where the JSON description starts, or 0 when there is none */
static size_t mig_find_vmdesc(const MigStream *s, size_t *json_len)
{
    for (size_t pos = s->len >= 6 ? s->len - 6 : 0; pos > 0; pos--) {
        if (s->data[pos] == VMDESCRIPTION && s->data[pos - 1] == 0 &&
            s->data[pos + 5] == '{' &&
            mig_be32(s->data + pos + 1) == s->len - pos - 5) {
            *json_len = s->len - pos - 5;
            return pos + 5;
        }
    }
    return 0;
}

/*
 * Find the section @idstr/@instance and map its fields.  The section is
 * located by its header and confirmed by its footer where the
 * description says the fields end.
 */
static bool mig_map_section(MapCtx *c, QDict *dev, size_t stream_end,
                            GError **err)
{
    const char *idstr = qdict_get_str(dev, "name");
    uint32_t instance = qdict_get_int(dev, "instance_id");
    size_t idlen = strlen(idstr);
    g_autofree uint8_t *pat = g_malloc(1 + idlen + 4);
    g_autofree char *prefix = g_strdup_printf("%s:", idstr);

    pat[0] = idlen;
    memcpy(pat + 1, idstr, idlen);
    stl_be_p(pat + 1 + idlen, instance);

    for (size_t p = 5; p + 1 + idlen + 8 < stream_end; p++) {
        size_t off;
        uint32_t sid;
        guint before = c->s->fields->len;

        if (c->s->data[p] != pat[0] || c->s->data[p - 5] != SECTION_FULL ||
            memcmp(c->s->data + p, pat, 1 + idlen + 4) != 0) {
            continue;
        }
        sid = mig_be32(c->s->data + p - 4);
        off = p + 1 + idlen + 4 + 4;
        c->limit = stream_end;
        if (!mig_walk(c, dev, prefix, &off, err)) {
            return false;
        }
        if (off + 5 <= stream_end && c->s->data[off] == SECTION_FOOTER &&
            mig_be32(c->s->data + off + 1) == sid) {
            return true;
        }
        /* Not this occurrence: drop what it mapped and look further */
        g_ptr_array_set_size(c->s->fields, before);
    }
    g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                "section %s (instance %u) not found in the stream, or its "
                "size does not match its description", idstr, instance);
    return false;
}

/* How many slots of a round a group gets */
static unsigned mig_group_weight(const MigStream *s, const char *group)
{
    for (guint i = 0; i < s->fields->len; i++) {
        MigField *f = g_ptr_array_index(s->fields, i);

        if (!strcmp(f->group, group)) {
            if (!strcmp(f->type, "buffer") && !f->integer) {
                return CLAMP(f->size / 16, 1, 16);
            }
            return 1;
        }
    }
    return 1;
}

MigStream *mig_stream_map(const char *path, const char * const *suffixes,
                          GError **err)
{
    MigStream *s = g_new0(MigStream, 1);
    QObject *obj = NULL;
    g_autofree char *json = NULL;
    size_t json_at, json_len = 0;
    MapCtx c = { .s = s };
    QList *devices;
    QListEntry *e;
    QDict *top;
    gsize len;

    s->fields = g_ptr_array_new_with_free_func(mig_field_free);
    s->groups = g_ptr_array_new_with_free_func(g_free);
    s->slots = g_ptr_array_new();
    c.groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (!g_file_get_contents(path, (char **)&s->data, &len, err)) {
        goto fail;
    }
    s->len = len;
    if (s->len < 8 || mig_be32(s->data) != 0x5145564d) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s is not a QEMU migration stream", path);
        goto fail;
    }
    json_at = mig_find_vmdesc(s, &json_len);
    if (!json_at) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s has no vmdesc (a machine that suppresses it?)",
                    path);
        goto fail;
    }
    json = g_strndup((char *)s->data + json_at, json_len);
    obj = qobject_from_json(json, NULL);
    top = qobject_to(QDict, obj);
    if (!top || !qdict_haskey(top, "devices")) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: the vmdesc is not the JSON expected", path);
        goto fail;
    }
    devices = qdict_get_qlist(top, "devices");
    QLIST_FOREACH_ENTRY(devices, e) {
        QDict *dev = qobject_to(QDict, qlist_entry_obj(e));
        const char *name = dev ? qdict_get_try_str(dev, "name") : NULL;

        if (!name) {
            continue;
        }
        for (int i = 0; suffixes[i]; i++) {
            if (g_str_has_suffix(name, suffixes[i])) {
                if (!mig_map_section(&c, dev, json_at - 6, err)) {
                    goto fail;
                }
                break;
            }
        }
    }
    if (!s->fields->len) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                    "%s: no device section matches", path);
        goto fail;
    }
    for (guint i = 0; i < s->groups->len; i++) {
        char *g = g_ptr_array_index(s->groups, i);

        for (unsigned w = mig_group_weight(s, g); w > 0; w--) {
            g_ptr_array_add(s->slots, g);
        }
    }
    g_hash_table_destroy(c.groups);
    qobject_unref(obj);
    return s;

fail:
    g_hash_table_destroy(c.groups);
    qobject_unref(obj);
    mig_stream_free(s);
    return NULL;
}

void mig_stream_free(MigStream *s)
{
    if (s) {
        g_ptr_array_free(s->fields, true);
        g_ptr_array_free(s->slots, true);
        g_ptr_array_free(s->groups, true);
        g_free(s->data);
        g_free(s);
    }
}

/* splitmix64: a good 64-bit mix, so that (seed, index) pairs spread */
static uint64_t mig_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static const char *const mig_kind_names[MUT__COUNT] = {
    [MUT_BITFLIP] = "bit-flip",
    [MUT_ZERO] = "zero",
    [MUT_ONE] = "one",
    [MUT_MAX] = "max",
    [MUT_MAX_MINUS_1] = "max-1",
    [MUT_MIN_SIGNED] = "0x80..",
    [MUT_MAX_SIGNED] = "0x7f..",
    [MUT_SIGN_FLIP] = "sign-flip",
    [MUT_PLUS_1] = "+1",
    [MUT_MINUS_1] = "-1",
};

const char *mig_mut_kind_name(MigMutKind k)
{
    return k < MUT__COUNT ? mig_kind_names[k] : k == MUT_SET ? "set" : "?";
}

static uint64_t mig_get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void mig_put_be(uint8_t *p, size_t n, uint64_t v)
{
    for (size_t i = n; i-- > 0;) {
        p[i] = v & 0xff;
        v >>= 8;
    }
}

static uint64_t mig_apply_kind(MigMutKind k, uint64_t v, unsigned width,
                               unsigned bit)
{
    uint64_t mask = width == 64 ? ~0ull : (1ull << width) - 1;
    uint64_t top = 1ull << (width - 1);

    switch (k) {
    case MUT_BITFLIP:
        return v ^ (1ull << bit);
    case MUT_ZERO:
        return 0;
    case MUT_ONE:
        return 1;
    case MUT_MAX:
        return mask;
    case MUT_MAX_MINUS_1:
        return mask - 1;
    case MUT_MIN_SIGNED:
        return top;
    case MUT_MAX_SIGNED:
        return mask >> 1;
    case MUT_SIGN_FLIP:
        return v ^ top;
    case MUT_PLUS_1:
        return (v + 1) & mask;
    case MUT_MINUS_1:
        return (v - 1) & mask;
    default:
        g_assert_not_reached();
    }
}

/* Non-zero in the stream: state the source actually had */
static bool mig_field_live(const MigStream *s, const MigField *f)
{
    for (size_t i = 0; i < f->size; i++) {
        if (s->data[f->offset + i]) {
            return true;
        }
    }
    return false;
}

static uint64_t mig_get_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = n; i-- > 0;) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void mig_put_le(uint8_t *p, size_t n, uint64_t v)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = v & 0xff;
        v >>= 8;
    }
}

/* One edit of a field of @group, drawn from @r */
static void mig_edit_draw(const MigStream *s, const char *group, uint64_t r,
                          MigEdit *e)
{
    g_autoptr(GPtrArray) members = g_ptr_array_new();
    g_autoptr(GPtrArray) live = g_ptr_array_new();
    const MigField *f;
    unsigned width;
    uint64_t v;

    for (guint i = 0; i < s->fields->len; i++) {
        MigField *cand = g_ptr_array_index(s->fields, i);

        if (!strcmp(cand->group, group)) {
            g_ptr_array_add(members, cand);
            if (mig_field_live(s, cand)) {
                g_ptr_array_add(live, cand);
            }
        }
    }
    r = mig_mix(r);
    if ((r & 1) && live->len) {
        f = g_ptr_array_index(live, (r >> 1) % live->len);
    } else {
        f = g_ptr_array_index(members, (r >> 1) % members->len);
    }
    memset(e, 0, sizeof(*e));
    e->field = f;
    r = mig_mix(r);
    /* Bit flips and boundary values about equally often */
    e->kind = (r & 1) ? MUT_BITFLIP : 1 + (r >> 1) % (MUT__COUNT - 1);
    r = mig_mix(r);
    if (f->integer) {
        width = f->size * 8;
        v = mig_get_be(s->data + f->offset, f->size);
    } else {
        /* A byte, or an aligned LE word of 2, 4 or 8 bytes that fits */
        width = 8 << (r % 4);
        while (width / 8 > f->size) {
            width /= 2;
        }
        r = mig_mix(r);
        e->byte = (r % (f->size / (width / 8))) * (width / 8);
        e->width = width;
        r = mig_mix(r);
        v = mig_get_le(s->data + f->offset + e->byte, width / 8);
    }
    e->bit = r % width;
    e->before = v;
    e->after = mig_apply_kind(e->kind, v, width, e->bit);
    /* A boundary value equal to the value now is no mutation: go on */
    for (int k = 0; e->after == e->before && k < MUT__COUNT; k++) {
        e->kind = e->kind % (MUT__COUNT - 1) + 1;
        e->after = mig_apply_kind(e->kind, v, width, e->bit);
    }
}

/* Does @m edit @f already?  (Two edits of one field: the last would win) */
static bool mig_mutation_edits(const MigMutation *m, const MigField *f)
{
    for (unsigned i = 0; i < m->nedits; i++) {
        if (m->edit[i].field == f) {
            return true;
        }
    }
    return false;
}

void mig_mutation_draw(const MigStream *s, uint64_t seed, uint64_t index,
                       MigMutation *m)
{
    uint64_t r = mig_mix(seed * 0x100000001b3ull ^ mig_mix(index));
    const char *group = g_ptr_array_index(s->slots,
                                          (index + mig_mix(seed)) %
                                          s->slots->len);
    unsigned want = 1;

    memset(m, 0, sizeof(*m));
    mig_edit_draw(s, group, r, &m->edit[0]);
    m->nedits = 1;
    if (index < s->slots->len) {
        return;
    }
    /* 1 edit half of the time, 2 a quarter, 3 or 4 an eighth each */
    r = mig_mix(r ^ 0x5ca1ab1eull);
    while (want < MIG_MUTATION_MAX_EDITS && (r & 1)) {
        want++;
        r >>= 1;
    }
    for (unsigned tries = 0; m->nedits < want && tries < 4 * want;
         tries++) {
        MigEdit e;

        r = mig_mix(r + tries);
        group = g_ptr_array_index(s->slots, r % s->slots->len);
        mig_edit_draw(s, group, mig_mix(r), &e);
        if (!mig_mutation_edits(m, e.field)) {
            m->edit[m->nedits++] = e;
        }
    }
}

bool mig_mutation_set(const MigStream *s, const char *path_suffix,
                      uint64_t value, MigMutation *m)
{
    size_t n = strlen(path_suffix);

    for (guint i = 0; i < s->fields->len; i++) {
        const MigField *f = g_ptr_array_index(s->fields, i);
        size_t len = strlen(f->path);

        if (f->integer && len > n &&
            !strcmp(f->path + len - n, path_suffix) &&
            (f->path[len - n - 1] == ':' || f->path[len - n - 1] == '.')) {
            memset(m, 0, sizeof(*m));
            m->nedits = 1;
            m->edit[0].field = f;
            m->edit[0].kind = MUT_SET;
            m->edit[0].before = mig_get_be(s->data + f->offset, f->size);
            m->edit[0].after = value;
            return true;
        }
    }
    return false;
}

bool mig_mutation_write(const MigStream *s, MigMutation *m, const char *path,
                        GError **err)
{
    g_autofree uint8_t *copy = g_memdup2(s->data, s->len);

    for (unsigned i = 0; i < m->nedits; i++) {
        const MigEdit *e = &m->edit[i];
        const MigField *f = e->field;

        if (f->integer) {
            mig_put_be(copy + f->offset, f->size, e->after);
        } else {
            mig_put_le(copy + f->offset + e->byte, e->width / 8, e->after);
        }
    }
    return g_file_set_contents(path, (char *)copy, s->len, err);
}

static char *mig_edit_describe(const MigEdit *e)
{
    const MigField *f = e->field;
    g_autofree char *where = NULL;
    g_autofree char *bit = NULL;

    if (!f->size) {
        /* A whole stream replayed (MUTATOR_LOAD), or the control */
        return g_strdup(f->path);
    }
    where = f->integer ? g_strdup("") :
        g_strdup_printf(" byte %zu (le%u)", e->byte, e->width);
    bit = e->kind == MUT_BITFLIP ?
        g_strdup_printf(" %u", e->bit) : g_strdup("");

    return g_strdup_printf("%s (%s, %zu bytes)%s: 0x%" PRIx64 " -> 0x%"
                           PRIx64 " (%s%s)", f->path, f->type, f->size, where,
                           e->before, e->after, mig_mut_kind_name(e->kind),
                           bit);
}

char *mig_mutation_describe(const MigMutation *m)
{
    GString *out = g_string_new("");

    for (unsigned i = 0; i < m->nedits; i++) {
        g_autofree char *one = mig_edit_describe(&m->edit[i]);

        g_string_append_printf(out, "%s%s", i ? " + " : "", one);
    }
    return g_string_free(out, false);
}
