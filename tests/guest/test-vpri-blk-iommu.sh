#!/bin/sh
# Real-guest test: vpri-blk under overcommit behind intel-iommu, so that
# the unmodified driver's DMA addresses are IOVAs (see
# test-vpri-blk-overcommit.py).
#
# SPDX-License-Identifier: GPL-2.0-or-later
exec "$(dirname "$0")/test-vpri-blk-overcommit.py" --iommu
