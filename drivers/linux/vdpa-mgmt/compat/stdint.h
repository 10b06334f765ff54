/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vdpa-proto.h, the device's one definition of its wire format, is plain
 * C99 and includes <stdint.h>; in the kernel the fixed-width types come
 * from <linux/types.h>, which defines uint8_t .. uint64_t.
 */
#ifndef VDPA_MGMT_COMPAT_STDINT_H
#define VDPA_MGMT_COMPAT_STDINT_H
#include <linux/types.h>
#endif
