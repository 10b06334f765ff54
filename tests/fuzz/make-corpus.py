#!/usr/bin/env python3
"""Write the seed corpora of the libFuzzer harnesses (tests/fuzz/corpus/).

Each seed is a small, well-formed input in the layout its harness documents
at the top of its source, so that fuzzing starts from inputs that reach
deep into the core (valid chains, PRP lists, accepted admin commands ...)
rather than from random bytes.  Re-run after changing a harness's input
layout:  tests/fuzz/make-corpus.py

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, 'corpus')


def le16(v):
    return struct.pack('<H', v & 0xffff)


def le32(v):
    return struct.pack('<I', v & 0xffffffff)


def le64(v):
    return struct.pack('<Q', v & 0xffffffffffffffff)


def write(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(bytes(data))


class Mem:
    """A guest memory image, grown on demand."""

    def __init__(self):
        self.b = bytearray()

    def put(self, off, data):
        if len(self.b) < off + len(data):
            self.b.extend(bytes(off + len(data) - len(self.b)))
        self.b[off:off + len(data)] = data


# --- fuzz-virtq -------------------------------------------------------------

VQ_BASE = 0x100000
F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4
# ops: 0-3 pop, 4-5 push, 6 peek, 7 read_chain, 8 avail_count,
# 9 should_notify, 10 set_notification, 11 roundtrip, 12 load,
# 13 toggle page (page in bits 4-7), 14 enable, 15 reconfigure
OP_POP, OP_PUSH, OP_PEEK, OP_READ_CHAIN, OP_COUNT = 0, 4, 6, 7, 8
OP_NOTIFY, OP_SETNOTIF, OP_ROUNDTRIP, OP_LOAD, OP_TOGGLE = 9, 10, 11, 12, 13


def desc(addr, length, flags, nxt):
    return le64(addr) + le32(length) + le16(flags) + le16(nxt)


def saved_record(size, desc_a, avail_a, used_a, last_avail, used_idx,
                 flags=0x07):
    rec = le32(0x51545256) + bytes([1, flags]) + le16(size)
    rec += le64(desc_a) + le64(avail_a) + le64(used_a)
    rec += le16(last_avail) + le16(used_idx) + le16(0) + bytes([0, 0])
    assert len(rec) == 40
    return rec


def virtq_seed(name, log2size, features, present, ops, chains, avail_heads,
               avail_idx=None, extra=None):
    size = 1 << log2size
    d_off, a_off, u_off, t_off, data_off = 0x000, 0x200, 0x400, 0x800, 0xc00
    hdr = bytearray(104)
    hdr[0] = log2size
    hdr[3] = features
    hdr[4:6] = le16(d_off)
    hdr[6:8] = le16(a_off)
    hdr[8:10] = le16(u_off)
    hdr[10:12] = le16(present)
    ops = (ops + [OP_POP] * 24)[:24]
    hdr[12:36] = bytes(ops)
    hdr[36:40] = bytes([0, 8, 0, 16])
    hdr[64:104] = saved_record(size, VQ_BASE + d_off, VQ_BASE + a_off,
                               VQ_BASE + u_off, 0, 0)
    m = Mem()
    for i, (addr, length, flags, nxt) in enumerate(chains):
        m.put(d_off + 16 * i, desc(addr, length, flags, nxt))
    for i, (addr, length, flags, nxt) in enumerate(extra or []):
        m.put(t_off + 16 * i, desc(addr, length, flags, nxt))
    m.put(a_off, le16(0) + le16(len(avail_heads) if avail_idx is None
                                else avail_idx))
    for i, h in enumerate(avail_heads):
        m.put(a_off + 4 + 2 * i, le16(h))
    m.put(u_off + 6 + 8 * size, le16(0))
    m.put(data_off + 0x300, bytes(range(256)))
    m.put(0x1ff0, bytes(16))        # reach into page 1
    write('fuzz-virtq', name, hdr + m.b)


def virtq_corpus():
    data = VQ_BASE + 0xc00
    direct = [
        (data, 16, F_NEXT, 1),                  # chain 0: out 16, in 512
        (data + 0x100, 512, F_WRITE, 0),
        (VQ_BASE + 0x800, 48, F_INDIRECT, 0),   # chain 2: indirect, 3 descs
        (data + 0x300, 8, 0, 0),                # chain 3: one out
    ]
    table = [
        (data + 0x40, 32, F_NEXT, 1),
        (data + 0x80, 32, F_NEXT | F_WRITE, 2),
        (data + 0xc0, 1, F_WRITE, 0),
    ]
    basic = [OP_POP, OP_POP, OP_POP, OP_PUSH, OP_PUSH, OP_PUSH, OP_NOTIFY,
             OP_SETNOTIF, OP_COUNT, OP_PEEK, OP_ROUNDTRIP, OP_READ_CHAIN]
    virtq_seed('direct-indirect', 3, 0x02, 0xffff, basic, direct, [0, 2, 3],
               extra=table)
    virtq_seed('event-idx', 3, 0x03, 0xffff, basic + [OP_LOAD, OP_POP],
               direct, [3, 0, 2], extra=table)
    # Page 1 absent: the chain's data and then the ring fault
    virtq_seed('faults', 3, 0x02, 0x0001,
               [OP_POP, OP_TOGGLE | 0x10, OP_POP, OP_PUSH, OP_TOGGLE, OP_POP],
               direct + [(VQ_BASE + 0x1000, 8, 0, 0)], [4, 0],
               extra=table)
    # Guest errors: a loop, an index out of range, avail idx too far ahead
    virtq_seed('loop', 2, 0x00, 0xffff, [OP_POP, OP_POP, OP_PUSH],
               [(data, 8, F_NEXT, 1), (data, 8, F_NEXT, 0)], [0])
    virtq_seed('next-range', 2, 0x00, 0xffff, [OP_POP, OP_PEEK],
               [(data, 8, F_NEXT, 9)], [0])
    virtq_seed('avail-ahead', 2, 0x02, 0xffff, [OP_COUNT, OP_POP],
               direct, [0], avail_idx=100)
    virtq_seed('load', 3, 0x02, 0xffff,
               [OP_LOAD, OP_POP, OP_PUSH, OP_ROUNDTRIP, OP_LOAD], direct,
               [0, 2], extra=table)


# --- fuzz-nvmex-dptr --------------------------------------------------------

DPTR_BASE = 0x200000


def dptr_seed(name, sgl, page_shift_sel, length, prp1=0, prp2=0, sgl1=None,
              mem=b'', stop_at=0):
    hdr = bytearray(40)
    hdr[0] = 1 if sgl else 0
    hdr[1] = page_shift_sel
    hdr[2:6] = le32(length)
    hdr[6:14] = le64(prp1)
    hdr[14:22] = le64(prp2)
    if sgl1:
        hdr[22:38] = sgl1
    hdr[38:40] = le16(stop_at)
    write('fuzz-nvmex-dptr', name, hdr + bytes(mem))


def sgl_desc(addr, length, typ, sub=0):
    return le64(addr) + le32(length) + bytes(3) + bytes([typ << 4 | sub])


def dptr_corpus():
    page = 4096
    dptr_seed('prp-one-page', False, 0, 512, prp1=0x10000200)
    dptr_seed('prp-pair', False, 0, 2 * page, prp1=0x10000000,
              prp2=0x20000000)
    # One list page: 4 data pages after PRP1
    lst = b''.join(le64(0x30000000 + i * page) for i in range(4))
    dptr_seed('prp-list', False, 0, 5 * page, prp1=0x10000000,
              prp2=DPTR_BASE, mem=lst)
    # A list that chains: 511 entries and a link, then the rest
    m = Mem()
    for i in range(511):
        m.put(8 * i, le64(0x40000000 + i * page))
    m.put(8 * 511, le64(DPTR_BASE + page))
    for i in range(10):
        m.put(page + 8 * i, le64(0x50000000 + i * page))
    dptr_seed('prp-chained', False, 0, (1 + 511 + 10) * page,
              prp1=0x10000000, prp2=DPTR_BASE, mem=m.b)
    dptr_seed('prp-emit-stop', False, 0, 5 * page, prp1=0x10000000,
              prp2=DPTR_BASE, mem=b''.join(le64(0x30000000 + i * page * 2)
                                           for i in range(4)), stop_at=2)
    dptr_seed('sgl-data', True, 0, 8192, sgl1=sgl_desc(0x60000000, 8192, 0))
    seg = (sgl_desc(0x60000000, 4096, 0) + sgl_desc(0x61000000, 2048, 0) +
           sgl_desc(DPTR_BASE + 0x100, 32, 3))
    last = sgl_desc(0x62000000, 1024, 0) + sgl_desc(0x63000000, 1024, 0)
    m = Mem()
    m.put(0, seg)
    m.put(0x100, last)
    dptr_seed('sgl-segments', True, 0, 8192,
              sgl1=sgl_desc(DPTR_BASE, len(seg), 2), mem=m.b)
    dptr_seed('sgl-last', True, 0, 6144,
              sgl1=sgl_desc(DPTR_BASE, 32, 3),
              mem=sgl_desc(0x60000000, 4096, 0) + sgl_desc(0x61000000, 2048, 0))


# --- fuzz-vdpa-cmd ----------------------------------------------------------

def vdpa_limits():
    lim = bytearray(32)
    lim[0:4] = le32(64 - 1)         # max_instances 64
    lim[4:6] = le16(8)              # max_queues
    lim[6] = 10                     # max_queue_size 1024
    lim[7] = 48                     # dma_bits
    lim[8] = 20                     # pasid_bits
    lim[9] = (1 << 1) | (1 << 2)    # net and blk
    lim[10:12] = le16(60)           # config size
    lim[13] = 2                     # net backends
    lim[14] = 1                     # blk backends
    lim[16:24] = le64(0x1_0000_0000 | 0x20)
    lim[24:32] = le64(0x1_0000_0000 | 0x200)
    return lim


def sqe(op, member=0, buf=0, buf_len=0, args=b''):
    e = le16(op) + le16(0x8001) + le16(7) + le16(0) + le64(member)
    e += le64(buf) + le32(buf_len) + le32(0)
    e += args + bytes(32 - len(args))
    assert len(e) == 64
    return e


def vdpa_cmd_corpus():
    lim = vdpa_limits()
    cmds = {
        'discover': sqe(0x1000, 0, 0x10000, 64),
        'create-net': sqe(0x1001, args=bytes([1, 0]) + le16(2) + le32(1) +
                          le64(0x20) + bytes([0x52, 0x54, 0, 0x12, 0x34, 0x56])),
        'create-blk': sqe(0x1001, args=bytes([2, 0]) + le16(1) + le32(0) +
                          le64(0x200)),
        'destroy': sqe(0x1002, 3),
        'query': sqe(0x1003, 3, 0x20000, 64),
        'list': sqe(0x1004, 0, 0x30000, 256, le32(1)),
        'config-read': sqe(0x1005, 3, 0x40000, 8, le32(0) + le32(8)),
        'config-write': sqe(0x1006, 3, 0x40000, 6, le32(2) + le32(6)),
        'queue-setup': sqe(0x1007, 3, args=le16(1) + le16(256) + le16(1) +
                           le16(0) + le64(0x100000) + le64(0x101000) +
                           le64(0x102000)),
        'set-status': sqe(0x1008, 3, args=bytes([0x0f]) + bytes(7) +
                          le64(0x1_0000_0000)),
        'bind-pasid': sqe(0x1009, 3, args=le32(5)),
        'set-queue-msi': sqe(0x100a, 3, args=le16(0) + le16(0) +
                             le32(0x4021) + le64(0xfee00000)),
        'suspend': sqe(0x100b, 3),
        'resume': sqe(0x100c, 3),
        'stats': sqe(0x100d, 3, 0x50000, 64),
    }
    for name, e in cmds.items():
        write('fuzz-vdpa-cmd', name, lim + e)


# --- fuzz-vdpa-table --------------------------------------------------------

def vdpa_table_corpus():
    def op(kind, sel=5, idv=0, flag=0):
        return bytes([kind, sel]) + le64(idv)[:7] + bytes([flag])

    alloc, remove, get, nxt, insert = 0, 2, 3, 4, 5
    s = le16(3)     # 4 ids
    s += op(alloc) * 5 + op(remove, 5, 2) + op(alloc) + op(get, 5, 2)
    s += op(nxt, 5, 1) + op(remove, 1) + op(alloc) + op(get, 2)
    s += op(get, 3, 0) + op(get, 0) + op(remove, 4, 1) + op(nxt, 5, 0)
    write('fuzz-vdpa-table', 'alloc-free', s)
    s = le16(9)     # 10 ids: migration
    s += op(insert, 5, 7) + op(insert, 5, 3) + op(insert, 5, 7)
    s += op(insert, 0) + op(insert, 2) + op(alloc) * 3 + op(nxt, 5, 4)
    write('fuzz-vdpa-table', 'insert-at', s)


# --- fuzz-nvmex-template ----------------------------------------------------

def template_corpus():
    def seed(name, lines, errlen=256, backing=1 << 30, min_block=512):
        hdr = le16(errlen) + le64(backing) + le16(min_block)
        write('fuzz-nvmex-template', name,
              hdr + ''.join(l + '\n' for l in lines).encode())

    seed('controller', ['id=iolab-test', 'vid=0x1b36', 'sn=SN0001',
                        'mn=iolab model', 'fr=1.2', 'subnqn=nqn.2026-01.x:y',
                        'mdts=5', 'max-ioqs=8', 'mqes=256', 'oncs=0x0c',
                        'vwc=off', 'sgl=on', 'nn=4', 'temperature=300',
                        'wctemp=340', 'cctemp=350'])
    seed('namespaces', ['nn=3', 'ns0.lba-formats=512,4096', 'ns0.flbas=1',
                        'ns0.size=1048576', 'ns0.nguid=00112233-4455-6677-'
                        '8899-aabbccddeeff', 'ns1.eui64=01:02:03:04:05:06:07:08',
                        'ns1.uuid=0123456789abcdef0123456789abcdef',
                        'ns1.tlbaag=64', 'ns2.lba-formats=4096'])
    seed('errors', ['vid=0x10000', 'sn=', 'mqes=-1', 'ralbas=maybe',
                    'unknown=1', 'ns0.flbas=16', 'ns0.lba-formats=513',
                    'ns0.nguid=xyz', 'nn=0'], errlen=16)
    seed('small-backing', ['ns0.lba-formats=4096', 'ns0.size=0'],
         backing=4095, min_block=4096, errlen=0)


# --- fuzz-fault-ring --------------------------------------------------------

def fault_ring_corpus():
    def op(kind, arg=b''):
        return bytes([kind]) + (arg + bytes(5))[:5]

    raise_, pop, complete = 0, 2, 3

    def r(queue, write, page, off=0):
        return le16(queue) + bytes([write, page & 15, off])

    s = bytes([1]) + le16(69) + le32(7)          # capacity 2, 70 queues
    s += op(raise_, r(1, 0, 1)) + op(raise_, r(65, 1, 1))   # coalesce+upgrade
    s += op(raise_, r(2, 0, 2)) + op(raise_, r(3, 0, 3))    # full
    s += op(pop) + op(raise_, r(4, 1, 2)) + op(pop)         # late write
    s += op(complete, bytes([1, 0])) + op(complete, bytes([0, 0]))
    s += op(pop) + op(complete, bytes([0x80, 2]) + le16(9))
    write('fuzz-fault-ring', 'coalesce-full', s)
    s = bytes([7]) + le16(0) + le32(1)
    s += b''.join(op(raise_, r(0, i & 1, i)) for i in range(10))
    s += (op(pop) + op(complete, bytes([0, 0]))) * 4
    write('fuzz-fault-ring', 'fifo', s)


# --- fuzz-nvmex-cstate ------------------------------------------------------

CS_UUID = bytes([0xb7, 0xf4, 0xea, 0x55, 0xec, 0xfc, 0x4d, 0x45,
                 0xb7, 0x3f, 0xe2, 0x5e, 0xaa, 0x8b, 0xcc, 0x54])


def cstate(pairs, parked=None, suspended=True):
    """A Controller State with I/O queue pairs 1..pairs, as
    core/nvmex-cstate.h lays it out; vendor part when parked is a list."""
    qs = b''
    for q in range(1, pairs + 1):
        qs += le64(0x100000 * q) + le16(63) + le16(q) + le16(q) + le16(1)
        qs += le16(3) + le16(5) + bytes(4)
    for q in range(1, pairs + 1):
        qs += le64(0x200000 * q) + le16(63) + le16(q) + le16(2) + le16(3)
        qs += le32(7 | q << 16) + bytes(4)
    nvme = le16(0) + le16(pairs) + le16(pairs) + bytes(2) + qs
    vendor = b''
    if parked is not None:
        body = bytes(range(24)) + le16(1) * 2 + le16(4) + le16(4)
        body += bytes([1, 1]) + bytes(6)
        vendor = CS_UUID + le16(1) + bytes(2)
        vlen = 72 + 16 * len(parked)
        vendor += le32(vlen) + body + le32(len(parked)) + bytes(4)
        for cq, sq, cid in parked:
            vendor += le16(cq) + le16(sq) + le16(cid) + le16(0) + le32(0)
            vendor += bytes(4)
    hdr = le16(0) + bytes([1 if suspended else 0]) + bytes(13)
    hdr += le64(len(nvme) // 4) + le64(0) + le64(len(vendor) // 4) + le64(0)
    return hdr + nvme + vendor


def cstate_corpus():
    write('fuzz-nvmex-cstate', 'empty', cstate(0))
    write('fuzz-nvmex-cstate', 'two-pairs', cstate(2))
    write('fuzz-nvmex-cstate', 'vendor-parked',
          cstate(2, parked=[(1, 1, 7), (2, 2, 9)]))
    write('fuzz-nvmex-cstate', 'running', cstate(1, parked=[],
                                                 suspended=False))


def main():
    virtq_corpus()
    cstate_corpus()
    dptr_corpus()
    vdpa_cmd_corpus()
    vdpa_table_corpus()
    template_corpus()
    fault_ring_corpus()
    return 0


if __name__ == '__main__':
    sys.exit(main())
