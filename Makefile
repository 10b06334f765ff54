# iolab top-level Makefile.
#
#   make             configure (when needed) and build everything
#   make check       all test layers: unit, iolab qtests, upstream qtests, guest,
#                    migrate (scripts/migrate-experiment)
#   make check-novpri  vdpa-mgmt in an emulator built without VPRI
#                    (scripts/check-novpri, build/novpri; not in make check)
#   make check-vdpa-driver  the vdpa-mgmt Linux driver in a trixie guest
#                    (scripts/build-vdpa-guest, tests/vdpa-driver/run; part
#                    of make check)
#   make check-nvme-lm  nvme-cli's lm plugin driving nvme-export-mgmt in that
#                    trixie guest (tests/nvme-lm/run; part of make check)
#   make run         boot the embedded guest with our devices and print a report
#   make bench       benchmarks (scripts/bench); summary in build/bench/results.json,
#                    figures recorded in docs/benchmarks.md
#   make bench-migrate  the live-migration experiments (scripts/migrate-experiment,
#                    every experiment at full scale; MIGRATE_ARGS= adds options,
#                    e.g. MIGRATE_ARGS=--quick); CSV and plots in build/migrate
#   make bench-storage  issue 15's storage-migration matrix (scripts/bench-storage)
#   make check-slow  longer suites: the whole upstream x86_64 qtest suite, and
#                    the slirp vpri-nic overcommit test under rx-fault-policy=drop
#   make fuzz-migration  the migration-stream mutator's long run
#                    (FUZZ_MIGRATION_COUNT mutants per device; docs/security.rst)
#   make check-fuzz-cores  the libFuzzer harnesses of the cores, 15 s each
#                    (part of make check; FUZZ_CORE_SECONDS=...)
#   make fuzz        the clang/ASan/UBSan QEMU in build-fuzz/, then generic-fuzz
#                    on every device configuration (FUZZ_SECONDS=600 each)
#   make check-asan  the iolab qtests against that sanitized QEMU
#                    (docs/fuzzing.rst)
#   make clean       remove build/ (the tarball cache in ~/.cache stays)
#
# One test:  make check-unit T=test-fault-ring
#            make check-qtest T=iolab/iolab-build-test
# SPDX-License-Identifier: GPL-2.0-or-later

SRC := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD := $(SRC)/build
OBJ := $(BUILD)/obj
UNIT := $(BUILD)/unit
EMULATOR := $(BUILD)/qemu-system-x86_64
# Where the emulator looks for its firmware (configure's --firmwarepath):
# read from configure, which holds the one definition.
FIRMWARE_BUNDLE_PATH := $(shell sed -n 's/^firmware_bundle_path=//p' $(SRC)/configure)
NINJA ?= ninja
# Builds of several checkouts on one machine take turns: two QEMU builds at
# once on a small machine only thrash.  Set BUILD_LOCK= to build unlocked.
BUILD_LOCK ?= flock $(HOME)/.cache/qemu-iolab/build.lock
MESON ?= meson

# Let clones at other paths (CI's fresh clone) share the ccache: hash paths
# relative to the checkout, and not the build directory.
export CCACHE_BASEDIR := $(SRC)
export CCACHE_NOHASHDIR := 1

# Upstream qtests that cover what our patches and devices touch: the vIOMMU,
# q35, virtio-net/blk through qos-test's qgraph, and migration.
UPSTREAM_QTESTS := intel-iommu-test q35-test qos-test migration-test
# The migration smoke: one plain precopy over a unix socket.
MIGRATION_SMOKE := /x86_64/migration/precopy/unix/plain

# Every entry of the dictionaries in tests/qtest/meson.build (the qtests
# and the benchmarks), whether its sources are a list or files(...).
IOLAB_QTEST_TARGETS := $(shell sed -n "s/^ *'\([a-z0-9-]*\)': *\(\[\|files\).*/\1/p" \
	$(SRC)/tests/qtest/meson.build)

NINJA_TARGETS := qemu-system-x86_64 qemu-img \
	$(addprefix tests/qtest/,$(UPSTREAM_QTESTS)) \
	$(addprefix tests/qtest/iolab/,$(IOLAB_QTEST_TARGETS))

.PHONY: all build configure unit check check-build check-unit check-qtest check-novpri \
	check-upstream check-upstream-qtests check-migration-smoke \
	check-mutator fuzz-migration check-fuzz-cores fuzz-build fuzz check-asan \
	check-guest check-migrate check-slow run bench bench-migrate bench-storage \
	bench-postcopy clean guest

all: build unit vdpa-guest

# configure is re-run when it or a patch changes; it is cheap when nothing
# did, and it starts build/obj afresh when the upstream source changed.
$(OBJ)/build.ninja: $(SRC)/configure $(wildcard $(SRC)/patches/*.patch)
	cd $(SRC) && ./configure
	touch $@

configure: $(OBJ)/build.ninja

build: $(OBJ)/build.ninja
	mkdir -p $(HOME)/.cache/qemu-iolab
	$(BUILD_LOCK) $(NINJA) -C $(OBJ) $(NINJA_TARGETS)
	$(MAKE) -C $(OBJ) pc-bios/optionrom/all
	@# Run from the build tree, QEMU looks for data under qemu-bundle/<path>;
	@# <path> is configure's firmware_bundle_path.
	mkdir -p $(OBJ)/qemu-bundle$(dir $(FIRMWARE_BUNDLE_PATH))
	ln -sfn $(BUILD)/firmware $(OBJ)/qemu-bundle$(FIRMWARE_BUNDLE_PATH)
	ln -sfn obj/qemu-system-x86_64 $(EMULATOR)

$(UNIT)/build.ninja: $(SRC)/meson.build
	$(MESON) setup --reconfigure $(UNIT) $(SRC) >/dev/null || \
		{ rm -rf $(UNIT) && $(MESON) setup $(UNIT) $(SRC); }

unit: $(UNIT)/build.ninja
	$(NINJA) -C $(UNIT)

guest:
	$(SRC)/scripts/build-guest

# The vdpa-mgmt Linux driver, built in a trixie build root against the
# trixie guest kernel, and that guest (cached in ~/.cache/qemu-iolab/vdpa;
# the first run debootstraps, about 5 minutes).
.PHONY: vdpa-guest check-vdpa-driver check-nvme-lm
vdpa-guest:
	$(SRC)/scripts/build-vdpa-guest --quiet

check: all
	@$(SRC)/scripts/check-all

check-build: build
	@$(SRC)/tests/build/run

check-unit: unit
	$(MESON) test -C $(UNIT) --no-rebuild --print-errorlogs $(T)

# vdpa-mgmt in an emulator without VPRI (build/novpri; not in make check)
check-novpri: build
	BUILD_LOCK="$(BUILD_LOCK)" $(SRC)/scripts/check-novpri

check-qtest: build
	$(MESON) test -C $(OBJ) --no-rebuild --print-errorlogs \
		$(if $(T),$(T),--suite iolab)

check-upstream: check-upstream-qtests check-migration-smoke

check-upstream-qtests: build
	$(MESON) test -C $(OBJ) --no-rebuild --print-errorlogs \
		$(addprefix qtest-x86_64/,$(filter-out migration-test,$(UPSTREAM_QTESTS)))

check-migration-smoke: build
	cd $(OBJ) && QTEST_QEMU_BINARY=./qemu-system-x86_64 \
		QTEST_QEMU_IMG=./qemu-img \
		./tests/qtest/migration-test --tap -k -p $(MIGRATION_SMOKE)

# The migration-stream mutator (tests/qtest/mig-mutator.c).  make check
# runs it on a fixed seed set; failures that a fix has not reached yet can
# be listed, per device and field, in MUTATOR_ALLOW (empty by default);
# mutants that once failed are kept, by field name, in MUTATOR_REGRESSIONS.
# Each failure's mutant, log and reproduction line land in the directory
# given by MUTATOR_OUT.  MUTATOR_FORK=0 starts a QEMU per mutant instead
# of forking a template destination (docs/fuzzing.rst).
MUTATOR := $(OBJ)/tests/qtest/iolab/mig-mutator
MUTATOR_ENV = QTEST_QEMU_BINARY=$(OBJ)/qemu-system-x86_64 \
	MUTATOR_ALLOW=$(MUTATOR_ALLOW) MUTATOR_JOBS=$(MUTATOR_JOBS) \
	MUTATOR_FORK=$(MUTATOR_FORK) MUTATOR_REGRESSIONS=$(MUTATOR_REGRESSIONS)
MUTATOR_ALLOW ?= $(SRC)/tests/qtest/mig-mutator-allow.txt
MUTATOR_REGRESSIONS ?= $(SRC)/tests/qtest/mig-mutator-regressions.txt
MUTATOR_JOBS ?= 2
MUTATOR_FORK ?= 1
MUTATOR_CHECK_SEED ?= 1
MUTATOR_CHECK_COUNT ?= 0
MUTATOR_CHECK_STACKED ?= 10
FUZZ_MIGRATION_COUNT ?= 100000
FUZZ_MIGRATION_SEED ?= 1
FUZZ_MIGRATION_DEVICES ?=

check-mutator: build
	$(MUTATOR_ENV) MUTATOR_SEED=$(MUTATOR_CHECK_SEED) \
		MUTATOR_COUNT=$(MUTATOR_CHECK_COUNT) \
		MUTATOR_STACKED=$(MUTATOR_CHECK_STACKED) \
		MUTATOR_OUT=$(BUILD)/mutator-failures/check $(MUTATOR)

# The long run: scripts/fuzz-migration, in chunks written to a ledger as
# they end, so that a stopped campaign resumes where it was
fuzz-migration: build
	$(MUTATOR_ENV) MUTATOR=$(MUTATOR) \
		FUZZ_MIGRATION_SEED=$(FUZZ_MIGRATION_SEED) \
		FUZZ_MIGRATION_UNTIL=$(FUZZ_MIGRATION_COUNT) \
		FUZZ_MIGRATION_JOBS=$(MUTATOR_JOBS) \
		FUZZ_MIGRATION_DEVICES="$(FUZZ_MIGRATION_DEVICES)" \
		FUZZ_MIGRATION_DIR=$(BUILD)/mutator-runs \
		$(SRC)/scripts/fuzz-migration

check-guest: build guest
	@$(SRC)/tests/guest/run-all

check-vdpa-driver: build vdpa-guest
	@$(SRC)/tests/vdpa-driver/run

check-nvme-lm: build vdpa-guest
	@$(SRC)/tests/nvme-lm/run

# scripts/migrate-experiment: --quick of one experiment per device family,
# and its bad-input handling; upstream's migration-test guest with a
# source that evicts while it migrates
check-migrate: build guest
	@$(SRC)/tests/migrate/test-migrate-experiment.py
	@$(SRC)/tests/migrate/test-evicting-source.py

check-slow: all guest
	$(NINJA) -C $(OBJ)
	IOLAB_SLOW=1 IOLAB_TEST_TIMEOUT=900 \
		$(SRC)/tests/guest/test-vpri-nic-overcommit.py
	$(MESON) test -C $(OBJ) --no-rebuild --print-errorlogs --suite qtest-x86_64

# The sanitizer build (scripts/fuzz-build) builds from build/qemu, which
# configure prepares; it takes the build lock in slices (BUILD_LOCK= to
# build without it).
FUZZ_NINJA_TARGETS := qemu-fuzz-x86_64 qemu-system-x86_64 qemu-img \
	$(addprefix tests/qtest/iolab/,$(filter-out %-bench,$(IOLAB_QTEST_TARGETS)))

check-fuzz-cores:
	@$(SRC)/scripts/fuzz-cores

fuzz-build: $(OBJ)/build.ninja
	BUILD_LOCK="$(BUILD_LOCK)" $(SRC)/scripts/fuzz-build $(FUZZ_NINJA_TARGETS)

fuzz: fuzz-build
	@$(SRC)/scripts/fuzz-qemu

check-asan: fuzz-build
	@$(SRC)/scripts/check-asan

run: all guest
	@$(SRC)/scripts/run-demo

bench: all guest
	@$(SRC)/scripts/bench

MIGRATE_EXPERIMENTS := vpri-blk vpri-nic overcommit nvme-export storage vdpa-mgmt
bench-migrate: all guest
	@$(SRC)/scripts/migrate-experiment $(MIGRATE_ARGS) $(MIGRATE_EXPERIMENTS)

# Issue 17: device-fault latency against the vCPUs' page-request latency
# on a postcopy destination, without and with postcopy-preempt side by
# side; the guest reads into fresh pages (docs/benchmarks.md)
POSTCOPY_BENCH_ARGS := --quick --runs 3 --variant vpri-blk/evict0 \
	--postcopy --postcopy-after 0.1 --max-postcopy-bandwidth 4 \
	--postcopy-preempt-both --read-pool-mib 32
bench-postcopy: all guest
	@$(SRC)/scripts/migrate-experiment $(POSTCOPY_BENCH_ARGS) \
		--out $(BUILD)/bench-postcopy vpri-blk

# Issue 15's matrix: allocated 10/50/100% x guest writes 0/8/32 MiB/s
bench-storage: all guest
	@$(SRC)/scripts/bench-storage $(BENCH_STORAGE_ARGS)

clean:
	rm -rf $(BUILD)
