/*
 * nvme-export: namespaces - the built-in one and nvme-export-ns devices
 *
 * A namespace binds a block backend to a template namespace entry
 * (core/nvmex-template.c computes its geometry).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "block/block-io.h"
#include "block/graph-lock.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "system/block-backend.h"
#include "nvme-export-internal.h"
#include "trace.h"

static NvmeExport *nvmex_ctrl_of_bus(BusState *bus)
{
    return NVME_EXPORT(bus->parent);
}

bool nvmex_ns_attach(NvmeExport *c, NvmexNs *ns, char *const *props,
                     Error **errp)
{
    NvmexNsTemplate *nt;
    NvmexBacking b;
    char err[256];
    int64_t len;

    if (!ns->conf.blk) {
        error_setg(errp, "nvme-export: namespace %u needs drive=", ns->nsid);
        return false;
    }
    if (ns->nsid == 0 || ns->nsid > c->tmpl.nn ||
        ns->nsid > NVMEX_MAX_NSID) {
        error_setg(errp, "nsid: %u not in 1..%u (the template's nn)",
                   ns->nsid, c->tmpl.nn);
        return false;
    }
    if (c->ns[ns->nsid]) {
        error_setg(errp, "nsid: %u is already attached", ns->nsid);
        return false;
    }
    nt = nvmex_template_ns(&c->tmpl, ns->nsid, true);
    if (!nt) {
        error_setg(errp, "nsid: the template holds %d namespaces at most",
                   NVMEX_MAX_NS);
        return false;
    }
    for (int i = 0; props && nvmex_ns_template_fields[i]; i++) {
        if (props[i] && nvmex_ns_template_set(nt, nvmex_ns_template_fields[i],
                                              props[i], err, sizeof(err))) {
            error_setg(errp, "%s", err);
            return false;
        }
    }
    if (nvmex_template_check(&c->tmpl, err, sizeof(err))) {
        error_setg(errp, "template: %s", err);
        return false;
    }
    if (!blkconf_apply_backend_options(&ns->conf, false, false, errp)) {
        return false;
    }
    len = blk_getlength(ns->conf.blk);
    if (len < 0) {
        error_setg_errno(errp, -len, "nvme-export: cannot size the backing");
        return false;
    }
    b.bytes = len;
    b.min_block = MAX(blk_get_request_alignment(ns->conf.blk),
                      BDRV_SECTOR_SIZE);
    if (nvmex_ns_bind(nt, &b, &ns->geo, err, sizeof(err))) {
        error_setg(errp, "namespace %u: %s", ns->nsid, err);
        return false;
    }
    blk_set_enable_write_cache(ns->conf.blk, c->tmpl.vwc);
    ns->ctrl = c;
    c->ns[ns->nsid] = ns;
    nvmex_storage_attach(c, ns);
    return true;
}

void nvmex_ns_detach(NvmexNs *ns)
{
    nvmex_storage_detach(ns);
    if (ns->ctrl && ns->ctrl->ns[ns->nsid] == ns) {
        blk_drain(ns->conf.blk);
        ns->ctrl->ns[ns->nsid] = NULL;
    }
    ns->ctrl = NULL;
}

uint64_t nvmex_ns_allocated_blocks(NvmexNs *ns)
{
    BlockDriverState *bs = blk_bs(ns->conf.blk);
    int64_t off = 0, end = ns->geo.nsze << ns->geo.lbads;
    uint64_t bytes = 0;

    GRAPH_RDLOCK_GUARD_MAINLOOP();
    while (bs && off < end) {
        int64_t pnum;
        int ret = bdrv_block_status_above(bs, NULL, off, end - off, &pnum,
                                          NULL, NULL);

        if (ret < 0 || pnum <= 0) {
            break;
        }
        if ((ret & BDRV_BLOCK_DATA) && !(ret & BDRV_BLOCK_ZERO)) {
            bytes += pnum;
        }
        off += pnum;
    }
    return DIV_ROUND_UP(bytes, ns->geo.lba_size);
}

/* nvme-export-ns: one more namespace on a controller's bus */

static void nvmex_ns_realize(DeviceState *dev, Error **errp)
{
    NvmeExportNs *d = NVME_EXPORT_NS(dev);
    BusState *bus = qdev_get_parent_bus(dev);

    if (!bus) {
        error_setg(errp, "nvme-export-ns: needs an nvme-export controller");
        return;
    }
    nvmex_ns_attach(nvmex_ctrl_of_bus(bus), &d->ns, d->tmpl_props, errp);
}

static void nvmex_ns_unrealize(DeviceState *dev)
{
    nvmex_ns_detach(&NVME_EXPORT_NS(dev)->ns);
}

/*
 * One string property per namespace template field
 * (core/nvmex-template.h), except nsid, a number of the device's own
 */
#define NVMEX_NS_PROP_STRING(prop, member) \
    DEFINE_PROP_STRING(prop, NvmeExportNs, \
                       tmpl_props[NVMEX_NS_FIELD_##member]),
#define NVMEX_NS_PROP_OWN(prop, member)
#define NVMEX_NS_PROP(field, prop, kind, member, arg) \
    NVMEX_NS_PROP_##prop(field, member)

static const Property nvmex_ns_props[] = {
    DEFINE_PROP_DRIVE("drive", NvmeExportNs, ns.conf.blk),
    DEFINE_PROP_UINT32("nsid", NvmeExportNs, ns.nsid, 0),
    NVMEX_NS_TEMPLATE_FIELDS(NVMEX_NS_PROP)
};

static void nvmex_ns_class_init(ObjectClass *oc, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);

    dc->bus_type = TYPE_NVME_EXPORT_BUS;
    dc->realize = nvmex_ns_realize;
    dc->unrealize = nvmex_ns_unrealize;
    dc->desc = "Namespace of an nvme-export controller";
    device_class_set_props(dc, nvmex_ns_props);
    set_bit(DEVICE_CATEGORY_STORAGE, dc->categories);
}

static const TypeInfo nvmex_ns_info = {
    .name = TYPE_NVME_EXPORT_NS,
    .parent = TYPE_DEVICE,
    .instance_size = sizeof(NvmeExportNs),
    .class_init = nvmex_ns_class_init,
};

static const TypeInfo nvmex_bus_info = {
    .name = TYPE_NVME_EXPORT_BUS,
    .parent = TYPE_BUS,
    .instance_size = sizeof(NvmexBus),
};

static void nvmex_ns_register_types(void)
{
    type_register_static(&nvmex_bus_info);
    type_register_static(&nvmex_ns_info);
}

type_init(nvmex_ns_register_types)
