/*
 * nvme-export: the template file and properties, into an NvmexTemplate
 *
 * The JSON file is parsed by QEMU's JSON parser; each value is handed
 * as text to the core parser (core/nvmex-template.c), like a property.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qobject/qbool.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "qobject/qstring.h"
#include "nvme-export-internal.h"
#include "trace.h"

/* ------------------------------------------------------------------ */
/* Template loading                                                    */

static bool nvmex_qobj_to_text(QObject *o, char **out)
{
    switch (qobject_type(o)) {
    case QTYPE_QSTRING:
        *out = g_strdup(qstring_get_str(qobject_to(QString, o)));
        return true;
    case QTYPE_QBOOL:
        *out = g_strdup(qbool_get_bool(qobject_to(QBool, o)) ? "on" : "off");
        return true;
    case QTYPE_QNUM:
        *out = qnum_to_string(qobject_to(QNum, o));
        return true;
    case QTYPE_QLIST: {
        /* Lists of numbers: the lba-formats block sizes */
        GString *s = g_string_new("");
        QListEntry *e;

        QLIST_FOREACH_ENTRY(qobject_to(QList, o), e) {
            QNum *n = qobject_to(QNum, qlist_entry_obj(e));

            if (!n) {
                g_string_free(s, true);
                return false;
            }
            g_autofree char *t = qnum_to_string(n);
            g_string_append_printf(s, "%s%s", s->len ? "," : "", t);
        }
        *out = g_string_free(s, false);
        return true;
    }
    default:
        return false;
    }
}

static bool nvmex_load_ns_entry(NvmeExport *c, int idx, QDict *d, Error **errp)
{
    QObject *id = qdict_get(d, "nsid");
    NvmexNsTemplate *n;
    const QDictEntry *e;
    char err[256];

    if (!id || qobject_type(id) != QTYPE_QNUM) {
        error_setg(errp, "template: namespaces[%d].nsid: missing or not a "
                   "number", idx);
        return false;
    }
    n = nvmex_template_ns(&c->tmpl, qnum_get_uint(qobject_to(QNum, id)),
                          true);
    if (!n) {
        error_setg(errp, "template: namespaces[%d]: more than %d namespaces",
                   idx, NVMEX_MAX_NS);
        return false;
    }
    for (e = qdict_first(d); e; e = qdict_next(d, e)) {
        g_autofree char *v = NULL;

        if (!nvmex_qobj_to_text(qdict_entry_value(e), &v)) {
            error_setg(errp, "template: namespaces[%d].%s: unsupported "
                       "value type", idx, qdict_entry_key(e));
            return false;
        }
        if (nvmex_ns_template_set(n, qdict_entry_key(e), v, err,
                                  sizeof(err))) {
            error_setg(errp, "template: namespaces[%d].%s", idx, err);
            return false;
        }
    }
    return true;
}

static bool nvmex_load_template(NvmeExport *c, const char *path, Error **errp)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) gerr = NULL;
    Error *local = NULL;
    QObject *obj;
    QDict *d;
    const QDictEntry *e;
    char err[256];
    bool ok = false;

    if (!g_file_get_contents(path, &text, NULL, &gerr)) {
        error_setg(errp, "template: %s", gerr->message);
        return false;
    }
    obj = qobject_from_json(text, &local);
    if (!obj) {
        error_propagate_prepend(errp, local, "template %s: ", path);
        return false;
    }
    d = qobject_to(QDict, obj);
    if (!d) {
        error_setg(errp, "template %s: not a JSON object", path);
        goto out;
    }
    for (e = qdict_first(d); e; e = qdict_next(d, e)) {
        const char *key = qdict_entry_key(e);
        QObject *val = qdict_entry_value(e);
        g_autofree char *v = NULL;

        if (!strcmp(key, "namespaces")) {
            QList *l = qobject_to(QList, val);
            QListEntry *le;
            int i = 0;

            if (!l) {
                error_setg(errp, "template: namespaces: not a list");
                goto out;
            }
            QLIST_FOREACH_ENTRY(l, le) {
                QDict *nd = qobject_to(QDict, qlist_entry_obj(le));

                if (!nd) {
                    error_setg(errp, "template: namespaces[%d]: not an "
                               "object", i);
                    goto out;
                }
                if (!nvmex_load_ns_entry(c, i++, nd, errp)) {
                    goto out;
                }
            }
            continue;
        }
        if (!nvmex_qobj_to_text(val, &v)) {
            error_setg(errp, "template: %s: unsupported value type", key);
            goto out;
        }
        if (nvmex_template_set(&c->tmpl, key, v, err, sizeof(err))) {
            error_setg(errp, "template: %s", err);
            goto out;
        }
    }
    ok = true;
out:
    qobject_unref(obj);
    return ok;
}

bool nvmex_ctrl_template(NvmeExport *c, Error **errp)
{
    char err[256];

    nvmex_template_default(&c->tmpl);
    if (c->template_path && !nvmex_load_template(c, c->template_path, errp)) {
        return false;
    }
    for (int i = 0; nvmex_template_fields[i]; i++) {
        if (c->tmpl_props[i] &&
            nvmex_template_set(&c->tmpl, nvmex_template_fields[i],
                               c->tmpl_props[i], err, sizeof(err))) {
            error_setg(errp, "%s", err);
            return false;
        }
    }
    if (nvmex_template_check(&c->tmpl, err, sizeof(err))) {
        error_setg(errp, "template: %s", err);
        return false;
    }
    return true;
}
